"""The openai provider against a loopback chat-completions server: structured output, chat turns and
tool calls, retries, per-endpoint concurrency and the key."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
import structlog.testing
from pydantic import BaseModel

from skiller.llm.interface import ChatTurn, LLMError, LLMRequest, Message, ToolCall
from skiller.llm.openai_provider import OpenAIProvider, OpenAISettings
from tests.fakes import (
    ChatCompletionsServer,
    chat_completions_server,  # noqa: F401  (fixture)
    chat_text_reply,
    completion_reply,
    delay,
    function_call,
    openai_error,
    openai_rate_limited,
    tool_calls_reply,
)

T = TypeVar("T")
KEY = "sk-test-openai-sentinel-0000"


class City(BaseModel):
    name: str
    population: int


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def provider_for(server: ChatCompletionsServer, **overrides: Any) -> OpenAIProvider:
    settings = {"base_url": server.base_url, "backoff_base": 0.001, "timeout_seconds": 5.0,
                "max_retries": 2, "text_model": "fake-text", "code_model": "fake-code", **overrides}
    return OpenAIProvider(OpenAISettings(**settings))


def run(provider: OpenAIProvider, coro: Coroutine[Any, Any, T]) -> T:
    async def main() -> T:
        try:
            return await coro
        finally:
            await provider.aclose()
    return asyncio.run(main())


def city_request() -> LLMRequest:
    return LLMRequest(purpose="test.city", system="Answer about cities.",
                      messages=(Message(role="user", content="Biggest city of France?"),),
                      response_model=City, max_tokens=256, temperature=0.0)


def respond(arguments: dict[str, Any] | str, id: str | None = None) -> dict[str, Any]:
    return tool_calls_reply(function_call("respond", arguments, id=id), prompt_tokens=30, completion_tokens=7)


# -- structured output --------------------------------------------------------------------

def test_valid_answer_is_parsed_and_the_request_forces_the_respond_function(
        chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(respond({"name": "Paris", "population": 2100000}))
    provider = provider_for(chat_completions_server)
    response = run(provider, provider.complete(city_request()))

    assert response.output == City(name="Paris", population=2100000)
    assert (response.model, response.attempts) == ("fake-text", 1)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 7)
    [body] = chat_completions_server.requests
    assert body["model"] == "fake-text" and body["max_tokens"] == 256 and body["temperature"] == 0.0
    assert body["messages"] == [{"role": "system", "content": "Answer about cities."},
                                {"role": "user", "content": "Biggest city of France?"}]
    [tool] = body["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "respond"
    assert tool["function"]["parameters"] == City.model_json_schema()
    assert body["tool_choice"] == {"type": "function", "function": {"name": "respond"}}
    assert chat_completions_server.headers[0]["authorization"] == f"Bearer {KEY}"


def test_invalid_and_malformed_answers_are_repaired_after_error_feedback(
        chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(respond('{"name": "Lyon", ', id="c1"), respond({"name": "Lyon"}, id="c2"),
                                 respond({"name": "Lyon", "population": 520000}, id="c3"))
    provider = provider_for(chat_completions_server)
    response = run(provider, provider.complete(city_request()))

    assert response.output == City(name="Lyon", population=520000) and response.attempts == 3
    assert response.usage.input_tokens == 90
    second, third = chat_completions_server.requests[1:]
    replayed, told = second["messages"][-2:]
    # Invalid JSON goes back as a JSON object (strict servers parse history), next to its error.
    assert replayed["tool_calls"][0]["function"]["arguments"] == json.dumps({"raw_arguments": '{"name": "Lyon", '})
    assert told["role"] == "tool" and told["tool_call_id"] == "c1" and "not valid JSON" in told["content"]
    assert third["messages"][-1]["tool_call_id"] == "c2"
    assert "population: Field required" in third["messages"][-1]["content"]


def test_an_answer_without_the_function_call_is_asked_again(chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(chat_text_reply("Paris, I think."), respond({"name": "Paris", "population": 1}))
    provider = provider_for(chat_completions_server)
    assert run(provider, provider.complete(city_request())).attempts == 2
    second = chat_completions_server.requests[1]
    assert second["messages"][-2] == {"role": "assistant", "content": "Paris, I think."}
    assert second["messages"][-1]["role"] == "user" and "respond" in second["messages"][-1]["content"]


def test_answers_invalid_beyond_the_bound_raise_llm_error(chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(respond({"name": "X"}), respond({"name": "X"}))
    provider = provider_for(chat_completions_server, max_validation_retries=1)
    with pytest.raises(LLMError, match=r"^openai/fake-text: test.city: no valid City after 2 answers: .*population"):
        run(provider, provider.complete(city_request()))
    assert len(chat_completions_server.requests) == 2


# -- retries ------------------------------------------------------------------------------

def test_rate_limit_is_retried_after_retry_after_and_the_key_never_logged(
        chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(openai_rate_limited(retry_after="0.2"), respond({"name": "Lyon", "population": 5}))
    provider = provider_for(chat_completions_server)
    with structlog.testing.capture_logs() as logs:
        response = run(provider, provider.complete(city_request()))

    assert response.output == City(name="Lyon", population=5)
    assert len(chat_completions_server.requests) == 2
    [retry] = [entry for entry in logs if entry["event"] == "llm.retry"]
    assert retry["problem"] == "HTTP 429 rate limited" and retry["wait_seconds"] == 0.2
    assert retry["provider"] == "openai"
    assert KEY not in repr(logs)


def test_server_errors_and_timeouts_are_retried(chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(openai_error(503), delay(3.0), respond({"name": "Metz", "population": 1}))
    provider = provider_for(chat_completions_server, timeout_seconds=0.5)
    with structlog.testing.capture_logs() as logs:
        assert run(provider, provider.complete(city_request())).output.name == "Metz"  # type: ignore[attr-defined]
    assert [e["problem"] for e in logs if e["event"] == "llm.retry"] == ["HTTP 503 fake 503", "timed out after 0.5s"]


def test_exhausted_retries_raise_a_one_line_llm_error(chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(openai_error(500), openai_error(502), openai_error(503, "down\nfor a while"))
    provider = provider_for(chat_completions_server, max_retries=2)
    with pytest.raises(LLMError) as caught:
        run(provider, provider.complete(city_request()))
    assert str(caught.value) == "openai/fake-text: test.city: gave up after 3 tries: HTTP 503 down for a while"


def test_client_errors_are_not_retried_and_401_names_the_key_variable(
        chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(openai_error(400, "messages: bad shape"), openai_error(401, "bad key"))
    provider = provider_for(chat_completions_server)
    with pytest.raises(LLMError, match="HTTP 400 messages: bad shape$"):
        run(provider, provider.complete(city_request()))
    with pytest.raises(LLMError, match=r"HTTP 401 bad key \(the key comes from OPENAI_API_KEY\)$"):
        run(provider, provider.complete(city_request()))
    assert len(chat_completions_server.requests) == 2


# -- endpoint and key ---------------------------------------------------------------------

def test_a_network_base_url_is_refused_under_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = OpenAIProvider(OpenAISettings(base_url="https://api.openai.com/v1"))
    with pytest.raises(LLMError, match="refusing to call a network model under pytest"):
        run(provider, provider.complete(city_request()))
    provider = OpenAIProvider()  # no base_url: OpenAI itself, refused as well
    with pytest.raises(LLMError, match="refusing"):
        run(provider, provider.chat("text", "", [{"role": "user", "content": "hi"}], []))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.1.2.3:8000/v1")  # the SDK's variable counts too
    with pytest.raises(LLMError, match="refusing"):
        run(provider, provider.chat("text", "", [{"role": "user", "content": "hi"}], []))


def test_a_local_server_needs_no_key_but_openai_does(chat_completions_server: ChatCompletionsServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    chat_completions_server.push(chat_text_reply("hi"))
    provider = provider_for(chat_completions_server)
    run(provider, provider.chat("text", "", [{"role": "user", "content": "hi"}], []))
    assert chat_completions_server.headers[0]["authorization"] == "Bearer not-needed"
    with pytest.raises(LLMError, match="environment variable OPENAI_API_KEY is not set"):
        provider._api_key("https://api.openai.com/v1")


def test_model_for_picks_the_model_of_the_role() -> None:
    provider = OpenAIProvider(OpenAISettings(text_model="t", code_model="c"))
    assert (provider.model_for("text"), provider.model_for("code")) == ("t", "c")


# -- chat ---------------------------------------------------------------------------------

SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the catalog.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}


def test_chat_returns_tool_calls_with_their_raw_arguments(chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(tool_calls_reply(
        function_call("search", {"q": "blue shoes"}, id="call_a"), function_call("search", "{q: red", id="call_b"),
        content="Let me look.", prompt_tokens=20, completion_tokens=8))
    provider = provider_for(chat_completions_server, temperature=0.3)
    turn = run(provider, provider.chat("code", "Be brief.", [{"role": "user", "content": "shoes?"}], [SEARCH_TOOL]))

    assert turn == ChatTurn(text="Let me look.", stop_reason="tool_use", model="fake-code", usage=turn.usage,
                            tool_calls=[ToolCall(id="call_a", name="search", arguments='{"q": "blue shoes"}'),
                                        ToolCall(id="call_b", name="search", arguments="{q: red")])
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (20, 8)
    [body] = chat_completions_server.requests
    assert body["tools"] == [SEARCH_TOOL] and body["temperature"] == 0.3 and body["max_tokens"] == 2048
    assert "tool_choice" not in body and "stop" not in body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "shoes?"}]


def test_chat_tolerates_tool_calls_without_id_or_name(chat_completions_server: ChatCompletionsServer) -> None:
    odd = [{"type": "function", "function": {"arguments": '{"q": "x"}'}},
           {"type": "function", "function": {"name": "search", "arguments": {"q": "y"}}}]
    chat_completions_server.push(completion_reply(None, odd))
    provider = provider_for(chat_completions_server)
    turn = run(provider, provider.chat("text", "", [{"role": "user", "content": "go"}], [SEARCH_TOOL]))

    nameless, object_args = turn.tool_calls
    assert nameless.name == "" and nameless.id.startswith("call_")  # the environment answers "unknown tool"
    assert object_args.arguments == '{"q": "y"}' and object_args.id != nameless.id
    assert turn.text == ""


def test_chat_cuts_at_a_stop_sequence_and_reports_it(chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(chat_text_reply("Thanks, bye. ###STOP### Assistant: you're welcome"),
                                 chat_text_reply("Still here.", finish_reason="length"))
    provider = provider_for(chat_completions_server)

    async def two() -> list[ChatTurn]:
        return [await provider.chat("text", "", [{"role": "user", "content": "done"}], [],
                                    stop_sequences=["###STOP###"], max_tokens=64) for _ in range(2)]

    stopped, cut = run(provider, two())
    assert (stopped.text, stopped.stop_reason) == ("Thanks, bye. ", "stop_sequence")
    assert (cut.text, cut.stop_reason) == ("Still here.", "max_tokens")
    assert "stop" not in chat_completions_server.requests[0]


def test_chat_sends_a_tool_conversation_as_chat_completions_messages(
        chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(chat_text_reply("Here they are."))
    conversation = [
        {"role": "system", "content": "Never invent products."},
        {"role": "user", "content": "Find blue and red shoes."},
        {"role": "assistant", "content": "Searching.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "blue"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "search", "arguments": "q=red"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "[sku-1]"},
        {"role": "tool", "tool_call_id": "call_2", "content": "error: arguments are not JSON"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_3", "type": "function", "function": {"name": "nope", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_3", "content": "unknown tool: nope"},
        {"role": "user", "content": [{"type": "text", "text": "Thanks."}]},
    ]
    provider = provider_for(chat_completions_server)
    run(provider, provider.chat("text", "You sell shoes.", conversation, [SEARCH_TOOL]))

    [body] = chat_completions_server.requests
    assert body["messages"] == [
        {"role": "system", "content": "You sell shoes.\n\nNever invent products."},
        {"role": "user", "content": "Find blue and red shoes."},
        {"role": "assistant", "content": "Searching.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "blue"}'}},
            {"id": "call_2", "type": "function", "function": {
                "name": "search", "arguments": '{"raw_arguments": "q=red"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "[sku-1]"},
        {"role": "tool", "tool_call_id": "call_2", "content": "error: arguments are not JSON"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_3", "type": "function", "function": {"name": "nope", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_3", "content": "unknown tool: nope"},
        {"role": "user", "content": "Thanks."},
    ]


def test_a_response_without_choices_is_one_clear_error(chat_completions_server: ChatCompletionsServer) -> None:
    chat_completions_server.push(completion_reply("x") | {"choices": []})
    provider = provider_for(chat_completions_server)
    with pytest.raises(LLMError, match="^openai/fake-text: chat: the response has no choices$"):
        run(provider, provider.chat("text", "", [{"role": "user", "content": "hi"}], []))


# -- concurrency --------------------------------------------------------------------------

def test_concurrency_is_bounded_per_model_and_shrinks_on_429(chat_completions_server: ChatCompletionsServer) -> None:
    answer = respond({"name": "Paris", "population": 1})
    chat_completions_server.push(*[delay(0.15, then=answer) for _ in range(6)],
                                 openai_rate_limited(retry_after="0"), answer,
                                 *[delay(0.15, then=answer) for _ in range(4)])
    provider = provider_for(chat_completions_server, max_concurrency=4)
    peaks = []

    async def scenario() -> None:
        await asyncio.gather(*[provider.complete(city_request()) for _ in range(6)])
        peaks.append(chat_completions_server.max_in_flight)
        await provider.complete(city_request())  # meets the 429: limit 4 -> 2
        chat_completions_server.max_in_flight = 0
        await asyncio.gather(*[provider.complete(city_request()) for _ in range(4)])
        peaks.append(chat_completions_server.max_in_flight)

    run(provider, scenario())
    assert peaks == [4, 2] and chat_completions_server.pending == 0
