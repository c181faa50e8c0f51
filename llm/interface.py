"""The one LLM seam: typed requests, typed responses, one async `complete`."""
from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["text", "code"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)
    role: Literal["user", "assistant"]
    content: str


class LLMRequest(BaseModel):
    """A structured request. `context` carries the structured inputs the prompt was
    rendered from; the builtin provider answers from it, model providers read `messages`."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    purpose: str  # e.g. "s04.blueprint"
    role: Role = "text"
    system: str = ""
    messages: tuple[Message, ...] = ()
    response_model: type[BaseModel]
    context: dict[str, Any] = Field(default_factory=dict)
    temperature: float = 0.0
    max_tokens: int = 8192

    def schema_json(self) -> dict[str, Any]:
        return self.response_model.model_json_schema()


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)
    input_tokens: int = 0
    output_tokens: int = 0


class LLMResponse(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    output: BaseModel
    model: str
    usage: Usage = Usage()
    attempts: int = 1


class ToolCall(BaseModel):
    """A tool call in OpenAI shape: `arguments` is the raw JSON string (it may be malformed)."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    arguments: str


class ChatTurn(BaseModel):
    """One assistant turn of a tool-use conversation (what a chat-capable provider returns)."""

    model_config = ConfigDict(frozen=True)
    text: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    stop_reason: str
    usage: Usage = Usage()
    model: str


class LLMError(Exception):
    """A provider could not produce a valid answer (after its retries)."""


class ProviderUnavailable(LLMError):
    """The provider could not be used at all (no key, unreachable, outage after retries): not the
    model's fault, so the work is retried by the next run rather than counted as a failure."""


class Provider(Protocol):
    name: str

    def model_for(self, role: Role) -> str: ...

    async def complete(self, request: LLMRequest) -> LLMResponse: ...


@functools.lru_cache(maxsize=None)
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A response model's JSON Schema, built once per class (pydantic rebuilds it on every call, which
    cost more than the builtin answer itself); only request_key reads it, and never mutates it."""
    return model.model_json_schema()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(request: LLMRequest, provider: str, model: str) -> str:
    """Cache key: the *meaning* of a request. Timeouts, retries and concurrency are
    provider settings and never part of the request, so they cannot leak in here."""
    meaning = {
        "provider": provider,
        "model": model,
        "purpose": request.purpose,
        "role": request.role,
        "system": request.system,
        "messages": [m.model_dump() for m in request.messages],
        "schema": _schema_of(request.response_model),
        "context": request.context,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    return hashlib.sha256(canonical_json(meaning).encode()).hexdigest()
