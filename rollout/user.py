"""Simulated users: a deterministic template user driven by the persona, and an LLM playing the persona."""
from __future__ import annotations

import hashlib
import random
from typing import Any

from rollout.base import STOP, USER_STOP_TOKENS, ChatProvider, UserTurn, message_text
from servers.task import Persona, Task

__all__ = ["AGENT_GREETING", "BuiltinUser", "ChatUser", "user_system_prompt"]

# Seen only by the LLM user (the flipped frame must open with a "user" turn); never in transcripts.
AGENT_GREETING = "Hi! How can I help you today?"

_PATIENCE = {"low": 1, "medium": 2, "high": 3}  # "I don't know" answers before the user gives up

_LEAD = {
    "casual": ["", "sure, ", "oh yeah, "],
    "neutral": ["", "Sure. ", "Okay. "],
    "formal": ["Certainly. ", "Of course. ", "Thank you for asking. "],
}
_STYLE = {  # free-form persona styles we know; others add nothing
    "anxious": ["Sorry, I hope this is right: ", "Um, okay, let me check. "],
    "chatty": ["Oh, happy to help with that! ", "Ah, good question, let me see. "],
    "impatient": ["Fine. ", "Quickly then: "],
    "friendly": ["Happy to! ", "No problem! "],
    "confused": ["I think ", "If I understand you right, "],
}
_TAIL = {
    "terse": [""],
    "normal": ["", ""],
    "detailed": [" Let me know if you need anything else from me.",
                 " I hope that is everything you need to go ahead.",
                 " Please tell me if anything else is required."],
}
_THANKS = {
    "casual": ["cool, thanks!", "great, thanks a lot!", "awesome, that's all I needed."],
    "neutral": ["Thank you, that's all I needed.", "Thanks, that answers it.", "Okay, thank you."],
    "formal": ["Thank you very much for your assistance.", "Many thanks, that will be all.",
               "I appreciate your help; that is all."],
}
_DONT_KNOW = {
    "casual": ["hmm, no idea, sorry.", "I don't have that, sorry."],
    "neutral": ["I'm sorry, I don't have that information.", "I don't know that, unfortunately."],
    "formal": ["I'm afraid I do not have that information.", "Regrettably, I do not know that."],
}
_GIVE_UP = {
    "casual": ["never mind, I'll sort it out some other way.", "forget it, I'll try later."],
    "neutral": ["I don't have anything more to share, so I'll stop here.", "Let's leave it there, thanks."],
    "formal": ["I am afraid I cannot provide more, so I will end here.", "I shall leave it at that, thank you."],
}


class BuiltinUser:
    """A deterministic user without an LLM: the first query, then one fact per question, then stop.

    Everything is derived from the conversation (a fact counts as disclosed once its value appears
    in a user message, the first query included), so one instance is safe to share. Phrasing comes
    from the persona (register, style, verbosity) with a variant picked by a RNG seeded by
    (seed, task id, turn)."""

    name = "builtin"
    model: str | None = None

    def __init__(self, task: Task, seed: int = 0) -> None:
        self.task = task
        self.seed = seed

    async def respond(self, messages: list[dict[str, Any]]) -> UserTurn:
        said = [message_text(m) for m in messages if m.get("role") == "user"]
        if not said:
            return UserTurn(text=self.task.first_query)
        persona = self.task.user_scenario.persona
        rng = self._rng(len(said))
        asked = "?" in self._last_assistant_text(messages)
        if not asked:  # an answer, not a question: the goal is met or cannot be
            return UserTurn(text=f"{self._closing(_THANKS, persona, rng, ' Have a good day.')} {STOP}", stop=True)
        facts = {k: v for k, v in self.task.user_scenario.facts.items() if v}
        pending = [(k, v) for k, v in facts.items() if not any(v.lower() in s.lower() for s in said)]
        if pending:
            return UserTurn(text=self._disclose(*pending[0], persona, rng))
        unknown = sum(1 for s in said[1:] if not any(v.lower() in s.lower() for v in facts.values()))
        if unknown < _PATIENCE[persona.patience]:
            return UserTurn(text=self._closing(_DONT_KNOW, persona, rng, " Sorry I can't be more helpful."))
        return UserTurn(text=f"{self._closing(_GIVE_UP, persona, rng, ' Have a good day.')} {STOP}", stop=True)

    def _rng(self, turn: int) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}|{self.task.id}|{turn}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    @staticmethod
    def _last_assistant_text(messages: list[dict[str, Any]]) -> str:
        for message in reversed(messages):
            if message.get("role") == "assistant" and message_text(message):
                return message_text(message)
        return ""

    @staticmethod
    def _disclose(key: str, value: str, persona: Persona, rng: random.Random) -> str:
        style = "" if persona.verbosity == "terse" else rng.choice(_STYLE.get(persona.style.lower(), [""]))
        prefix = style or rng.choice(_LEAD[persona.language_register])  # one opener, not two
        core = f"my {key.replace('_', ' ')} is {value}"
        if persona.language_register != "casual" and (not prefix or prefix.rstrip()[-1] in ".!"):
            core = "M" + core[1:]  # a sentence starts here
        text = prefix + core
        if persona.language_register != "casual" or persona.verbosity != "terse":
            text += "."
        return text + rng.choice(_TAIL[persona.verbosity])

    @staticmethod
    def _closing(table: dict[str, list[str]], persona: Persona, rng: random.Random, detail: str) -> str:
        text = rng.choice(table[persona.language_register])
        if persona.verbosity == "detailed":
            text += detail
        return text[0].upper() + text[1:] if persona.language_register != "casual" else text


