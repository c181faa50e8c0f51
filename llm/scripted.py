"""A provider for tests: canned answers per purpose and injected faults, else a fallback."""
from __future__ import annotations

from collections import defaultdict, deque
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from skiller.llm.interface import LLMError, LLMRequest, LLMResponse, Provider, Role, Usage


class Fault(Exception):
    """Queue one of these to make the provider fail a call (e.g. Fault('429 rate limited'))."""


class ScriptedProvider:
    name = "scripted"

    def __init__(self, fallback: Provider | None = None, model: str = "scripted-1") -> None:
        self.fallback = fallback
        self.model = model
        self.queues: dict[str, deque] = defaultdict(deque)
        self.calls: list[LLMRequest] = []

    def push(self, purpose: str, *answers: Any) -> "ScriptedProvider":
        """Queue answers: a dict/model (validated), a callable(request) -> answer, or a Fault."""
        self.queues[purpose].extend(answers)
        return self

    def model_for(self, role: Role) -> str:
        return self.model

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls.append(request)
        queue = self.queues.get(request.purpose)
        if not queue:
            if self.fallback is None:
                raise LLMError(f"scripted provider has no answer for {request.purpose}")
            return await self.fallback.complete(request)
        answer = queue.popleft()
        if isinstance(answer, Fault):
            raise LLMError(f"{request.purpose}: {answer}")
        if callable(answer) and not isinstance(answer, BaseModel):
            answer = answer(request)
        if isinstance(answer, BaseModel):
            answer = answer.model_dump(mode="json")
        try:
            output = request.response_model.model_validate(answer)
        except ValidationError as exc:
            raise LLMError(f"{request.purpose}: malformed answer ({exc.error_count()} errors)") from None
        return LLMResponse(output=output, model=self.model, usage=Usage(input_tokens=10, output_tokens=10))


ScriptedAnswer = Callable[[LLMRequest], Any]
