"""The `openai` provider: any chat-completions server (OpenAI, vLLM, SGLang, Ollama, a LiteLLM proxy)
behind the LLM seam, with the retries and per-endpoint concurrency every network provider shares."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import openai
import structlog
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

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
from skiller.llm.openai_settings import OpenAISettings
from skiller.llm.structured import RESPOND_TOOL, cut_error, describe_validation, larger_cap, respond_description

__all__ = ["OpenAIProvider", "OpenAISettings"]

log = structlog.get_logger()

_DEFAULT_BASE_URL = "https://api.openai.com/v1"
_OPENAI_HOST = "api.openai.com"
# Local servers (vLLM, SGLang, Ollama) accept any bearer token, but the header must be there.
_PLACEHOLDER_KEY = "not-needed"
# finish_reason in the vocabulary ChatTurn shares with the anthropic provider.
_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use",
                 "length": "max_tokens", "content_filter": "refusal"}


class OpenAIProvider:
    """Chat-completions provider: structured output through one forced function (`complete`) and
    OpenAI-format tool-use conversations for rollouts (`chat`), which need almost no translation."""

    name = "openai"

    def __init__(self, settings: OpenAISettings | None = None) -> None:
        self.settings = settings or OpenAISettings()
        self._limits = EndpointLimits(self.name, self.settings.max_concurrency)
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def model_for(self, role: Role) -> str:
        return self.settings.code_model if role == "code" else self.settings.text_model

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Ask for `request.response_model` through the forced `respond` function; answers that fail
        validation are fed back as an error tool message, at most max_validation_retries times."""
        model = self.model_for(request.role)
        schema_name = request.response_model.__name__
        tool = {"type": "function", "function": {
            "name": RESPOND_TOOL, "description": respond_description(schema_name),
            "parameters": request.response_model.model_json_schema()}}
        messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        params: dict[str, Any] = {self.settings.max_tokens_field: min(request.max_tokens, self.settings.max_output_tokens),
                                  "tools": [tool],
                                  "tool_choice": {"type": "function", "function": {"name": RESPOND_TOOL}}}
        if self.settings.send_temperature:
            params["temperature"] = request.temperature

        usage = Usage()
        answers = 1 + self.settings.max_validation_retries
        problem = ""
        attempt, field = 0, self.settings.max_tokens_field
        while attempt < answers:
            completion = await self._create(model, request.purpose, messages=messages, **params)
            usage = _add_usage(usage, completion)
            if completion.choices[0].finish_reason == "length":
                # Never accept a cut answer; never re-ask at the same cap.
                cap = larger_cap(params[field], self.settings.max_output_tokens)
                if cap is None:
                    raise LLMError(cut_error(self.name, model, request.purpose, params[field]))
                log.warning("llm.cut_at_max_tokens", provider=self.name, model=model, purpose=request.purpose,
                            max_tokens=params[field], next_max_tokens=cap)
                params = {**params, field: cap}
                continue
            attempt += 1
            output, followup, problem = _parse_respond(completion, request.response_model, len(messages))
            if output is not None:
                return LLMResponse(output=output, model=completion.model or model, usage=usage, attempts=attempt)
            log.warning("llm.invalid_answer", provider=self.name, model=model, purpose=request.purpose,
                        attempt=attempt, problem=problem[:300])
            messages = [*messages, *followup]
        raise LLMError(f"openai/{model}: {request.purpose}: no valid {schema_name} after "
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
        """One assistant turn of an OpenAI-format conversation.

        Stop sequences are applied here, not sent: chat-completions reports a matched stop sequence
        as a plain "stop" (so a simulated user's ###STOP### would be lost), and some models reject
        the parameter. Tool calls come back with their raw argument strings, malformed or not; the
        orchestrator answers a bad one with a tool error."""
        model = self.model_for(role)
        params: dict[str, Any] = {self.settings.max_tokens_field: max_tokens}
        if tools:
            params["tools"] = [_to_openai_tool(t) for t in tools]
        if self.settings.send_temperature and self.settings.temperature is not None:
            params["temperature"] = self.settings.temperature
        sent = _to_openai_messages(system, messages)
        completion = await self._create(model, purpose, messages=sent, **params)
        choice = completion.choices[0]
        text, matched = _cut_at_stop(choice.message.content or "", stop_sequences)
        calls = [_tool_call(call, index, len(sent)) for index, call in enumerate(choice.message.tool_calls or [])]
        reason = "stop_sequence" if matched else _STOP_REASONS.get(choice.finish_reason or "stop", choice.finish_reason)
        return ChatTurn(text=text, tool_calls=calls, stop_reason=reason,
                        usage=_add_usage(Usage(), completion), model=completion.model or model)

    async def aclose(self) -> None:
        """Close the HTTP client (connections are pooled per event loop)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._client_loop = None

    # -- transport -------------------------------------------------------------------------

    def base_url(self) -> str:
        """The endpoint calls go to, resolved the way the SDK would."""
        return self.settings.base_url or os.environ.get("OPENAI_BASE_URL") or _DEFAULT_BASE_URL

    def _api_key(self, base_url: str) -> str:
        key = os.environ.get(self.settings.api_key_env)
        if key:
            return key
        if urlsplit(base_url).hostname == _OPENAI_HOST:
            raise ProviderUnavailable(f"openai provider: environment variable {self.settings.api_key_env} "
                           "is not set (it must hold the API key)")
        return _PLACEHOLDER_KEY

    def _client_for_loop(self) -> openai.AsyncOpenAI:
        base_url = self.base_url()
        refuse_network_under_pytest(base_url)
        key = self._api_key(base_url)
        loop = asyncio.get_running_loop()
        # An HTTP connection pool belongs to the loop that opened it.
        if self._client is None or self._client_loop is not loop:
            self._client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0,
                                              timeout=self.settings.timeout_seconds)
            self._client_loop = loop
        return self._client

    async def _create(self, model: str, purpose: str, **params: Any) -> ChatCompletion:
        """One chat-completions call, retried on 429 / 5xx / timeouts / connection errors."""
        client = self._client_for_loop()
        completion = await call_with_retries(
            lambda: client.chat.completions.create(model=model, **params), provider=self.name, model=model,
            purpose=purpose, limit=self._limits.get(model, self.base_url()),
            policy=RetryPolicy(self.settings.max_retries, self.settings.backoff_base), classify=self._failure)
        if not completion.choices:  # the SDK does not validate, so an odd server can send none
            raise LLMError(f"openai/{model}: {purpose}: the response has no choices")
        return completion

    def _failure(self, exc: Exception) -> Failure | None:
        failure = sdk_failure(exc, openai, openai.OpenAIError, self.settings.timeout_seconds)
        if failure is not None and isinstance(exc, openai.AuthenticationError):
            return Failure(f"{failure.problem} (the key comes from {self.settings.api_key_env})", retryable=False)
        return failure


# -- structured output --------------------------------------------------------------------

def _parse_respond(completion: ChatCompletion, response_model: type[BaseModel], turn: int
                   ) -> tuple[BaseModel | None, list[dict[str, Any]], str]:
    """(output, messages that tell the model what was wrong, problem in one line)."""
    choice = completion.choices[0]
    calls = [_tool_call(call, index, turn) for index, call in enumerate(choice.message.tool_calls or [])]
    respond = next((call for call in calls if call.name == RESPOND_TOOL), None)
    truncated = " (the answer was cut at max_tokens)" if choice.finish_reason == "length" else ""
    replay = _assistant_message(choice.message.content or "", calls)
    if respond is None:
        problem = f"no call to the {RESPOND_TOOL} tool{truncated}"
        feedback = [_tool_message(call.id, f"unknown tool {call.name!r}; call {RESPOND_TOOL!r}") for call in calls]
        feedback.append({"role": "user", "content": f"Answer by calling the {RESPOND_TOOL} tool with "
                                                    "arguments that match its schema."})
        return None, [*replay, *feedback], problem
    try:
        arguments = json.loads(respond.arguments or "{}")
    except ValueError as exc:
        problem = f"the arguments are not valid JSON ({exc}){truncated}"
    else:
        try:
            return response_model.model_validate(arguments), [], ""
        except ValidationError as exc:
            problem = describe_validation(exc, response_model.__name__) + truncated
    # Every tool call needs its tool message, so extra calls get one too.
    feedback = [_tool_message(call.id, problem if call is respond else "ignored: only the first "
                              f"{RESPOND_TOOL} call counts") for call in calls]
    return None, [*replay, *feedback], problem


def _tool_message(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


# -- Skiller's chat turns ↔ chat-completions messages -------------------------------------

def _to_openai_messages(system: str, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Only the fields the API knows; every system message joins one leading system message
    (chat templates of open models accept a system prompt only at the start)."""
    system_parts = [system] if system else []
    out: list[dict[str, Any]] = []
    for msg in messages:
        role = msg["role"]
        if role == "system":
            system_parts.append(_text_of(msg.get("content")))
        elif role == "user":
            out.append({"role": "user", "content": _text_of(msg.get("content"))})
        elif role == "assistant":
            calls = [ToolCall(id=c["id"], name=c["function"]["name"], arguments=_arguments_text(
                c["function"].get("arguments"))) for c in msg.get("tool_calls") or []]
            out.extend(_assistant_message(_text_of(msg.get("content")), calls) or
                       [{"role": "assistant", "content": ""}])
        elif role == "tool":
            out.append(_tool_message(msg["tool_call_id"], _text_of(msg.get("content"))))
        else:
            raise LLMError(f"chat: unsupported message role {role!r}")
    system_text = "\n\n".join(part for part in system_parts if part)
    return [{"role": "system", "content": system_text}, *out] if system_text else out


def _assistant_message(text: str, calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """An assistant turn to send back; arguments that are not a JSON object travel as
    `{"raw_arguments": "<text>"}`, so strict servers (vLLM parses them) accept the history and the
    model still sees what it wrote next to the error its tool message carries."""
    if not text and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": _object_arguments(c.arguments)}} for c in calls]
    return [message]


def _object_arguments(arguments: str) -> str:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        value = None
    if isinstance(value, dict):
        return arguments or "{}"
    return json.dumps({"raw_arguments": arguments}, ensure_ascii=False)


def _to_openai_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function", tool)
    out: dict[str, Any] = {"name": function["name"],
                           "parameters": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        out["description"] = function["description"]
    return {"type": "function", "function": out}


def _tool_call(call: Any, index: int, turn: int) -> ToolCall:
    """A returned tool call as Skiller's ToolCall, whatever the server filled in: a missing name
    becomes "" (the environment answers "unknown tool"), object arguments become JSON text, a
    missing id one derived from the call and its place in the conversation."""
    function = getattr(call, "function", None) or getattr(call, "custom", None)
    name = str(getattr(function, "name", None) or "")
    raw = getattr(function, "arguments", None)
    if raw is None:
        raw = getattr(function, "input", None)  # custom tools carry free text
    arguments = _arguments_text(raw)
    call_id = getattr(call, "id", None)
    if not call_id:
        digest = hashlib.sha256(f"{turn}|{index}|{name}|{arguments}".encode()).hexdigest()[:16]
        call_id = f"call_{digest}"
    return ToolCall(id=str(call_id), name=name, arguments=arguments)


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


def _cut_at_stop(text: str, stop_sequences: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop sequence, and whether one was found."""
    cuts = [text.find(stop) for stop in stop_sequences if stop and stop in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))


def _add_usage(total: Usage, completion: ChatCompletion) -> Usage:
    used = completion.usage
    return Usage(input_tokens=total.input_tokens + ((used.prompt_tokens or 0) if used else 0),
                 output_tokens=total.output_tokens + ((used.completion_tokens or 0) if used else 0))
