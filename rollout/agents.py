"""Assistant agents for rollouts: the golden-action oracle, a do-nothing baseline and a chat-model agent."""
from __future__ import annotations

import hashlib
import json
import operator
import re
from typing import Any

from skiller.rollout.base import AgentToolCall, AgentTurn, ChatProvider, message_text
from skiller.rollout.speech import Vocabulary, latest_per_record, say_value
from skiller.contract.dialogue import is_yes, label_phrase, leaf_values, said_value, value_text
from skiller.servers.task import GoldenAction, Task

__all__ = ["ChatAgent", "NoopAgent", "OracleAgent"]

# Stock phrases, one variant per (task, turn): a demonstrator that always says the same words teaches
# a model one sentence. Every confirmation question and every closing question keeps its marker words.
_CONFIRMS = ["Shall I go ahead?", "Should I proceed?", "Do you want me to go ahead?", "May I proceed?"]
_CONFIRM_SAID = re.compile(r"Shall I go ahead\?|Should I proceed\?|Do you want me to go ahead\?|May I proceed\?")
_CLOSINGS = ["Is there anything else I can help you with?", "Can I help you with anything else?",
             "Is there anything else you need today?"]
_GREETINGS = ["Hello, and thank you for contacting {s}. I'd be glad to help with that.",
              "Hi, thanks for reaching out to {s}! I can help you with that.",
              "Good day, and welcome to {s}. I'll be happy to help.",
              "Hello! Thanks for getting in touch with {s}; let's get this sorted."]
_ASKS = ["Could you please tell me {x}?", "May I have {x}, please?", "Could you give me {x}?"]
_WHY_ID = [" so I can find your account", " so I can look up your account", " so I can verify who you are"]
_CHECKING = ["Thank you, let me check that.", "Thanks, one moment while I look that up.", "Let me look that up for you."]
_DOING = ["Thank you, I'm doing that now.", "Great, making the change now.", "Thanks for confirming; doing it now."]
_ABOUT_TO = ["Before I make any change, here is what I will do: {c}.", "Just to confirm, I'm about to {c}.",
             "Here is the change I would make: {c}."]
_DONE = ["All done.", "That's done.", "Done, that went through.", "All set."]
_FOUND = ["Thank you, {n}, I have found your account.", "Thanks, {n}; I've found your account.",
          "I've located your account, {n}."]
_IDENTITY = ("person id", "full name")


_VOCABULARIES: dict[int, tuple[list[dict[str, Any]], Vocabulary]] = {}  # by tool list (kept alive here)


def _norm(value: Any) -> str:
    return value_text(value).strip().casefold()


def _tool_output(content: str) -> tuple[bool, Any]:
    """(ok, value) of a tool message: failures are `{"error": ...}`."""
    try:
        value = json.loads(content)
    except ValueError:
        return True, content
    if isinstance(value, dict) and set(value) == {"error"}:
        return False, value["error"]
    return True, value


