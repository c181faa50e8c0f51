"""The `anthropic` provider: the Messages API behind the LLM seam, with retries and per-endpoint concurrency."""
from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic
import structlog
from anthropic.types import Message as AnthropicMessage
from pydantic import BaseModel, ValidationError

from skiller.llm.anthropic_settings import AnthropicSettings
from skiller.llm.endpoint import (
    EndpointLimits,
    Failure,
    RetryPolicy,
    call_with_retries,
    one_line,
    refuse_network_under_pytest,
    sdk_failure,
)
from skiller.llm.interface import ChatTurn, LLMError, ProviderUnavailable, LLMRequest, LLMResponse, Role, ToolCall, Usage
from skiller.llm.structured import RESPOND_TOOL, cut_error, describe_validation, larger_cap, respond_description

__all__ = ["AnthropicProvider", "AnthropicSettings", "ChatTurn", "ToolCall", "RESPOND_TOOL"]

log = structlog.get_logger()

_DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicProvider:
    """Messages API provider: structured output through one forced tool (`complete`) and
    OpenAI-format tool-use conversations for rollouts (`chat`)."""

    name = "anthropic"

    def __init__(self, settings: AnthropicSettings | None = None) -> None:
        self.settings = settings or AnthropicSettings()
        self._limits = EndpointLimits(self.name, self.settings.max_concurrency)
        self._client: anthropic.AsyncAnthropic | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def model_for(self, role: Role) -> str:
        return self.settings.code_model if role == "code" else self.settings.text_model

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Ask for `request.response_model` through the forced `respond` tool; answers that
        fail validation are fed back as an error tool_result, at most max_validation_retries times."""
        model = self.model_for(request.role)
        schema_name = request.response_model.__name__
        tool = {
            "name": RESPOND_TOOL,
            "description": respond_description(schema_name),
            "input_schema": request.response_model.model_json_schema(),
        }
        messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in request.messages]
        params: dict[str, Any] = {
            "max_tokens": min(request.max_tokens, self.settings.max_output_tokens),
            "tools": [tool],
            "tool_choice": {"type": "tool", "name": RESPOND_TOOL},
        }
        if request.system:
            params["system"] = request.system
        if self.settings.send_temperature:
            params["extra_body"] = {"temperature": request.temperature}

        usage = Usage()
        answers = 1 + self.settings.max_validation_retries
        problem = ""
        attempt = 0
        while attempt < answers:
            message = await self._create(model, request.purpose, messages=messages, **params)
            usage = _add_usage(usage, message)
            if message.stop_reason == "max_tokens":
                # Never accept a cut answer (its truncated input may even validate); never re-ask at the same cap.
                cap = larger_cap(params["max_tokens"], self.settings.max_output_tokens)
                if cap is None:
                    raise LLMError(cut_error(self.name, model, request.purpose, params["max_tokens"]))
                log.warning("llm.cut_at_max_tokens", provider=self.name, model=model, purpose=request.purpose,
                            max_tokens=params["max_tokens"], next_max_tokens=cap)
                params = {**params, "max_tokens": cap}
                continue
            attempt += 1
            output, feedback, problem = _parse_respond(message, request.response_model)
            if output is not None:
                return LLMResponse(output=output, model=message.model or model, usage=usage, attempts=attempt)
            log.warning("llm.invalid_answer", provider=self.name, model=model, purpose=request.purpose,
                        attempt=attempt, problem=problem[:300])
            assistant = [_block_param(block) for block in message.content
                         if not (block.type == "text" and not block.text)]  # the API rejects empty text
            # The assistant turn must precede the tool_result that answers its tool_use.
            messages = [*messages, *([{"role": "assistant", "content": assistant}] if assistant else []),
                        {"role": "user", "content": feedback}]
        raise LLMError(f"anthropic/{model}: {request.purpose}: no valid {schema_name} after "
                       f"{answers} answers: {one_line(problem)}")

    async def chat(
        self,
        role: Role,
        system: str,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        stop_sequences: Sequence[str] = (),
        max_tokens: int = 2048,
        *,
        purpose: str = "chat",
    ) -> ChatTurn:
        """One assistant turn of an OpenAI-format conversation (messages with `tool_calls` and
        `tool` results, OpenAI function tools), translated to and from Anthropic blocks.

        Tool-call `arguments` that are not a JSON object are sent as the tool_use input
        `{"raw_arguments": "<the string>"}`: the API needs an object, and keeping the text lets
        the model see what it produced next to the error its tool result will carry.
        `purpose` only labels logs and errors (e.g. "rollout.agent")."""
        model = self.model_for(role)
        system_text, anthropic_messages = _to_anthropic_messages(system, messages)
        params: dict[str, Any] = {"max_tokens": max_tokens}
        if system_text:
            params["system"] = system_text
        if tools:
            params["tools"] = [_to_anthropic_tool(t) for t in tools]
        if stop_sequences:
            params["stop_sequences"] = list(stop_sequences)
        message = await self._create(model, purpose, messages=anthropic_messages, **params)
        text = "".join(block.text for block in message.content if block.type == "text")
        calls = [ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input, ensure_ascii=False))
                 for block in message.content if block.type == "tool_use"]
        return ChatTurn(text=text, tool_calls=calls, stop_reason=message.stop_reason or "end_turn",
                        usage=_add_usage(Usage(), message), model=message.model or model)

    async def aclose(self) -> None:
        """Close the HTTP client (connections are pooled per event loop)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._client_loop = None

    # -- transport -------------------------------------------------------------------------

    def base_url(self) -> str:
        """The endpoint calls go to, resolved the way the SDK would."""
        return self.settings.base_url or os.environ.get("ANTHROPIC_BASE_URL") or _DEFAULT_BASE_URL

    def _client_for_loop(self) -> anthropic.AsyncAnthropic:
        base_url = self.base_url()
        refuse_network_under_pytest(base_url)
        key = os.environ.get(self.settings.api_key_env)
        if not key:
            raise ProviderUnavailable(f"anthropic provider: environment variable {self.settings.api_key_env} "
                                      "is not set (it must hold the API key)")
        loop = asyncio.get_running_loop()
        # An HTTP connection pool belongs to the loop that opened it.
        if self._client is None or self._client_loop is not loop:
            self._client = anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0,
                                                    timeout=self.settings.timeout_seconds)
            self._client_loop = loop
        return self._client

    async def _create(self, model: str, purpose: str, **params: Any) -> AnthropicMessage:
        """One Messages API call, retried on 429 / 5xx / timeouts / connection errors."""
        client = self._client_for_loop()
        return await call_with_retries(
            lambda: client.messages.create(model=model, **params), provider=self.name, model=model,
            purpose=purpose, limit=self._limits.get(model, self.base_url()),
            policy=RetryPolicy(self.settings.max_retries, self.settings.backoff_base),
            classify=lambda exc: self._failure(exc, model))

    def _failure(self, exc: Exception, model: str) -> Failure | None:
        if isinstance(exc, anthropic.NotFoundError):
            keys = " / ".join(f"provider.anthropic.{k}" for k in ("text_model", "code_model")
                              if getattr(self.settings, k) == model) or "provider.anthropic.text_model"
            return Failure(f"HTTP 404: the server at {self.base_url()} does not know model {model!r} "
                           f"(set {keys} to a model it serves)", retryable=False)
        return sdk_failure(exc, anthropic, anthropic.AnthropicError, self.settings.timeout_seconds)


