"""Assistant agents for rollouts: the golden-action oracle, a do-nothing baseline and a chat-model agent."""
from __future__ import annotations

import json
from typing import Any

from rollout.base import AgentToolCall, AgentTurn, ChatProvider, message_text
from servers.task import Task

__all__ = ["ChatAgent", "NoopAgent", "OracleAgent"]

_RESULT_CHARS = 1000  # a long search result is cut in the oracle's summary, never in the tool message


class OracleAgent:
    """Replays the task's golden actions, one tool call per turn, then states the results.

    Stateless across calls: progress is read from the conversation, so one instance may serve
    several episodes (and concurrent ones)."""

    name = "oracle"
    model: str | None = None

    def __init__(self, task: Task) -> None:
        self.task = task
        # Actions the user performs (requestor "user") are not the assistant's to replay.
        self._actions = [a for a in task.golden_actions if a.requestor == "assistant"]

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn:
        made = [call for m in messages if m.get("role") == "assistant" for call in m.get("tool_calls") or []]
        if len(made) < len(self._actions):
            action = self._actions[len(made)]
            call = AgentToolCall(id=f"call_{len(made) + 1}", name=action.name,
                                 arguments=json.dumps(action.arguments, ensure_ascii=False))
            return AgentTurn(tool_calls=[call])
        return AgentTurn(text=self._final(messages, made))

    def _final(self, messages: list[dict[str, Any]], made: list[dict[str, Any]]) -> str:
        results = {m.get("tool_call_id"): message_text(m) for m in messages if m.get("role") == "tool"}
        parts: list[str] = []
        if self.task.kind == "refusal":
            rule = self.task.violated_rule or "the policy"
            parts.append(f"I'm sorry, but I cannot do that because of the rule {rule}.")
        else:
            parts.append("All done.")
        # The outcome is what the writes returned; a read-only task's outcome is what was read.
        writes = {a.name for a in self._actions if a.mode == "write"}
        shown = [call for call in made if call["function"]["name"] in writes] or made
        lines = []
        for call in shown:
            content = results.get(call["id"], "")
            if len(content) > _RESULT_CHARS:
                content = content[: _RESULT_CHARS - 1] + "…"
            # Tool content is JSON text, where \u003f means '?': the builtin user reads a '?' as a
            # question, and a result must not look like one.
            lines.append(f"{call['function']['name']}: {content.replace('?', chr(92) + 'u003f')}")
        if lines:
            parts.append("Results: " + "; ".join(lines) + ".")
        info = self.task.evaluation_criteria.communicate_info
        if info:
            parts.append("To confirm: " + "; ".join(info) + ".")
        return " ".join(parts)


class NoopAgent:
    """Never calls a tool; politely declines. The baseline every DB-scored task must fail."""

    name = "noop"
    model: str | None = None
    text = "I'm sorry, but I can't help with that request."

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn:
        return AgentTurn(text=self.text)


class ChatAgent:
    """A chat model as the assistant, through any provider with an OpenAI-format `chat`.

    `system=None` uses the conversation's system message (the orchestrator puts the policy there);
    a string replaces it, so the policy is never sent twice. Tool calls come back with their raw
    argument strings; the orchestrator answers malformed ones with an error tool message."""

    def __init__(self, provider: ChatProvider, role: str = "text", system: str | None = None,
                 max_tokens: int = 2048) -> None:
        self.provider = provider
        self.role = role
        self.system = system
        self.max_tokens = max_tokens
        self.name = getattr(provider, "name", "chat")
        model_for = getattr(provider, "model_for", None)
        self.model: str | None = model_for(role) if callable(model_for) else None

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn:
        conversation, system = messages, ""
        if self.system is not None:
            conversation, system = [m for m in messages if m.get("role") != "system"], self.system
        turn = await self.provider.chat(self.role, system, conversation, tools, max_tokens=self.max_tokens)
        calls = [AgentToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in turn.tool_calls]
        return AgentTurn(text=turn.text, tool_calls=calls, input_tokens=turn.usage.input_tokens,
                         output_tokens=turn.usage.output_tokens)