class _Conversation:
    """What the oracle reads off the conversation so far. Read once: `extend` adds the messages that
    followed, so a turn costs its new messages, not the whole conversation again."""

    def __init__(self) -> None:
        self.read: list[dict[str, Any]] = []  # the messages read, in order
        self.user: list[str] = []
        self.calls: list[tuple[str, dict[str, Any], bool, Any]] = []  # name, arguments, ok, output
        self.last_role: str | None = None
        self.assistant_texts: list[str] = []
        self.called = False  # the assistant made a tool call
        self.confirmed = False  # the last assistant words asked to confirm, and the user said yes since
        self.said = ""
        self.turn = 0
        self._pending: dict[str, tuple[str, dict[str, Any]]] = {}
        self._normed: list[dict[str, str]] = []  # each call's arguments, normalized as `done` compares them
        self._asked = False
        self.derived: set[str] = set()  # values read off a profile (the person's name and id): never asked

    def follows(self, messages: list[dict[str, Any]]) -> bool:
        """Whether `messages` continues the conversation read so far (the orchestrator only ever appends)."""
        n = len(self.read)
        return len(messages) >= n and all(map(operator.is_, self.read, messages[:n]))

    def extend(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            self.read.append(m)
            role, text = m.get("role"), message_text(m)
            self.last_role = role
            if role == "assistant":
                self.turn += 1
                if text:
                    self.assistant_texts.append(text)
                for c in m.get("tool_calls") or []:
                    self.called = True
                    try:
                        args = json.loads(c["function"].get("arguments") or "{}")
                    except ValueError:
                        args = {}
                    self._pending[c["id"]] = (c["function"]["name"], args)
                if text and not m.get("tool_calls"):
                    self._asked, self.confirmed = bool(_CONFIRM_SAID.search(text)), False
            elif role == "tool" and m.get("tool_call_id") in self._pending:
                name, args = self._pending.pop(m["tool_call_id"])
                ok, value = _tool_output(text)
                self.calls.append((name, args, ok, value))
                if ok and isinstance(value, dict) and value.get("first_name") and value.get("last_name"):
                    self.derived |= {_norm(f"{value['first_name']} {value['last_name']}"), _norm(value.get("person_id"))}
                self._normed.append({k: _norm(v) for k, v in args.items()})
                self._asked, self.confirmed = False, False
            elif role == "user":
                self.user.append(text)
                self.said = "\n".join(self.user)
                self.confirmed = self._asked and is_yes(text)

    def done(self, action: GoldenAction, want: dict[str, str]) -> bool:
        """Whether a call with the action's name and these normalized arguments succeeded."""
        return any(ok and name == action.name and normed == want
                   for (name, _, ok, _), normed in zip(self.calls, self._normed))


class OracleAgent:
    """The demonstrator: follows the golden actions in order, wrapped in the acts a skilled agent
    performs. It greets; asks for the customer's id and name, then for each detail the next call needs;
    states every change and waits for an explicit yes; reports results in plain sentences; refuses a
    request the policy forbids by stating the rule in words and what is allowed; and, when a lookup
    fails on a wrong reference, says so and asks again.

    Progress is read from the conversation (what was read is remembered while the next conversation
    continues the last one, and read afresh when it does not), so one instance may serve several
    episodes (and concurrent ones)."""

    name = "oracle"
    model: str | None = None

    def __init__(self, task: Task) -> None:
        self.task = task
        # Actions the user performs (requestor "user") are not the assistant's to replay.
        self._actions = [a for a in task.golden_actions if a.requestor == "assistant"]
        self._wants = [{k: _norm(v) for k, v in a.arguments.items()} for a in self._actions]
        self._facts = {k: v for k, v in task.user_scenario.facts.items() if v}
        self._mistake = task.user_scenario.mistake
        self._words: tuple[list[dict[str, Any]], Vocabulary] | None = None
        self._talk: _Conversation | None = None

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn:
        talk, words = self._read(messages), self._vocabulary(tools)
        greeting = "" if talk.assistant_texts or talk.called else self._greeting(talk)
        if talk.last_role == "tool" and talk.calls and (not talk.calls[-1][2] or self._found_nothing(talk.calls[-1])):
            return AgentTurn(text=self._recover(talk, words))
        if talk.last_role == "user" and talk.assistant_texts and self._finished(talk):
            return AgentTurn(text=self._after_end(talk))  # the customer answered the closing words
        lead = " ".join(x for x in (greeting, self._found(talk, words)) if x)
        pending = next((a for a, want in zip(self._actions, self._wants) if not talk.done(a, want)), None)
        if pending is None:
            missing = self._before_refusal(talk, words) if self.task.kind == "refusal" else []
            if missing:
                return AgentTurn(text=self._ask(lead, missing[:2], talk))
            return AgentTurn(text=self._final(talk, words, lead))
        missing = self._missing(pending, talk)
        if missing:
            return AgentTurn(text=self._ask(lead, missing, talk))
        arguments = self._arguments(pending, talk)
        if pending.mode == "write" and not talk.confirmed:
            change = self._pick(_ABOUT_TO, "about", talk).format(c=words.change(pending.name, arguments))
            return AgentTurn(text=f"{lead} {change} {self._pick(_CONFIRMS, 'confirm', talk)}".strip())
        call = AgentToolCall(id=f"call_{len(talk.calls) + 1}", name=pending.name,
                             arguments=json.dumps(arguments, ensure_ascii=False))
        if talk.last_role == "user":
            text = greeting or self._pick(_DOING if talk.confirmed else _CHECKING, "call", talk)
        else:
            text = ""
        return AgentTurn(text=text, tool_calls=[call])

    def _read(self, messages: list[dict[str, Any]]) -> _Conversation:
        # An episode hands every turn the conversation so far plus the new messages: read only those.
        talk = self._talk
        if talk is None or not talk.follows(messages):
            talk = self._talk = _Conversation()
        talk.extend(messages[len(talk.read):])
        return talk

    def _vocabulary(self, tools: list[dict[str, Any]]) -> Vocabulary:
        # An episode hands every turn the same tool list, and the episodes on one environment share it
        # (rollout.orchestrator): read its labels once, not on every turn of every episode.
        if self._words is None or self._words[0] is not tools:
            known = _VOCABULARIES.get(id(tools))
            if known is None or known[0] is not tools:
                if len(_VOCABULARIES) >= 64:
                    _VOCABULARIES.clear()
                known = _VOCABULARIES[id(tools)] = (tools, Vocabulary(tools))
            self._words = known
        return self._words[1]

    def _pick(self, options: list[str], slot: str, talk: _Conversation) -> str:
        digest = hashlib.sha256(f"{self.task.id}|{talk.turn}|{slot}".encode()).digest()
        return options[int.from_bytes(digest[:4], "big") % len(options)]

    # ------------------------------------------------------------------ what is known
    def _have(self, label: str, talk: _Conversation) -> bool:
        value = self._facts[label]
        if said_value(talk.said, value) or _norm(value) in talk.derived:
            return True
        m = self._mistake
        if m is not None and m.fact == label and said_value(talk.said, m.wrong):
            return not any((not ok or self._found_nothing(c)) and m.wrong in json.dumps(args)
                           for c in talk.calls for _, args, ok, _ in [c])
        return False

    def _found_nothing(self, call: tuple[str, dict[str, Any], bool, Any]) -> bool:
        """A search under the misread reference: it succeeds with no rows, which is as wrong as an error."""
        m = self._mistake
        return m is not None and call[2] and call[3] == [] and m.wrong in json.dumps(call[1])

    def _labels_of(self, action: GoldenAction) -> list[str]:
        values = {_norm(v) for v in leaf_values(action.arguments)}  # an order's items are asked for like any value
        return [k for k, v in self._facts.items() if _norm(v) in values]

    def _missing(self, action: GoldenAction, talk: _Conversation) -> list[str]:
        labels = self._labels_of(action)
        if not talk.calls:  # identify the customer first, by id and name, as the policy asks
            identity = [k for k in self._facts if k.lower() in _IDENTITY]
            labels = identity + [k for k in labels if k not in identity] if set(identity) & set(labels) else labels
        missing = [k for k in dict.fromkeys(labels) if not self._have(k, talk)]
        return missing[:2]

    def _arguments(self, action: GoldenAction, talk: _Conversation) -> dict[str, Any]:
        """The golden arguments, except a reference the customer has so far only given wrongly."""
        m = self._mistake
        if m is None or said_value(talk.said, self._facts.get(m.fact, "")) or not said_value(talk.said, m.wrong):
            return dict(action.arguments)
        right = _norm(self._facts[m.fact])
        return {k: (m.wrong if _norm(v) == right else v) for k, v in action.arguments.items()}

    def _rule_facts(self, words: Vocabulary) -> list[str]:
        """The facts holding the value a rule on the request's own value judges (the date or amount asked for)."""
        rule = self.task.rule
        if rule is None or rule.kind not in _ON_REQUEST or not rule.field:
            return []
        label = words.label(rule.field).lower()  # 'arrival day', not also 'current arrival day'
        found = [k for k in self._facts if k.lower().endswith(label)]
        return [k for k in found if k.lower() == label] or found

    def _before_refusal(self, talk: _Conversation, words: Vocabulary) -> list[str]:
        """What to ask before refusing once the reads are done: the value the rule judges (nothing when a read
        showed the rule broken: a flag, a status, a count)."""
        if self.task.rule is not None and self.task.rule.kind not in _ON_REQUEST:
            return []
        judged = self._rule_facts(words) or list(self._facts)
        return [k for k in judged if not self._have(k, talk)][:2]

    def _seen(self, talk: _Conversation, words: Vocabulary) -> str:
        """' I can see that for pet plan PPL-0012, open to new pets is no.': the read value that breaks the rule."""
        field = self.task.rule.field if self.task.rule is not None else None
        for _, _, ok, out in reversed(talk.calls):
            rows = out if isinstance(out, list) else [out]
            row = next((r for r in rows if ok and isinstance(r, dict) and r.get(field) is not None), None)
            if field and row is not None:
                ids = [k for k in row if k.endswith("_id") and k != "person_id"]
                head = words.thing(ids[0], row[ids[0]]) if ids else "your account"
                return f" I can see that for {head}, {words.said(field)} is {say_value(field, row[field])}."
        return ""

    def _finished(self, talk: _Conversation) -> bool:
        return any(c in talk.assistant_texts[-1] for c in _CLOSINGS)

    # ------------------------------------------------------------------ what is said
    def _greeting(self, talk: _Conversation) -> str:
        service = " and ".join(self.task.environment.split("_"))
        return self._pick(_GREETINGS, "greet", talk).format(s=service)

    def _ask(self, lead: str, labels: list[str], talk: _Conversation) -> str:
        if all(k.lower() in _IDENTITY for k in labels):
            asked = " and ".join(f"your {k.lower()}" for k in labels)
            why = self._pick(_WHY_ID, "why", talk)
        else:
            # "Which irrigation permit do you mean: what status is it in?" rather than asking for a "status"
            states = [k for k in labels if k.lower().endswith(" status")]
            which = " ".join(f"Which {label_phrase(k[:-len(' status')], 'agent').removeprefix('the ')} do you mean: "
                             f"what status is it in?" for k in states)
            rest = [k for k in labels if k not in states]
            if not rest:
                return f"{lead} {which}".strip()
            asked, why = " and ".join(label_phrase(k, "agent") for k in rest), ""
            lead = f"{lead} {which}".strip()
        return f"{lead} {self._pick(_ASKS, 'ask', talk).format(x=asked + why)}".strip()

    def _found(self, talk: _Conversation, words: Vocabulary) -> str:
        """Acknowledge the last lookup when words follow it (after a tool result)."""
        if talk.last_role != "tool" or not talk.calls or not talk.calls[-1][2]:
            return ""
        name, args, _, output = talk.calls[-1]
        if isinstance(output, dict) and output.get("first_name") and "last_name" in output:
            first = sum(1 for _, _, ok, out in talk.calls if ok and isinstance(out, dict) and "last_name" in out) == 1
            return self._pick(_FOUND, "found", talk).format(n=output["first_name"]) if first else ""
        return words.outcome(output, args)

    def _recover(self, talk: _Conversation, words: Vocabulary) -> str:
        name, args, _, error = talk.calls[-1]
        m = self._mistake
        if m is not None and m.wrong in json.dumps(args):
            said = "" if error == [] else f"; the system says: {str(error).rstrip('.')}"
            return (f"I'm sorry, I could not find anything under {m.wrong}{said}. "
                    f"Could you please check {label_phrase(m.fact, 'agent')} and tell me again?")
        return (f"I'm sorry, that did not work; the system says: {str(error).rstrip('.')}. "
                f"Could you please check the details and tell me again?")

    def _final(self, talk: _Conversation, words: Vocabulary, lead: str) -> str:
        """Results in plain sentences, every fact the customer must be told included, then the closing."""
        writes = {a.name for a in self._actions if a.mode == "write"}
        done = latest_per_record([words.outcome(out, args) for name, args, ok, out in talk.calls if ok and name in writes])
        if self.task.kind == "refusal":  # what was done first (a compliant part), then what cannot be
            parts = [lead * (lead not in done), *([self._pick(_DONE, "done", talk), *done] if done else []), self._refusal(words, talk)]
        elif writes:
            parts = [self._pick(_DONE, "done", talk), *done]
        else:
            parts = []
        told = " ".join(parts)
        outputs = [out for _, _, ok, out in talk.calls if ok]
        items = [words.fact_about(outputs, str(item)) or str(item)
                 for item in self.task.evaluation_criteria.communicate_info if not said_value(told, item)]
        if items:
            opener = "Here is what I found: " if self.task.kind == "read" else "For your records, "
            parts.append(opener + "; ".join(items) + ".")
        elif not parts:
            parts.append(lead)
        parts.append(self._pick(_CLOSINGS, "close", talk))
        return " ".join(p for p in parts if p)

    def _refusal(self, words: Vocabulary, talk: _Conversation) -> str:
        rule = self.task.rule
        if rule is None:
            return f"I'm sorry, but I cannot do that: our policy does not allow it (rule {self.task.violated_rule})."
        statement = rule.statement.rstrip(".")
        # the request in the customer's terms: the values they gave for the forbidden call's arguments
        what = words.deed(rule.tool, {k: v for k in words.params.get(rule.tool, []) for label, v in self._facts.items()
                                      if label.lower().endswith(words.label(k).lower()) and said_value(talk.said, v)})
        offer = _OFFER.get(rule.kind, "I'm happy to help with anything the rules allow")
        asked = "" if rule.kind in _ON_REQUEST else self._seen(talk, words)
        if rule.field and rule.kind in _ON_REQUEST:
            label, said = words.label(rule.field), label_phrase(words.said(rule.field))
            value = next((v for k, v in self._facts.items() if k.lower().endswith(label.lower())), None)
            if value is not None:
                asked = f" You asked for {said} to be {say_value(rule.field, value)}, which falls outside that."
        return (f"I'm sorry, but I can't {what}. Our policy says: {statement[:1].lower() + statement[1:]} "
                f"(rule {rule.id}).{asked} {offer}.")

    def _after_end(self, talk: _Conversation) -> str:
        if self.task.kind == "refusal" and self.task.rule is not None:
            return (f"I understand, and I'm sorry. The rule applies to every request, so I cannot make an "
                    f"exception: {self.task.rule.statement} {self._pick(_CLOSINGS, 'close', talk)}")
        return f"You're welcome. {self._pick(_CLOSINGS, 'close', talk)}"


# Rule kinds judging a value the request itself carries (a date, an amount): the agent asks for that value
# before refusing. Under any other kind a read shows the rule broken, and the refusal follows that read.
_ON_REQUEST = {"date_window", "value_range", "tier_limit", "computed_fee", "balance_covers", "not_above", "date_after"}

_OFFER = {
    "date_window": "If you'd like, I can do it for a date within that window instead",
    "value_range": "If you'd like, I can do it with a value within that range instead",
    "target_flag": "If you'd like, I can help you find one that qualifies instead",
    "max_active": "Once one of your current ones is closed, I can do this for you",
    "lead_time": "I can still help you with anything else about it that the rules allow",
    "requires_status": "Once it is in a status that allows this, I can do it for you",
}


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