# -- structured output --------------------------------------------------------------------

def _parse_respond(message: AnthropicMessage, response_model: type[BaseModel]
                   ) -> tuple[BaseModel | None, list[dict[str, Any]], str]:
    """(output, feedback blocks for the next user turn, problem in one line)."""
    uses = [block for block in message.content if block.type == "tool_use"]
    respond = next((block for block in uses if block.name == RESPOND_TOOL), None)
    truncated = " (the answer was cut at max_tokens)" if message.stop_reason == "max_tokens" else ""
    if respond is None:
        problem = f"no call to the {RESPOND_TOOL} tool{truncated}"
        feedback = [_tool_result(block.id, f"unknown tool {block.name!r}; call {RESPOND_TOOL!r}")
                    for block in uses]
        feedback.append({"type": "text", "text": f"Answer by calling the {RESPOND_TOOL} tool with an "
                                                 "input that matches its schema."})
        return None, feedback, problem
    try:
        return response_model.model_validate(respond.input), [], ""
    except ValidationError as exc:
        problem = describe_validation(exc, response_model.__name__) + truncated
    # Every tool_use needs its tool_result, so extra calls get one too.
    feedback = [_tool_result(block.id, problem if block is respond else "ignored: only the first "
                             f"{RESPOND_TOOL} call counts") for block in uses]
    return None, feedback, problem


def _tool_result(tool_use_id: str, text: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": text, "is_error": True}


def _block_param(block: Any) -> dict[str, Any]:
    """A response content block as a request block, to replay the assistant turn."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return block.model_dump(mode="json", exclude_none=True)  # e.g. thinking blocks with signatures


# -- OpenAI chat format ↔ Anthropic blocks ------------------------------------------------

def _to_anthropic_messages(system: str, messages: Sequence[Mapping[str, Any]]
                           ) -> tuple[str, list[dict[str, Any]]]:
    """Translate OpenAI chat messages; `system` messages join the system prompt and
    consecutive turns of one role (e.g. several tool results) merge into one turn."""
    system_parts = [system] if system else []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for msg in messages:
        role = msg["role"]
        if role == "system":
            system_parts.append(_text_of(msg.get("content")))
        elif role == "user":
            add("user", _text_blocks(msg.get("content")))
        elif role == "assistant":
            blocks = _text_blocks(msg.get("content"))
            for call in msg.get("tool_calls") or []:
                function = call["function"]
                blocks.append({"type": "tool_use", "id": call["id"], "name": function["name"],
                               "input": _arguments_input(function.get("arguments"))})
            add("assistant", blocks)
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": msg["tool_call_id"],
                          "content": _text_of(msg.get("content"))}])
        else:
            raise LLMError(f"chat: unsupported message role {role!r}")
    return "\n\n".join(part for part in system_parts if part), turns


def _to_anthropic_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function", tool)
    out: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _arguments_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        value = None
    return value if isinstance(value, dict) else {"raw_arguments": str(arguments)}


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    text = _text_of(content)
    return [{"type": "text", "text": text}] if text else []


# -- small helpers ------------------------------------------------------------------------

def _add_usage(total: Usage, message: AnthropicMessage) -> Usage:
    used = message.usage
    return Usage(input_tokens=total.input_tokens + (used.input_tokens if used else 0),
                 output_tokens=total.output_tokens + (used.output_tokens if used else 0))