def user_system_prompt(task: Task) -> str:
    """The LLM user's instructions: persona, scenario (τ²-style), the facts it may share, and the rules."""
    scenario = task.user_scenario
    p, i = scenario.persona, scenario.instructions
    facts = "\n".join(f"- {k}: {v}" for k, v in scenario.facts.items()) or "- (none)"
    return f"""You are playing a customer who contacts the support assistant of {i.domain}. Stay in \
character: you are the customer, not an assistant.

Persona: {p.name}; style: {p.style}; patience: {p.patience}; verbosity: {p.verbosity}; register: \
{p.language_register}; language: {p.language}.

<scenario>
Domain: {i.domain}
Reason for call: {i.reason_for_call}
Known info: {i.known_info}
Unknown info: {i.unknown_info}
Task instructions: {i.task_instructions}
Facts you may share (the only concrete values you know):
{facts}
</scenario>

Rules:
- You already sent your first message. Write one message at a time, in the persona's voice.
- Disclose information progressively: share a fact only when the assistant asks for it or needs it.
- Never invent names, ids, numbers, dates or other details that are not in the scenario; if you are \
asked for something you do not know, say that you do not know it.
- You have no tools; do not pretend you did anything yourself.
- When your goal is reached, or it clearly cannot be reached, end the conversation by writing {STOP}."""


class ChatUser:
    """An LLM plays the user. Turn 1 is the task's first query (no call); later turns see the
    conversation role-flipped (assistant text as "user", own messages as "assistant", tool traffic
    hidden) and stop on the `###STOP###` stop sequence."""

    def __init__(self, provider: ChatProvider, task: Task, role: str = "text", max_tokens: int = 1024) -> None:
        self.provider = provider
        self.task = task
        self.role = role
        self.max_tokens = max_tokens
        self.system = user_system_prompt(task)
        self.name = getattr(provider, "name", "chat")
        model_for = getattr(provider, "model_for", None)
        self.model: str | None = model_for(role) if callable(model_for) else None

    async def respond(self, messages: list[dict[str, Any]]) -> UserTurn:
        if not any(m.get("role") == "user" for m in messages):
            return UserTurn(text=self.task.first_query)
        turn = await self.provider.chat(self.role, self.system, flip(messages), [], stop_sequences=[STOP],
                                        max_tokens=self.max_tokens)
        text = turn.text.strip()
        stop = turn.stop_reason == "stop_sequence" or any(token in text for token in USER_STOP_TOKENS)
        if stop and not any(token in text for token in USER_STOP_TOKENS):
            text = f"{text} {STOP}".strip()  # the API strips the matched stop sequence; keep it visible
        return UserTurn(text=text, stop=stop, input_tokens=turn.usage.input_tokens,
                        output_tokens=turn.usage.output_tokens)


def flip(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The agent-frame conversation as the user LLM sees it."""
    flipped: list[dict[str, Any]] = [{"role": "user", "content": AGENT_GREETING}]
    for message in messages:
        text = message_text(message)
        if message.get("role") == "user":
            flipped.append({"role": "assistant", "content": text})
        elif message.get("role") == "assistant" and text:
            flipped.append({"role": "user", "content": text})
    return flipped
