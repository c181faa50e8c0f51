"""Outputs that fit: caps per purpose from config, a reply cut at `max_tokens` is asked again with a larger
cap (never accepted, never re-asked at the same cap), and a wrong model id is one line naming its key."""
from __future__ import annotations

import asyncio
import typing
from typing import Any

import anthropic.types
import pytest
from pydantic import BaseModel

from skiller.config import Config, load_config
from skiller.llm.anthropic_provider import AnthropicProvider, AnthropicSettings
from skiller.llm.client import LLMClient
from skiller.llm.interface import LLMError, LLMRequest, LLMResponse, Message
from skiller.llm.openai_provider import OpenAIProvider, OpenAISettings
from tests.fakes import (
    ChatCompletionsServer,
    MessagesServer,
    chat_completions_server,  # noqa: F401  (fixture)
    completion_reply,
    error_reply,
    function_call,
    messages_server,  # noqa: F401  (fixture)
    sized_tool_use_reply,
    tool_use_reply,
)


class Batch(BaseModel):
    items: list[str]


FULL = {"items": [f"item number {i} with some words to make it long" for i in range(40)]}  # ~490 tokens


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-dummy")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")


def request(max_tokens: int) -> LLMRequest:
    return LLMRequest(purpose="s14.templates", messages=(Message(role="user", content="List items."),),
                      response_model=Batch, max_tokens=max_tokens)


def anthropic_for(server: MessagesServer, **overrides: Any) -> AnthropicProvider:
    return AnthropicProvider(AnthropicSettings(**{"base_url": server.base_url, "backoff_base": 0.001,
                                                  "timeout_seconds": 5.0, "text_model": "fake-text",
                                                  "code_model": "fake-code", **overrides}))


def complete(provider, req: LLMRequest) -> LLMResponse:
    async def main() -> LLMResponse:
        try:
            return await provider.complete(req)
        finally:
            await provider.aclose()
    return asyncio.run(main())


def truncating(body: dict) -> dict:
    """A model whose answer is FULL, cut at whatever max_tokens the request carries."""
    return sized_tool_use_reply("respond", FULL, body["max_tokens"])


def test_a_cut_answer_is_asked_again_with_a_doubled_cap_never_accepted(messages_server: MessagesServer) -> None:
    messages_server.responder = truncating
    response = complete(anthropic_for(messages_server), request(max_tokens=256))
    assert response.output == Batch(**FULL)
    caps = [r["max_tokens"] for r in messages_server.requests]
    assert caps == [256, 512]  # the cut answer (which validates: a shorter list) was not accepted
    assert all(r["messages"] == messages_server.requests[0]["messages"] for r in messages_server.requests)


def test_a_cut_answer_that_validates_is_still_not_accepted(messages_server: MessagesServer) -> None:
    cut = tool_use_reply("respond", {"items": ["item number 0"]}) | {"stop_reason": "max_tokens"}
    messages_server.push(cut, tool_use_reply("respond", FULL))
    response = complete(anthropic_for(messages_server), request(max_tokens=300))
    assert response.output == Batch(**FULL) and [r["max_tokens"] for r in messages_server.requests] == [300, 600]


def test_a_cut_at_the_ceiling_is_one_line_naming_the_keys_and_never_re_asked_at_the_same_cap(
        messages_server: MessagesServer) -> None:
    messages_server.responder = truncating
    provider = anthropic_for(messages_server, max_output_tokens=300)
    with pytest.raises(LLMError) as caught:
        complete(provider, request(max_tokens=256))
    message = str(caught.value)
    assert "\n" not in message
    assert "max_tokens=300" in message and "provider.anthropic.max_output_tokens" in message
    assert "output_caps.s14_templates" in message
    assert [r["max_tokens"] for r in messages_server.requests] == [256, 300]


def test_the_request_cap_is_clamped_to_the_ceiling(messages_server: MessagesServer) -> None:
    messages_server.responder = truncating
    complete(anthropic_for(messages_server, max_output_tokens=4000), request(max_tokens=100_000))
    assert [r["max_tokens"] for r in messages_server.requests] == [4000]


def test_openai_length_stop_is_asked_again_with_a_doubled_cap(chat_completions_server: ChatCompletionsServer) -> None:
    cut = completion_reply(None, [function_call("respond", '{"items": ["item num')], finish_reason="length")
    chat_completions_server.push(cut, completion_reply(None, [function_call("respond", FULL)]))
    provider = OpenAIProvider(OpenAISettings(base_url=chat_completions_server.base_url, backoff_base=0.001,
                                             timeout_seconds=5.0, text_model="fake-text"))
    response = complete(provider, request(max_tokens=200))
    assert response.output == Batch(**FULL)
    assert [r["max_tokens"] for r in chat_completions_server.requests] == [200, 400]


def test_a_404_is_one_line_naming_the_model_and_its_config_key(messages_server: MessagesServer) -> None:
    messages_server.push(error_reply(404, "model: claude-nonexistent", error_type="not_found_error"))
    provider = anthropic_for(messages_server, text_model="claude-nonexistent")
    with pytest.raises(LLMError) as caught:
        complete(provider, request(max_tokens=256))
    message = str(caught.value)
    assert "\n" not in message and "'claude-nonexistent'" in message
    assert "provider.anthropic.text_model" in message and "provider.anthropic.code_model" not in message
    assert len(messages_server.requests) == 1  # not retried


def test_the_default_models_are_listed_by_the_installed_sdk() -> None:
    listed = {name for option in typing.get_args(anthropic.types.Model) for name in typing.get_args(option)}
    assert listed, "the SDK no longer lists model literals"
    settings = AnthropicSettings()
    assert settings.text_model in listed and settings.code_model in listed


def test_caps_come_from_config_per_purpose_with_a_default() -> None:
    caps = load_config(None, ["output_caps.s09_implementation=40000"]).output_caps
    assert caps.for_purpose("s09.implementation") == 40000
    assert caps.for_purpose("s14.judge") == Config().output_caps.s14_judge
    assert caps.for_purpose("eval.judge") == caps.default


class _Recording:
    name = "recording"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def model_for(self, role: str) -> str:
        return "m"

    async def complete(self, req: LLMRequest) -> LLMResponse:
        self.seen.append(req.max_tokens)
        return LLMResponse(output=Batch(items=[]), model="m")


class _Store:
    def cache_get(self, key):
        return None

    def cache_put(self, *args):
        pass


def test_the_client_sends_each_purpose_its_configured_cap() -> None:
    provider = _Recording()
    caps = load_config(None, ["output_caps.s14_templates=1234"]).output_caps
    client = LLMClient(provider, _Store(), caps.for_purpose)
    asyncio.run(client.ask(request(max_tokens=8192), "domain:X", []))
    assert provider.seen == [1234]
