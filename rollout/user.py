"""Simulated users: a deterministic template user driven by the persona, and an LLM playing the persona."""
from __future__ import annotations

import functools
import hashlib
import random
import re
from typing import Any

from skiller.rollout.base import STOP, USER_STOP_TOKENS, ChatProvider, UserTurn, message_text
from skiller.contract.dialogue import human_date, is_clause, is_yes, label_phrase, owned_by, said_value
from skiller.servers.task import Persona, Task

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


_YES_WORDS = {
    "casual": ["yes, go ahead.", "yep, do it.", "yes please!", "yeah, go for it."],
    "neutral": ["Yes, please go ahead.", "Yes, that's right.", "Yes, please do."],
    "formal": ["Yes, please proceed.", "Yes, I confirm.", "Yes, that is correct; please go ahead."],
}
_SORRY = {
    "casual": ["oops, my bad, ", "ah sorry, I misread it, "],
    "neutral": ["Sorry, my mistake. ", "Apologies, I misread it. "],
    "formal": ["My apologies, I misread it. ", "I beg your pardon, that was my error. "],
}
_PUSH_BACK = {
    "casual": ["really? is there no way around that?", "hmm, can't you make an exception just this once?"],
    "neutral": ["Is there really no way around that?", "Could you make an exception this once?"],
    "formal": ["Is there truly no way to make an exception?", "Might an exception be possible in my case?"],
}
_CONFIRMATION = re.compile(r"shall i (go ahead|proceed)|should i (go ahead|proceed)|do you want me to (go ahead|"
                           r"proceed)|may i (go ahead|proceed)|can i go ahead|do you confirm|please confirm", re.I)
_REFUSED = re.compile(r"\b(can't|cannot|can not|unable to|not able to|not allowed)\b", re.I)
_ANYTHING_ELSE = re.compile(r"anything else", re.I)
_VOLUNTEER = {"terse": 0.0, "normal": 0.2, "detailed": 0.35}  # chance to add a detail nobody asked for yet


