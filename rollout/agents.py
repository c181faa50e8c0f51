"""Assistant agents for rollouts: the golden-action oracle, a do-nothing baseline and a chat-model agent."""
from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from skiller.rollout.base import AgentToolCall, AgentTurn, ChatProvider
from skiller.rollout.conversation import IDENTITY as _IDENTITY, Conversation, norm as _norm, plan_for
from skiller.rollout.evidence import OFFER, SEEN_TOO, on_request, seen
from skiller.rollout.speech import Vocabulary, latest_per_record, record_ids, say_value
from skiller.contract.dialogue import is_clause, label_phrase, owned_by, said_value
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
_PART_DONE = ["The first part is done.", "I've taken care of the first part."]  # a refusal follows
_FOUND = ["Thank you, {n}, I have found your account.", "Thanks, {n}; I've found your account.",
          "I've located your account, {n}."]

# By tool list (kept alive here): its vocabulary, and the sentences said about call results with it
# (the same lookups return the same rows in every episode of a task).
_VOCABULARIES: dict[int, tuple[list[dict[str, Any]], Vocabulary, dict[tuple[str, str], str]]] = {}


_to_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(x, ensure_ascii=False), one encoder for all


@functools.lru_cache(maxsize=8192)
def _variant(task_id: str, turn: int, slot: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{task_id}|{turn}|{slot}".encode()).digest()[:4], "big")


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
        self._plan = plan = plan_for(task)
        self._actions, self._facts = plan.actions, plan.facts
        self._mistake = task.user_scenario.mistake
        self._words: tuple[list[dict[str, Any]], Vocabulary, dict[tuple[str, str], str]] | None = None
        self._talk: Conversation | None = None
        self._early: list[str] | None = None  # the facts to tell when found (see _answers)

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn:
        talk, words = self._read(messages), self._vocabulary(tools)
        greeting = "" if talk.assistant_texts or talk.called else self._greeting(talk)
        if talk.last_role == "tool" and talk.calls and (not talk.calls[-1][2] or self._found_nothing(talk.calls[-1])):
            return AgentTurn(text=self._recover(talk, words))
        if talk.last_role == "user" and talk.assistant_texts and self._finished(talk):
            return AgentTurn(text=self._after_end(talk))  # the customer answered the closing words
        lead = " ".join(x for x in (greeting, self._found(talk, words)) if x)
        at = next((i for i, key in enumerate(self._plan.keys) if key not in talk.succeeded), None)
        pending = None if at is None else self._actions[at]
        if pending is None:
            missing = self._before_refusal(talk, words) if self.task.kind == "refusal" else []
            if missing:
                return AgentTurn(text=self._ask(lead, missing[:2], talk, *self._anew(None, missing[:2], talk, words)))
            return AgentTurn(text=self._final(talk, words, lead))
        missing = self._missing(at, talk)
        if missing:
            return AgentTurn(text=self._ask(lead, missing, talk, *self._anew(at, missing, talk, words)))
        arguments = self._arguments(pending, talk)
        if pending.mode == "write" and not talk.confirmed:
            change = self._pick(_ABOUT_TO, "about", talk).format(c=words.change(pending.name, arguments))
            return AgentTurn(text=f"{lead} {change} {self._pick(_CONFIRMS, 'confirm', talk)}".strip())
        call = AgentToolCall(id=f"call_{len(talk.calls) + 1}", name=pending.name,
                             arguments=_to_json(arguments))
        if talk.last_role == "user":
            text = greeting or self._pick(_DOING if talk.confirmed else _CHECKING, "call", talk)
        else:  # straight on to the next call: what the customer asked and this result answers is told on the way
            name, _, _, output = talk.calls[-1]
            text = self._answers(talk, words, name, output)
        return AgentTurn(text=text, tool_calls=[call])

    def _read(self, messages: list[dict[str, Any]]) -> Conversation:
        # An episode hands every turn the conversation so far plus the new messages: read only those.
        talk = self._talk
        if talk is None or not talk.follows(messages):
            talk = self._talk = Conversation(_CONFIRM_SAID)
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
                known = _VOCABULARIES[id(tools)] = (tools, Vocabulary(tools), {})
            self._words = known
        return self._words[1]

    def _outcome(self, talk: Conversation, index: int) -> str:
        """`Vocabulary.outcome` of a call, said once per result text and arguments for all episodes."""
        assert self._words is not None
        said = self._words[2]
        key = talk.raw[index]
        if key not in said:
            if len(said) >= 2048:
                said.clear()
            _, args, _, output = talk.calls[index]
            said[key] = self._words[1].outcome(output, args)
        return said[key]

    def _pick(self, options: list[str], slot: str, talk: Conversation) -> str:
        return options[_variant(self.task.id, talk.turn, slot) % len(options)]

    # ------------------------------------------------------------------ what is known
    def _have(self, label: str, talk: Conversation) -> bool:
        known = talk.known.get(label)
        if known is None:
            known = talk.known[label] = self._had(label, talk)
        return known

    def _had(self, label: str, talk: Conversation) -> bool:
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

    def _missing(self, at: int, talk: Conversation) -> list[str]:
        labels = self._plan.labels[at] if talk.calls else self._plan.first_labels[at]
        missing = []
        for k in labels:
            if not self._have(k, talk):
                missing.append(k)
                if len(missing) == 2:
                    break
        return missing

    def _arguments(self, action: GoldenAction, talk: Conversation) -> dict[str, Any]:
        """The golden arguments, except a reference the customer has so far only given wrongly."""
        m = self._mistake
        if m is None or said_value(talk.said, self._facts.get(m.fact, "")) or not said_value(talk.said, m.wrong):
            return dict(action.arguments)
        right = _norm(self._facts[m.fact])
        return {k: (m.wrong if _norm(v) == right else v) for k, v in action.arguments.items()}

    def _rule_facts(self, words: Vocabulary) -> list[str]:
        """The facts holding the value a rule on the request's own value judges (the date or amount asked for)."""
        rule = self.task.rule
        if rule is None or not on_request(rule) or not rule.field:
            return []
        label = words.label(rule.field, rule.tool).lower()  # 'arrival day', not also 'current arrival day'
        found = [k for k in self._facts if k.lower().endswith(label)]
        return [k for k in found if k.lower() == label] or found

    def _before_refusal(self, talk: Conversation, words: Vocabulary) -> list[str]:
        """What to ask before refusing once the reads are done: the value the rule judges (nothing when a read
        showed the rule broken: a flag, a status, a count)."""
        if self.task.rule is not None and not on_request(self.task.rule):
            return []
        judged = self._rule_facts(words) or list(self._facts)
        return [k for k in judged if not self._have(k, talk)][:2]

    def _finished(self, talk: Conversation) -> bool:
        return any(c in talk.assistant_texts[-1] for c in _CLOSINGS)

    # ------------------------------------------------------------------ what is said
    def _greeting(self, talk: Conversation) -> str:
        service = " and ".join(self.task.environment.split("_"))
        return self._pick(_GREETINGS, "greet", talk).format(s=service)

    def _anew(self, at: int | None, labels: list[str], talk: Conversation, words: Vocabulary) -> tuple[set[str], str]:
        """What is asked anew right after a record was told: the labels of its fields the request changes ('the
        new arrival day'), or, when the request makes another record like it, what it is ('the new claim'). The
        request is the pending write (`at`), or with None the refused one. A person never asks for a value by
        the very label they just told the current one under."""
        if talk.last_role != "tool" or not talk.calls or not talk.calls[-1][2]:
            return set(), ""
        out = talk.calls[-1][3]
        row = out[0] if isinstance(out, list) and len(out) == 1 else out
        ids = record_ids(row) if isinstance(row, dict) else []
        if at is not None and self._actions[at].mode == "write":
            keys = self._plan.arguments[at]
            same = bool(ids) and _norm(self._actions[at].arguments.get(ids[0], "")) == _norm(row[ids[0]])
        elif at is None and self.task.rule is not None:
            params = words.params.get(self.task.rule.tool, [])
            keys = {k: key for k in labels for key in params if k.lower().endswith(words.label(key).lower())}
            same = bool(ids) and ids[0] in params
        else:
            return set(), ""
        told = {k for k in labels if keys.get(k) in row and not keys[k].endswith("_id")}
        if not told or not ids:
            return set(), ""
        if same:  # a change to that record
            return {k for k in told if not is_clause(k)}, ""
        noun = words.noun(ids[0])
        ordinal = re.compile(rf"\b(?:first|second|third|fourth|other|new) {re.escape(noun)}\b")
        return set(), "" if any(ordinal.search(k.lower()) for k in labels) else noun  # 'the day of the second rental'

    def _ask(self, lead: str, labels: list[str], talk: Conversation, new: set[str] = frozenset(),
             another: str = "") -> str:
        """Ask for `labels` ('the new X' for those in `new`; 'For the new <another>, ...' first)."""
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
            owned = None if another or new else owned_by(rest)  # 'For the first appointment, ... the day of the visit'
            asked = " and ".join(re.sub(r"^the (?!new )", "the new ", label_phrase(k, "agent")) if k in new
                                 else label_phrase(k, "agent") for k in (owned[0] if owned else rest))
            why, lead = "", f"{lead} {which}".strip()
            another = another and f"new {another}" or (owned[1].removeprefix("the ") if owned else "")
        question = self._pick(_ASKS, 'ask', talk).format(x=asked + why)
        if another:
            question = f"For the {another}, {question[:1].lower()}{question[1:]}"
        return f"{lead} {question}".strip()

    def _found(self, talk: Conversation, words: Vocabulary) -> str:
        """Acknowledge the last lookup when words follow it (after a tool result)."""
        if talk.last_role != "tool" or not talk.calls or not talk.calls[-1][2]:
            return ""
        name, args, _, output = talk.calls[-1]
        if isinstance(output, dict) and output.get("first_name") and "last_name" in output:
            first = sum(1 for _, _, ok, out in talk.calls if ok and isinstance(out, dict) and "last_name" in out) == 1
            return self._pick(_FOUND, "found", talk).format(n=output["first_name"]) if first else ""
        return self._answers(talk, words, name, output) or self._outcome(talk, len(talk.calls) - 1)

    def _answers(self, talk: Conversation, words: Vocabulary, name: str, output: Any) -> str:
        """What the customer asked to know, told as soon as a lookup returns it when a request follows (a question
        asked before a change is answered before the change goes on; a read task answers at the end, a refusal
        just before it refuses). A value a write also returns (an amount paid, a fee) waits for the write."""
        if self.task.kind != "write" or name in self._plan.writes:
            return ""
        if self._early is None:
            written = [a.expected for a in self._actions if a.mode == "write"]
            self._early = [str(item) for item in self.task.evaluation_criteria.communicate_info
                           if words.fact_about(written, str(item)) is None]
        earlier = " ".join(talk.assistant_texts)
        told = "; ".join(f for f in (words.fact_about([output], item) for item in self._early
                                      if not said_value(earlier, item)) if f)
        return f"{told[:1].upper()}{told[1:]}." if told else ""

    def _recover(self, talk: Conversation, words: Vocabulary) -> str:
        name, args, _, error = talk.calls[-1]
        m = self._mistake
        if m is not None and m.wrong in json.dumps(args):
            said = "" if error == [] else f"; the system says: {str(error).rstrip('.')}"
            return (f"I'm sorry, I could not find anything under {m.wrong}{said}. "
                    f"Could you please check {label_phrase(m.fact, 'agent')} and tell me again?")
        return (f"I'm sorry, that did not work; the system says: {str(error).rstrip('.')}. "
                f"Could you please check the details and tell me again?")

    def _final(self, talk: Conversation, words: Vocabulary, lead: str) -> str:
        """Results in plain sentences, every fact the customer must be told included, then the closing."""
        writes = self._plan.writes
        done = latest_per_record([self._outcome(talk, i) for i, (name, _, ok, _) in enumerate(talk.calls)
                                  if ok and name in writes])
        done = [o for o in done if not any(o in said for said in talk.assistant_texts)]  # told already: not again
        if self.task.kind == "refusal":  # what was done first (a compliant part), then what cannot be
            last = len(talk.calls) - 1
            if talk.last_role == "tool" and last >= 0 and talk.calls[last][0] not in writes:
                read = self._outcome(talk, last)  # a lookup's result is no preamble to a refusal: the rule's value is
                lead = lead.removesuffix(read).strip()  # told in it, the facts asked for after it
            parts = [lead * (lead not in done), *([self._pick(_PART_DONE, "done", talk), *done] if done else []),
                     self._refusal(words, talk)]
        elif writes:
            parts = [self._pick(_DONE, "done", talk), *done]
        else:
            parts = []
        told = " ".join(parts)
        outputs = [out for _, _, ok, out in talk.calls if ok]
        earlier = " ".join(talk.assistant_texts)
        items = [words.fact_about(outputs, str(item)) or str(item) for item in self.task.evaluation_criteria.communicate_info
                 if not said_value(told, item) and not said_value(earlier, item)]
        if items and self.task.kind == "refusal":  # what was asked is answered before what cannot be done
            facts = "; ".join(items)
            parts.insert(len(parts) - 1, f"{facts[:1].upper()}{facts[1:]}.")
        elif items:
            opener = "Here is what I found: " if self.task.kind == "read" else "As you asked, "
            parts.append(opener + "; ".join(items) + ".")
        elif not parts:
            parts.append(lead)
        parts.append(self._pick(_CLOSINGS, "close", talk))
        return " ".join(p for p in parts if p)

    def _refusal(self, words: Vocabulary, talk: Conversation) -> str:
        rule = self.task.rule
        if rule is None:
            return f"I'm sorry, but I cannot do that: our policy does not allow it (rule {self.task.violated_rule})."
        statement = rule.statement.rstrip(".")
        # the request in the customer's terms: the values they gave for the forbidden call's arguments
        given = {k: v for k in words.params.get(rule.tool, []) for label, v in self._facts.items()
                 if label.lower().endswith(words.label(k).lower()) and said_value(talk.said, v)}
        # 'that doctor' only for a record the customer named; refused before they name it, it is 'a doctor'
        what = words.deed(rule.tool, given, discussed={re.sub(r"_(id|ref)$", "", k).replace("_", " ")
                                                       for k in given if k != "person_id"})
        offer = OFFER.get(rule.kind, "I'm happy to help with anything the rules allow")
        asked = "" if on_request(rule) else seen(rule, talk, words)
        if rule.field and on_request(rule):
            label, said = words.label(rule.field, rule.tool), label_phrase(words.said(rule.field, rule.tool))
            value = next((v for k, v in self._facts.items() if k.lower().endswith(label.lower())), None)
            if value is not None:
                asked = f" You asked for {said} to be {say_value(rule.field, value)}, which falls outside that."
            if rule.kind in SEEN_TOO:  # and what sets the customer's own limit (a tier, a balance, a lease's start)
                asked += seen(rule, talk, words)
        return (f"I'm sorry, but I can't {what}. Our policy says: {statement[:1].lower() + statement[1:]} "
                f"(rule {rule.id}).{asked} {offer}.")

    def _after_end(self, talk: Conversation) -> str:
        if self.task.kind == "refusal" and self.task.rule is not None:
            return (f"I understand, and I'm sorry. The rule applies to every request, so I cannot make an "
                    f"exception: {self.task.rule.statement} {self._pick(_CLOSINGS, 'close', talk)}")
        return f"You're welcome. {self._pick(_CLOSINGS, 'close', talk)}"


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
