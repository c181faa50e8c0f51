"""ChatAgent and ChatUser through the real anthropic provider against the local Messages-API server."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from skiller.rollout import STOP, BuiltinUser, ChatAgent, ChatUser, run_episode, to_sft
from skiller.servers import Environment
from skiller.llm.anthropic_provider import AnthropicProvider, AnthropicSettings
from tests.fakes import MessagesServer, messages_server, text_reply, tool_use_reply  # noqa: F401  (fixture)
from tests.rollout.support import CHATTY, POLICY, borrow_task

AGENT_SCRIPT = [
    text_reply("Happy to help. What is your member id?"),
    tool_use_reply("get_member", {"person_id": "P-001"}, id="toolu_a"),
    tool_use_reply("borrow_book", ["P-001", "BK-005"], id="toolu_b"),  # type: ignore[arg-type]  # not an object
    tool_use_reply("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}, id="toolu_c"),
    text_reply("Done: loan LN-0005 is due on 2026-03-16."),
]
USER_SCRIPT = [
    text_reply("My member id is P-001."),
    text_reply("Thanks, that's all.", stop_reason="stop_sequence", stop_sequence=STOP),
]


@pytest.fixture(autouse=True)
def _dummy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-dummy")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def provider(server: MessagesServer, model: str) -> AnthropicProvider:
    return AnthropicProvider(AnthropicSettings(base_url=server.base_url, text_model=model, max_retries=0,
                                               timeout_seconds=5.0))


def scripted(agent: list[dict[str, Any]], user: list[dict[str, Any]]):
    scripts = {"fake-agent": list(agent), "fake-user": list(user)}

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        return scripts[body["model"]].pop(0)

    return respond


def blocks(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"] if b["type"] == kind]


def test_chat_agent_and_chat_user_run_an_episode_over_the_messages_api(messages_server: MessagesServer,
                                                                       env: Environment) -> None:
    messages_server.responder = scripted(AGENT_SCRIPT, USER_SCRIPT)
    agent_llm, user_llm = provider(messages_server, "fake-agent"), provider(messages_server, "fake-user")
    task = borrow_task(env, CHATTY)

    async def main():
        try:
            return await run_episode(task, env, ChatAgent(agent_llm), ChatUser(user_llm, task), system_prompt=POLICY)
        finally:
            await agent_llm.aclose()
            await user_llm.aclose()

    transcript = asyncio.run(main())

    assert transcript.termination == "user_stop" and env.state_hash() == task.gold_state_hash
    assert transcript.agent == "anthropic" and transcript.models == {"agent": "fake-agent", "user": "fake-user"}
    assert transcript.usage == {"agent_input_tokens": 50, "agent_output_tokens": 25, "user_input_tokens": 20,
                                "user_output_tokens": 10}
    good, malformed, borrowed = transcript.tool_calls
    assert good.ok and borrowed.ok and borrowed.output["loan_id"] == "LN-0005"
    assert not malformed.ok and malformed.arguments is None and "must be a JSON object" in malformed.error
    assert malformed.raw_arguments == '["P-001", "BK-005"]'
    assert transcript.messages[-1] == {"role": "user", "content": f"Thanks, that's all. {STOP}"}
    assert to_sft(transcript)["messages"][-1] == {"role": "user", "content": "Thanks, that's all."}

    agent_bodies = [b for b in messages_server.requests if b["model"] == "fake-agent"]
    user_bodies = [b for b in messages_server.requests if b["model"] == "fake-user"]
    assert len(agent_bodies) == 5 and len(user_bodies) == 2
    first = agent_bodies[0]
    assert first["system"] == POLICY and "stop_sequences" not in first
    assert first["messages"] == [{"role": "user", "content": [{"type": "text", "text": task.first_query}]}]
    assert [t["name"] for t in first["tools"]] == ["get_member", "search_books", "borrow_book", "return_book"]
    assert first["tools"][0]["input_schema"]["required"] == ["person_id"]

    # After each call the model sees its tool_use (renumbered id) and the matching tool_result.
    after_lookup, after_malformed, after_borrow = agent_bodies[2:]
    assert after_lookup["messages"][-2]["content"][-1] == {"type": "tool_use", "id": "call_1", "name": "get_member",
                                                           "input": {"person_id": "P-001"}}
    [result] = after_lookup["messages"][-1]["content"]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", "call_1")
    assert json.loads(result["content"])["name"] == "Ada Lovelace"
    assert after_malformed["messages"][-2]["content"][-1] == {
        "type": "tool_use", "id": "call_2", "name": "borrow_book", "input": {"raw_arguments": '["P-001", "BK-005"]'}}
    [error] = after_malformed["messages"][-1]["content"]
    assert error["tool_use_id"] == "call_2" and "must be a JSON object" in json.loads(error["content"])["error"]
    assert [b["tool_use_id"] for b in blocks(after_borrow, "tool_result")] == ["call_1", "call_2", "call_3"]
    assert json.loads(blocks(after_borrow, "tool_result")[-1]["content"])["due_date"] == "2026-03-16"

    # The user model gets the persona prompt, the stop sequence, no tools and a role-flipped, tool-free view.
    for body in user_bodies:
        assert body["stop_sequences"] == [STOP] and "tools" not in body
        assert "chatty" in body["system"] and task.user_scenario.instructions.reason_for_call in body["system"]
        assert not blocks(body, "tool_use") and not blocks(body, "tool_result")
    roles_texts = [(m["role"], m["content"][0]["text"]) for m in user_bodies[0]["messages"]]
    assert roles_texts == [("user", "Hi! How can I help you today?"), ("assistant", task.first_query),
                           ("user", "Happy to help. What is your member id?")]
    assert user_bodies[1]["messages"][-1]["content"][-1]["text"] == "Done: loan LN-0005 is due on 2026-03-16."


def test_chat_agent_system_replaces_the_conversation_policy(messages_server: MessagesServer, env: Environment) -> None:
    messages_server.push(text_reply("I can only help with library matters."))
    agent_llm = provider(messages_server, "fake-agent")
    task = borrow_task(env)

    async def main():
        try:
            return await run_episode(task, env, ChatAgent(agent_llm, system="Custom instructions."), BuiltinUser(task),
                                     system_prompt=POLICY)
        finally:
            await agent_llm.aclose()

    transcript = asyncio.run(main())
    assert transcript.termination == "user_stop"
    assert messages_server.requests[0]["system"] == "Custom instructions."
