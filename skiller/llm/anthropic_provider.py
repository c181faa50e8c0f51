"""The `anthropic` provider: the Messages API behind the LLM seam, with retries and per-endpoint concurrency."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import anthropic
import structlog
from anthropic.types import Message as AnthropicMessage
from pydantic import BaseModel, ValidationError

from skiller.llm.anthropic_settings import AnthropicSettings
from skiller.llm.interface import (ChatTurn, LLMError, LLMRequest, LLMResponse, ProviderUnavailable, Role,
                                   ToolCall, Usage)

__all__ = ["AnthropicProvider", "AnthropicSettings", "ChatTurn", "ToolCall", "RESPOND_TOOL"]

log = structlog.get_logger()

RESPOND_TOOL = "respond"
_DEFAULT_BASE_URL = "https://api.anthropic.com"
_RETRY_AFTER_CAP_SECONDS = 60.0
_BACKOFF_CAP_SECONDS = 30.0
_RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx


class AnthropicProvider:
    """Messages API provider: structured output through one forced tool (`complete`) and
    OpenAI-format tool-use conversations for rollouts (`chat`)."""

    name = "anthropic"

    def __init__(self, settings: AnthropicSettings | None = None) -> None:
        self.settings = settings or AnthropicSettings()
        self._limits: dict[tuple[str, str], _AdaptiveLimit] = {}
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
            "description": f"Give your answer as a {schema_name}. Call this tool exactly once.",
            "input_schema": request.response_model.model_json_schema(),
        }
        messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in request.messages]
        params: dict[str, Any] = {
            "max_tokens": request.max_tokens,
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
        for attempt in range(1, answers + 1):
            message = await self._create(model, request.purpose, messages=messages, **params)
            usage = _add_usage(usage, message)
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
                       f"{answers} answers: {_one_line(problem)}")

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
        if _under_pytest() and not _is_loopback(base_url):
            raise ProviderUnavailable("refusing to call a network model under pytest; "
                                      "point base_url at a local fake server")
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

    def _limit(self, model: str) -> _AdaptiveLimit:
        key = (model, self.base_url())
        if key not in self._limits:
            self._limits[key] = _AdaptiveLimit(self.settings.max_concurrency)
        return self._limits[key]

    async def _create(self, model: str, purpose: str, **params: Any) -> AnthropicMessage:
        """One Messages API call, retried on 429 / 5xx / timeouts / connection errors."""
        client = self._client_for_loop()
        limit = self._limit(model)
        tries = 0
        while True:
            tries += 1
            ticket = await limit.acquire()
            retry_after: float | None = None
            try:
                message = await client.messages.create(model=model, **params)
            except anthropic.APIStatusError as exc:
                problem = _status_problem(exc)
                if not _should_retry(exc):
                    # A refused key is the provider's door closed, not a bad request.
                    error = ProviderUnavailable if exc.status_code in (401, 403) else LLMError
                    raise error(f"anthropic/{model}: {purpose}: {problem}") from None
                if exc.status_code == 429 and limit.shrink(ticket):
                    log.warning("llm.concurrency_shrunk", provider=self.name, model=model,
                                limit=limit.current)
                retry_after = _retry_after(exc.response.headers)
            except anthropic.APITimeoutError:
                problem = f"timed out after {self.settings.timeout_seconds:g}s"
            except anthropic.APIConnectionError as exc:
                problem = f"connection error: {_one_line(str(exc.__cause__ or exc))}"
            except anthropic.AnthropicError as exc:
                raise LLMError(f"anthropic/{model}: {purpose}: {_one_line(str(exc))}") from None
            else:
                limit.grow()
                return message
            finally:
                limit.release()
            if tries > self.settings.max_retries:
                raise ProviderUnavailable(f"anthropic/{model}: {purpose}: gave up after {tries} tries: {problem}")
            wait = self._backoff(tries, retry_after)
            log.warning("llm.retry", provider=self.name, model=model, purpose=purpose, attempt=tries,
                        wait_seconds=round(wait, 3), problem=problem)
            await asyncio.sleep(wait)

    def _backoff(self, tries: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), _RETRY_AFTER_CAP_SECONDS)
        # Jitter keeps many clients that failed together from retrying in lockstep.
        base = self.settings.backoff_base * 2 ** (tries - 1)
        return min(base, _BACKOFF_CAP_SECONDS) * random.uniform(0.5, 1.0)


class _AdaptiveLimit:
    """A concurrency limit that halves on 429 (never below 1) and creeps back up by one per
    `limit` successes (AIMD). Waiters are futures of the running loop, so it is loop-agnostic."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self._limit = float(ceiling)
        self._in_flight = 0
        self._generation = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def current(self) -> int:
        return max(1, int(self._limit))

    async def acquire(self) -> int:
        while self._in_flight >= self.current:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._wake()  # pass on a wake-up this waiter can no longer use
                raise
        self._in_flight += 1
        return self._generation

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def shrink(self, ticket: int) -> bool:
        """Halve once per generation: requests that were in flight together and all got a
        429 describe one overload, not several."""
        if ticket != self._generation:
            return False
        self._generation += 1
        self._limit = max(1.0, self._limit / 2)
        return True

    def grow(self) -> None:
        if self._limit < self.ceiling:
            self._limit = min(float(self.ceiling), self._limit + 1 / self._limit)
            self._wake()

    def _wake(self) -> None:
        free = self.current - self._in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


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
        problem = _describe_validation(exc, response_model.__name__) + truncated
    # Every tool_use needs its tool_result, so extra calls get one too.
    feedback = [_tool_result(block.id, problem if block is respond else "ignored: only the first "
                             f"{RESPOND_TOOL} call counts") for block in uses]
    return None, feedback, problem


def _describe_validation(exc: ValidationError, schema_name: str) -> str:
    errors = [f"{'.'.join(str(part) for part in err['loc']) or '(root)'}: {err['msg']}"
              for err in exc.errors(include_url=False)]
    # Long for the model's sake; the LLMError trims it.
    return _one_line(f"the input does not match {schema_name}: " + "; ".join(errors), limit=4000)


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


def _should_retry(exc: anthropic.APIStatusError) -> bool:
    # The API may say explicitly whether a retry can help.
    hint = exc.response.headers.get("x-should-retry")
    if hint in ("true", "false"):
        return hint == "true"
    return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500


def _status_problem(exc: anthropic.APIStatusError) -> str:
    detail = exc.api_message or (exc.body if isinstance(exc.body, str) else "") or exc.type or ""
    return _one_line(f"HTTP {exc.status_code} {detail}".strip())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                continue  # an HTTP date: fall back to our own backoff
    return None


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _under_pytest() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ or "pytest" in sys.modules


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