class BuiltinUser:
    """A deterministic customer without an LLM, playing the task's scenario.

    Opens with the task's first message (the intent). Then it answers what the assistant asks: the
    facts whose labels the assistant's questions name (its id and name, a reference, a date...), one
    answer per question asked, sometimes adding a detail nobody asked for yet; a scenario's mistake
    (a wrong reference) is given first and corrected once the assistant reports it cannot be found.
    It confirms a proposed change with an explicit yes, pushes back once on a refusal when patient,
    says "I don't know" to anything outside its facts (giving up when its patience runs out), and
    ends with the stop token once the assistant has answered without asking anything.

    Everything is derived from the conversation (a fact counts as said once its value appears in a
    user message), so one instance is safe to share. Phrasing comes from the persona (register, style,
    verbosity) with variants from a RNG seeded by (seed, task id, turn); values are never invented."""

    name = "builtin"
    model: str | None = None

    def __init__(self, task: Task, seed: int = 0) -> None:
        self.task = task
        self.seed = seed
        # matched in the agent's words ('the day you collect the fill'), answered in the customer's own
        self._keys = _keys(tuple(k for k, v in task.user_scenario.facts.items() if v))

    async def respond(self, messages: list[dict[str, Any]]) -> UserTurn:
        said = [message_text(m) for m in messages if m.get("role") == "user"]
        if not said:
            return UserTurn(text=self.task.first_query)
        persona = self.task.user_scenario.persona
        rng = self._rng(len(said))
        last = self._last_assistant_text(messages)
        questions, confirming = _reading(last)
        if confirming:
            words = _YES_WORDS[persona.language_register]
            yes = _fresh(words, said, rng) or rng.choice(words)  # a yes said before, once each one was
            return UserTurn(text=self._cap(yes, persona))
        asked = self._asked(self._keys, questions)
        if asked:
            return UserTurn(text=self._answer(asked, said, persona, rng))
        if (self.task.kind == "refusal" and _REFUSED.search(last) and persona.patience != "low"
                and not any(_REFUSED.search(t) for t in self._assistant_texts(messages)[:-1])):
            return UserTurn(text=self._cap(rng.choice(_PUSH_BACK[persona.language_register]), persona))
        if not questions or _ANYTHING_ELSE.search(questions):  # answered: the goal is met or cannot be
            return UserTurn(text=f"{self._closing(_THANKS, persona, rng, ' Have a good day.')} {STOP}", stop=True)
        facts = {k: v for k, v in self.task.user_scenario.facts.items() if v}
        unknown = sum(1 for s in said[1:] if not any(said_value(s, v) for v in facts.values())
                      and not is_yes(s))
        if unknown < _PATIENCE[persona.patience]:
            return UserTurn(text=self._closing(_DONT_KNOW, persona, rng, " Sorry I can't be more helpful."))
        return UserTurn(text=f"{self._closing(_GIVE_UP, persona, rng, ' Have a good day.')} {STOP}", stop=True)

    # ------------------------------------------------------------------ what is asked
    @staticmethod
    @functools.lru_cache(maxsize=16384)  # by value: the same questions come back in every episode of a task
    def _asked(keys: tuple[tuple[str, str], ...], questions: str) -> tuple[str, ...]:
        """Fact labels the questions name, longest first so 'day of the slot for X' beats 'day of the slot'."""
        text = questions.casefold()
        found: list[tuple[int, str]] = []
        owner = _FOR_OWNER.search(text)  # "For the first appointment, could you tell me the day of the visit?"
        for label, key in keys:
            at = text.find(key)
            owned = owned_by([key]) if at < 0 and owner else None
            if owned and owned[1] == owner.group(1):  # type: ignore[union-attr]
                key = owned[0][0]
                at = text.find(key, owner.end())  # type: ignore[union-attr]
            if at < 0 and label.lower().endswith(" status"):  # "which X do you mean: what status is it in?"
                words = key.split()
                at = text.find(words[0]) if all(re.search(rf"\b{re.escape(w)}\b", text) for w in words) else -1
                key = words[0]
            if at >= 0:
                found.append((at, label))
                text = text[:at] + " " * len(key) + text[at + len(key):]
        return tuple(label for _, label in sorted(found))

    def _answer(self, asked: tuple[str, ...], said: list[str], persona: Persona, rng: random.Random) -> str:
        facts = self.task.user_scenario.facts
        mistake = self.task.user_scenario.mistake
        spoken = "\n".join(said)
        parts, sorry = [], ""
        # 'For the first appointment, the day ... is ...' (a terse answer to one question is the bare value)
        owned = owned_by(list(asked)) if len(asked) > 1 or persona.verbosity != "terse" else None
        for label in asked:
            value = facts[label]
            if mistake is not None and mistake.fact == label and not said_value(spoken, value):
                if not said_value(spoken, mistake.wrong):
                    value = mistake.wrong  # the slip: a reference they misread
                else:
                    sorry = rng.choice(_SORRY[persona.language_register])
            said_as = owned[0][asked.index(label)] if owned else label
            parts.append(self._fact(said_as, value, persona, rng, alone=len(asked) == 1))
        if owned:
            parts[0] = f"for {owned[1]}, {parts[0]}"
        pending = [k for k, v in facts.items() if v and k not in asked and not said_value(spoken, v)
                   and not (mistake is not None and k == mistake.fact) and not k.lower().endswith("full name")]
        if pending and rng.random() < _VOLUNTEER[persona.verbosity]:  # a detail out of order
            parts.append("Also, " + self._fact(pending[0], facts[pending[0]], persona, rng, alone=False))
        style = "" if persona.verbosity == "terse" or sorry else _fresh(_STYLE.get(persona.style.lower(), [""]), said, rng)
        text = " ".join(self._sentence(p if i == 0 else self._cap(p, persona), persona) for i, p in enumerate(parts))
        lead = sorry or style or _fresh(_LEAD[persona.language_register], said, rng)
        if not lead.strip() or lead.rstrip()[-1] in ".!":  # a new sentence starts
            text = text[:1].upper() + text[1:]
        return self._cap(lead + text + _fresh(_TAIL[persona.verbosity], said, rng), persona)

    @staticmethod
    def _fact(label: str, value: str, persona: Persona, rng: random.Random, alone: bool) -> str:
        shown = human_date(value) if persona.language_register != "neutral" and rng.random() < 0.6 else value
        shown = shown.replace("_", " ") if "_" in shown and " " not in shown else shown
        low = label.lower()
        if low.endswith("full name"):
            return rng.choice(["my name is {v}", "I'm {v}", "it's {v}"]).format(v=shown)
        if low.endswith("person id"):
            return rng.choice(["my person id is {v}", "my id is {v}", "it's {v}"]).format(v=shown)
        if low == "payment method":
            return f"I'd like to pay by {shown}"
        if alone and persona.verbosity == "terse":
            return shown
        if is_clause(label):  # 'why the team visits: meter replacement', not '... visits is meter replacement'
            return f"{label_phrase(label, 'user')}: {shown}"
        return f"{label_phrase(label, 'user')} is {shown}"

    @staticmethod
    def _sentence(text: str, persona: Persona) -> str:
        if persona.language_register == "casual" and persona.verbosity == "terse":
            return text
        return text + ("" if text.endswith((".", "!", "?")) else ".")

    @staticmethod
    def _cap(text: str, persona: Persona) -> str:
        return text if persona.language_register == "casual" else text[:1].upper() + text[1:]

    def _rng(self, turn: int) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}|{self.task.id}|{turn}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    @staticmethod
    def _assistant_texts(messages: list[dict[str, Any]]) -> list[str]:
        return [message_text(m) for m in messages if m.get("role") == "assistant" and message_text(m)]

    @staticmethod
    def _last_assistant_text(messages: list[dict[str, Any]]) -> str:
        for message in reversed(messages):
            if message.get("role") == "assistant" and message_text(message):
                return message_text(message)
        return ""

    @staticmethod
    def _closing(table: dict[str, list[str]], persona: Persona, rng: random.Random, detail: str) -> str:
        text = rng.choice(table[persona.language_register])
        if persona.verbosity == "detailed":
            text += detail
        return text[0].upper() + text[1:] if persona.language_register != "casual" else text


