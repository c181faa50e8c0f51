"""A scripted local server speaking the OpenAI chat-completions API (with tool calls), so the openai
provider is tested over real HTTP. Same queue, responder and fault model as MessagesServer."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.fakes.messages_server import ErrorReply, MessagesServer


def completion_reply(
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    *,
    finish_reason: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    model: str | None = None,
) -> dict[str, Any]:
    """A chat.completion body with one choice; `model=None` echoes the model of the request."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    digest = hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "id": f"chatcmpl-{digest}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def chat_text_reply(text: str, **kwargs: Any) -> dict[str, Any]:
    return completion_reply(text, **kwargs)


def function_call(name: str, arguments: dict[str, Any] | str, *, id: str | None = None) -> dict[str, Any]:
    """One tool call; a string `arguments` is sent verbatim (so it may be malformed JSON). The default
    id is derived from name and arguments so scripts stay deterministic."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    if id is None:
        id = "call_" + hashlib.sha256(f"{name}|{raw}".encode()).hexdigest()[:16]
    return {"id": id, "type": "function", "function": {"name": name, "arguments": raw}}


def tool_calls_reply(*calls: dict[str, Any], content: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return completion_reply(content, list(calls), **kwargs)


def openai_error(status: int, message: str = "", *, headers: dict[str, str] | None = None) -> ErrorReply:
    """An error in the chat-completions error envelope."""
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
        status, "server_error")
    body = {"error": {"message": message or f"fake {status}", "type": kind, "param": None, "code": None}}
    return ErrorReply(status, body, dict(headers or {}))


def openai_rate_limited(retry_after: str | None = "0") -> ErrorReply:
    return openai_error(429, "rate limited", headers={"retry-after": retry_after} if retry_after else None)


class ChatCompletionsServer(MessagesServer):
    """`with ChatCompletionsServer() as srv:` serves POST /v1/chat/completions; `srv.base_url`
    ends in /v1, as OpenAI-compatible servers are configured."""

    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return super().base_url + "/v1"

    @staticmethod
    def error(status: int, message: str) -> ErrorReply:
        return openai_error(status, message)
