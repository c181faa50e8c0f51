"""The anthropic provider against a real local Messages API server."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
import structlog.testing
from pydantic import BaseModel

from skiller.llm.anthropic_provider import AnthropicProvider, AnthropicSettings, ChatTurn, ToolCall
from skiller.llm.interface import LLMError, LLMRequest, Message
from tests.fakes import (
    MessagesServer,
    delay,
    error_reply,
    messages_server,  # noqa: F401  (fixture)
    rate_limited,
    server_error,
    text_reply,
    tool_use_reply,
)

T = TypeVar("T")
KEY = "sk-test-dummy-key-0000"


class City(BaseModel):
    name: str
    population: int


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def provider_for(server: MessagesServer, **overrides: Any) -> AnthropicProvider:
    # fake model names: the SDK warns about deprecated real ones
    settings = {"base_url": server.base_url, "backoff_base": 0.001, "timeout_seconds": 5.0,
                "max_retries": 2, "text_model": "fake-text", "code_model": "fake-code", **overrides}
    return AnthropicProvider(AnthropicSettings(**settings))


def run(provider: AnthropicProvider, coro: Coroutine[Any, Any, T]) -> T:
    async def main() -> T:
        try:
            return await coro
        finally:
            await provider.aclose()
    return asyncio.run(main())


def city_request() -> LLMRequest:
    return LLMRequest(purpose="test.city", system="Answer about cities.",
                      messages=(Message(role="user", content="Biggest city of France?"),),
                      response_model=City, max_tokens=256)


def test_valid_answer_is_parsed_and_the_request_forces_the_respond_tool(messages_server: MessagesServer) -> None:
    messages_server.push(tool_use_reply("respond", {"name": "Paris", "population": 2_100_000},
                                        input_tokens=30, output_tokens=12))
    provider = provider_for(messages_server)
    response = run(provider, provider.complete(city_request()))

    assert response.output == City(name="Paris", population=2_100_000)
    assert (response.model, response.attempts) == ("fake-text", 1)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 12)
    [body] = messages_server.requests
    assert body["model"] == "fake-text"
    assert body["system"] == "Answer about cities."
    assert body["messages"] == [{"role": "user", "content": "Biggest city of France?"}]
    assert body["tool_choice"] == {"type": "tool", "name": "respond"}
    [tool] = body["tools"]
    assert tool["name"] == "respond"
    assert tool["input_schema"] == City.model_json_schema()
    sent = messages_server.headers[0]
    assert KEY in sent.get("x-api-key", "") + sent.get("authorization", "")  # SDK 2.x sends a Bearer


def test_invalid_answer_is_repaired_after_error_feedback(messages_server: MessagesServer) -> None:
    messages_server.push(
        tool_use_reply("respond", {"name": "Paris", "population": "lots"}, id="toolu_bad",
                       input_tokens=30, output_tokens=12),
        tool_use_reply("respond", {"name": "Paris", "population": 2_100_000}, input_tokens=50, output_tokens=10),
    )
    provider = provider_for(messages_server)
    response = run(provider, provider.complete(city_request()))

    assert response.output == City(name="Paris", population=2_100_000)
    assert response.attempts == 2
    assert (response.usage.input_tokens, response.usage.output_tokens) == (80, 22)
    second = messages_server.requests[1]["messages"]
    assert second[0] == {"role": "user", "content": "Biggest city of France?"}
    assert second[1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_bad", "name": "respond", "input": {"name": "Paris", "population": "lots"}}]}
    [result] = second[2]["content"]
    assert second[2]["role"] == "user"
    assert (result["type"], result["tool_use_id"], result["is_error"]) == ("tool_result", "toolu_bad", True)
    assert "population" in result["content"] and "valid integer" in result["content"]


def test_answer_without_the_tool_call_is_asked_again(messages_server: MessagesServer) -> None:
    messages_server.push(text_reply("Paris, about two million."),
                         tool_use_reply("respond", {"name": "Paris", "population": 2}))
    provider = provider_for(messages_server)
    response = run(provider, provider.complete(city_request()))

    assert response.attempts == 2
    second = messages_server.requests[1]["messages"]
    assert second[1] == {"role": "assistant", "content": [{"type": "text", "text": "Paris, about two million."}]}
    assert second[2]["role"] == "user" and "respond" in second[2]["content"][0]["text"]


def test_answers_invalid_beyond_the_bound_raise_llm_error(messages_server: MessagesServer) -> None:
    bad = tool_use_reply("respond", {"name": "Paris"})
    messages_server.push(bad, bad)
    provider = provider_for(messages_server, max_validation_retries=1)
    with pytest.raises(LLMError, match=r"no valid City after 2 answers: .*population: Field required"):
        run(provider, provider.complete(city_request()))
    assert len(messages_server.requests) == 2


def test_rate_limit_is_retried_and_the_key_never_logged(messages_server: MessagesServer) -> None:
    messages_server.push(rate_limited(retry_after="0"), tool_use_reply("respond", {"name": "Lyon", "population": 5}))
    provider = provider_for(messages_server)
    with structlog.testing.capture_logs() as logs:
        response = run(provider, provider.complete(city_request()))

    assert response.output == City(name="Lyon", population=5)
    assert len(messages_server.requests) == 2
    [retry] = [entry for entry in logs if entry["event"] == "llm.retry"]
    assert retry["problem"].startswith("HTTP 429") and retry["wait_seconds"] == 0
    assert KEY not in repr(logs)


def test_server_error_is_retried(messages_server: MessagesServer) -> None:
    messages_server.push(server_error(500), tool_use_reply("respond", {"name": "Nice", "population": 3}))
    provider = provider_for(messages_server)
    assert run(provider, provider.complete(city_request())).output.name == "Nice"  # type: ignore[attr-defined]
    assert len(messages_server.requests) == 2


def test_timeout_is_retried(messages_server: MessagesServer) -> None:
    messages_server.push(delay(3.0), tool_use_reply("respond", {"name": "Metz", "population": 1}))
    provider = provider_for(messages_server, timeout_seconds=0.5)
    assert run(provider, provider.complete(city_request())).output.name == "Metz"  # type: ignore[attr-defined]
    assert len(messages_server.requests) == 2


def test_exhausted_retries_raise_a_one_line_llm_error(messages_server: MessagesServer) -> None:
    messages_server.push(server_error(503), server_error(500), server_error(529))
    provider = provider_for(messages_server, max_retries=2)
    with pytest.raises(LLMError) as caught:
        run(provider, provider.complete(city_request()))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("anthropic/fake-text: test.city: gave up after 3 tries: HTTP 529")
    assert len(messages_server.requests) == 3


def test_client_errors_are_not_retried(messages_server: MessagesServer) -> None:
    messages_server.push(error_reply(400, "messages: bad shape"))
    provider = provider_for(messages_server)
    with pytest.raises(LLMError, match="HTTP 400 messages: bad shape"):
        run(provider, provider.complete(city_request()))
    assert len(messages_server.requests) == 1


def test_a_network_base_url_is_refused_under_pytest() -> None:
    provider = AnthropicProvider(AnthropicSettings(base_url="https://api.anthropic.com"))
    with pytest.raises(LLMError, match="refusing to call a network model under pytest"):
        run(provider, provider.complete(city_request()))
    # no base_url falls back to Anthropic itself, which is refused as well
    provider = AnthropicProvider()
    with pytest.raises(LLMError, match="refusing"):
        run(provider, provider.chat("text", "", [{"role": "user", "content": "hi"}], []))


def test_missing_api_key_names_the_variable(messages_server: MessagesServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKILLER_TEST_KEY", raising=False)
    provider = provider_for(messages_server, api_key_env="SKILLER_TEST_KEY")
    with pytest.raises(LLMError, match="SKILLER_TEST_KEY is not set"):
        run(provider, provider.complete(city_request()))
    assert messages_server.requests == []


def test_model_for_picks_the_model_of_the_role() -> None:
    provider = AnthropicProvider(AnthropicSettings(text_model="t", code_model="c"))
    assert (provider.model_for("text"), provider.model_for("code")) == ("t", "c")


# -- chat ---------------------------------------------------------------------------------

SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the catalog.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}


def test_chat_translates_a_tool_use_reply_to_a_tool_call(messages_server: MessagesServer) -> None:
    messages_server.push(tool_use_reply("search", {"q": "blue shoes"}, id="toolu_1", text="Let me look.",
                                        input_tokens=20, output_tokens=8))
    provider = provider_for(messages_server)
    turn = run(provider, provider.chat("code", "Be brief.", [{"role": "user", "content": "shoes?"}], [SEARCH_TOOL]))

    assert turn == ChatTurn(text="Let me look.", stop_reason="tool_use", model="fake-code",
                            tool_calls=[ToolCall(id="toolu_1", name="search", arguments='{"q": "blue shoes"}')],
                            usage=turn.usage)
    assert json.loads(turn.tool_calls[0].arguments) == {"q": "blue shoes"}
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (20, 8)
    [body] = messages_server.requests
    assert body["tools"] == [{"name": "search", "description": "Search the catalog.",
                              "input_schema": SEARCH_TOOL["function"]["parameters"]}]
    assert "tool_choice" not in body and "stop_sequences" not in body


def test_chat_returns_text_with_the_stop_sequence_reason(messages_server: MessagesServer) -> None:
    messages_server.push(text_reply("All done.", stop_reason="stop_sequence", stop_sequence="###"))
    provider = provider_for(messages_server)
    turn = run(provider, provider.chat("text", "", [{"role": "user", "content": "go"}], [],
                                       stop_sequences=["###"], max_tokens=64))

    assert (turn.text, turn.tool_calls, turn.stop_reason) == ("All done.", [], "stop_sequence")
    [body] = messages_server.requests
    assert body["stop_sequences"] == ["###"] and body["max_tokens"] == 64
    assert "tools" not in body and "system" not in body


def test_chat_sends_a_tool_conversation_as_anthropic_blocks(messages_server: MessagesServer) -> None:
    messages_server.push(text_reply("Here they are."))
    conversation = [
        {"role": "system", "content": "Never invent products."},
        {"role": "user", "content": "Find blue and red shoes."},
        {"role": "assistant", "content": "Searching.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "blue"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "search", "arguments": "q=red"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "[sku-1]"},
        {"role": "tool", "tool_call_id": "call_2", "content": "error: arguments are not JSON"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_3", "type": "function", "function": {"name": "search", "arguments": '{"q": "red"}'}}]},
        {"role": "tool", "tool_call_id": "call_3", "content": "[]"},
        {"role": "user", "content": "Thanks."},
    ]
    provider = provider_for(messages_server)
    run(provider, provider.chat("text", "You sell shoes.", conversation, [SEARCH_TOOL]))

    [body] = messages_server.requests
    assert body["system"] == "You sell shoes.\n\nNever invent products."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Find blue and red shoes."}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Searching."},
            {"type": "tool_use", "id": "call_1", "name": "search", "input": {"q": "blue"}},
            {"type": "tool_use", "id": "call_2", "name": "search", "input": {"raw_arguments": "q=red"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "[sku-1]"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "error: arguments are not JSON"},
        ]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_3", "name": "search", "input": {"q": "red"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_3", "content": "[]"},
            {"type": "text", "text": "Thanks."},
        ]},
    ]


def test_chat_answers_from_a_responder(messages_server: MessagesServer) -> None:
    messages_server.responder = lambda body: text_reply(f"{len(body['messages'])} turns seen")
    provider = provider_for(messages_server)
    turn = run(provider, provider.chat("text", "", [{"role": "user", "content": "hi"}], []))
    assert turn.text == "1 turns seen"


# -- concurrency --------------------------------------------------------------------------

def test_concurrency_is_bounded_per_model(messages_server: MessagesServer) -> None:
    messages_server.push(*[delay(0.15, then=tool_use_reply("respond", {"name": f"c{i}", "population": i}))
                           for i in range(6)])
    provider = provider_for(messages_server, max_concurrency=2)

    async def six() -> list[Any]:
        return await asyncio.gather(*[provider.complete(city_request()) for _ in range(6)])

    responses = run(provider, six())
    assert len(responses) == 6 and messages_server.pending == 0
    assert messages_server.max_in_flight == 2


def test_rate_limit_shrinks_the_concurrency_limit(messages_server: MessagesServer) -> None:
    answer = tool_use_reply("respond", {"name": "Paris", "population": 1})
    messages_server.push(rate_limited(retry_after="0"), answer,
                         *[delay(0.15, then=answer) for _ in range(4)])
    provider = provider_for(messages_server, max_concurrency=4)

    async def one_then_four() -> None:
        await provider.complete(city_request())  # meets the 429: limit 4 -> 2
        await asyncio.gather(*[provider.complete(city_request()) for _ in range(4)])

    run(provider, one_then_four())
    assert messages_server.max_in_flight == 2
