"""The LLM client steps see: cache by request meaning, record an LLMCalled event per call."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from pydantic import BaseModel, ValidationError

from skiller.events import LLMCalled
from skiller.llm.interface import LLMError, LLMRequest, LLMResponse, Provider, request_key

T = TypeVar("T", bound=BaseModel)


class LLMClient:
    """Shared by all steps of a run: one provider, one cache (the store)."""

    def __init__(self, provider: Provider, store, output_cap: Callable[[str], int] | None = None) -> None:
        self.provider = provider
        self.store = store
        self.output_cap = output_cap  # purpose -> max_tokens (config `output_caps`); None keeps the request's

    async def ask(self, request: LLMRequest, stream: str, record: list) -> BaseModel:
        if self.output_cap is not None:
            request = request.model_copy(update={"max_tokens": self.output_cap(request.purpose)})
        model = self.provider.model_for(request.role)
        key = request_key(request, self.provider.name, model)
        cached = self.store.cache_get(key)
        if cached is not None:
            try:
                output = request.response_model.model_validate(cached["response"])
            except ValidationError:
                cached = None  # schema changed since caching: ask again
            else:
                record.append(LLMCalled(stream=stream, provider=self.provider.name, model=model,
                                        purpose=request.purpose, request_hash=key, cache_hit=True))
                return output
        started = time.perf_counter()
        response = await self.provider.complete(request)
        latency = int((time.perf_counter() - started) * 1000)
        self.store.cache_put(key, self.provider.name, response.model, request.purpose,
                             response.output.model_dump(mode="json"),
                             response.usage.input_tokens, response.usage.output_tokens)
        record.append(LLMCalled(stream=stream, provider=self.provider.name, model=response.model,
                                purpose=request.purpose, request_hash=key,
                                input_tokens=response.usage.input_tokens,
                                output_tokens=response.usage.output_tokens,
                                latency_ms=latency, attempts=response.attempts))
        return response.output


class StepLLM:
    """The `ctx.llm` handle of one step: asks on behalf of one stream, buffers its events."""

    def __init__(self, client: LLMClient, stream: str, record: list) -> None:
        self._client, self._stream, self._record = client, stream, record

    async def ask(self, request: LLMRequest, response_model: type[T] | None = None) -> T:
        output = await self._client.ask(request, self._stream, self._record)
        return output  # type: ignore[return-value]

    def as_provider(self) -> "JudgeProvider":
        """This handle shaped as a Provider (for code that takes one, like the evaluator's judge)."""
        return JudgeProvider(self, self._client.provider.name)


class RecordingChat:
    """A chat-capable provider seen through one step: every turn becomes an LLMCalled event.
    Rollout turns are samples, so they are never cached."""

    def __init__(self, provider, stream: str, record: list) -> None:
        self._provider, self._stream, self._record = provider, stream, record
        self.name = provider.name

    def model_for(self, role):
        return self._provider.model_for(role)

    async def chat(self, role, system, messages, tools, stop_sequences=(), max_tokens=2048):
        started = time.perf_counter()
        turn = await self._provider.chat(role, system, messages, tools, stop_sequences, max_tokens)
        self._record.append(LLMCalled(
            stream=self._stream, provider=self.name, model=turn.model, purpose=f"rollout.{role}",
            request_hash="", input_tokens=turn.usage.input_tokens, output_tokens=turn.usage.output_tokens,
            latency_ms=int((time.perf_counter() - started) * 1000)))
        return turn


class JudgeProvider:
    """The step's LLM handle shaped as a Provider, so the evaluator's judge calls are cached and recorded."""

    def __init__(self, llm: StepLLM, name: str) -> None:
        self._llm, self.name = llm, name

    def model_for(self, role):
        return self.name

    async def complete(self, request):
        return LLMResponse(output=await self._llm.ask(request), model=self.name)


__all__ = ["JudgeProvider", "LLMClient", "LLMError", "RecordingChat", "StepLLM"]