def _fresh(options: list[str], said: list[str], rng: random.Random) -> str:
    """One of the filler phrases not said yet in this conversation ('' once all were): a person who says "Let me
    know if you need anything else" says it once, not after every answer."""
    left = [o for o in options if not o.strip() or not any(o.strip().casefold() in s.casefold() for s in said)]
    return rng.choice(left) if left else ""


_FOR_OWNER = re.compile(r"\bfor (the (?:first|second|third|fourth|fifth|sixth) [a-z][a-z ]*?), ")

# What depends only on a task's facts or on an assistant text is read once for all episodes and turns.
@functools.lru_cache(maxsize=4096)
def _keys(facts: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(label, how a question names it), longest phrase first."""
    return tuple((k, label_phrase(k, "agent").removeprefix("the ").casefold())
                 for k in sorted(facts, key=lambda k: -len(label_phrase(k))))


@functools.lru_cache(maxsize=8192)
def _reading(last: str) -> tuple[str, bool]:
    """The questions in the assistant's last words, and whether they ask to confirm a change."""
    return " ".join(q for q in re.findall(r"[^.!?]*\?", last)), bool(_CONFIRMATION.search(last))


def user_system_prompt(task: Task) -> str:
    """The LLM user's instructions: persona, scenario (τ²-style), the facts it may share, and the rules."""
    scenario = task.user_scenario
    p, i = scenario.persona, scenario.instructions
    facts = "\n".join(f"- {k}: {v}" for k, v in scenario.facts.items()) or "- (none)"
    m = scenario.mistake
    slip = (f"\n- The first time you are asked for your {m.fact}, give {m.wrong} by mistake; when the assistant "
            f"says it cannot find it, apologise and give the right one.") if m else ""
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
- You already sent your first message. Write one message at a time, in the persona's voice, the way \
a real customer writes: short, and only about what you were asked.
- Disclose information progressively: share a fact only when the assistant asks for it or needs it; \
your identity (name, person id) only when the assistant asks to identify you.
- Never invent names, ids, numbers, dates or other details that are not in the scenario; if you are \
asked for something you do not know, say that you do not know it.{slip}
- When the assistant describes a change and asks whether to go ahead, answer with an explicit yes if it \
matches your goal, otherwise say no and what is wrong.
- If the assistant refuses because of a rule, you may ask once whether there is a way around it, then \
accept its answer.
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
