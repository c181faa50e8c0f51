"""What the demonstrator reads off a conversation, read once, and what it plans once per task.

`Conversation` reads each message once: a turn costs its new messages, not the whole conversation
again. `Plan` holds what depends on the task alone (the assistant's golden actions, their normalized
arguments, the facts each one needs): built once per task and shared by every episode of it.
"""
from __future__ import annotations

import json
import operator
import re
from typing import Any

from skiller.contract.dialogue import is_yes, leaf_values, value_text
from skiller.rollout.base import message_text
from skiller.servers.task import GoldenAction, Task

__all__ = ["Conversation", "Plan", "call_key", "norm", "plan_for"]

IDENTITY = ("person id", "full name")


def norm(value: Any) -> str:
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


class Conversation:
    """What the oracle reads off the conversation so far. Read once: `extend` adds the messages that
    followed. `known` remembers answers that hold until the next user or tool message."""

    def __init__(self, confirm: re.Pattern[str]) -> None:
        self._confirm = confirm  # the oracle's confirmation questions
        self.read: list[dict[str, Any]] = []  # the messages read, in order
        self.user: list[str] = []
        self.calls: list[tuple[str, dict[str, Any], bool, Any]] = []  # name, arguments, ok, output
        self.raw: list[tuple[str, str]] = []  # each call's raw arguments and result text, as keys
        self.last_role: str | None = None
        self.assistant_texts: list[str] = []
        self.called = False  # the assistant made a tool call
        self.confirmed = False  # the last assistant words asked to confirm, and the user said yes since
        self.said = ""
        self.turn = 0
        self.known: dict[str, bool] = {}
        self._pending: dict[str, tuple[str, dict[str, Any], str]] = {}
        self.succeeded: set[tuple[str, tuple[tuple[str, str], ...]]] = set()  # see `call_key`
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
                    raw = c["function"].get("arguments") or "{}"
                    try:
                        args = json.loads(raw)
                    except ValueError:
                        args = {}
                    self._pending[c["id"]] = (c["function"]["name"], args, raw)
                if text and not m.get("tool_calls"):
                    self._asked, self.confirmed = bool(self._confirm.search(text)), False
            elif role == "tool" and m.get("tool_call_id") in self._pending:
                name, args, raw = self._pending.pop(m["tool_call_id"])
                ok, value = _tool_output(text)
                self.calls.append((name, args, ok, value))
                self.raw.append((raw, text))
                if ok and isinstance(value, dict) and value.get("first_name") and value.get("last_name"):
                    self.derived |= {norm(f"{value['first_name']} {value['last_name']}"), norm(value.get("person_id"))}
                if ok:
                    self.succeeded.add(call_key(name, {k: norm(v) for k, v in args.items()}))
                self._asked, self.confirmed, self.known = False, False, {}
            elif role == "user":
                self.user.append(text)
                self.said = "\n".join(self.user)
                self.confirmed = self._asked and is_yes(text)
                self.known = {}

    def done(self, action: GoldenAction, want: dict[str, str]) -> bool:
        """Whether a call with the action's name and these normalized arguments succeeded."""
        return call_key(action.name, want) in self.succeeded


def call_key(name: str, normed: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A call by its name and normalized arguments, in any order: equal keys, equal calls."""
    return name, tuple(sorted(normed.items()))


class Plan:
    """What the oracle needs of a task before any conversation: the same for every episode of it."""

    def __init__(self, task: Task) -> None:
        self.task = task
        # Actions the user performs (requestor "user") are not the assistant's to replay.
        self.actions = [a for a in task.golden_actions if a.requestor == "assistant"]
        self.wants = [{k: norm(v) for k, v in a.arguments.items()} for a in self.actions]
        self.keys = [call_key(a.name, want) for a, want in zip(self.actions, self.wants)]
        self.facts = {k: v for k, v in task.user_scenario.facts.items() if v}
        self.writes = {a.name for a in self.actions if a.mode == "write"}
        identity = [k for k in self.facts if k.lower() in IDENTITY]
        # The facts each action needs, in asking order: first the customer's id and name when the action
        # needs one of them and nothing was called yet (identify first, as the policy asks), else as found.
        self.first_labels: list[list[str]] = []
        self.labels: list[list[str]] = []
        self.arguments: list[dict[str, str]] = []  # per action: fact label -> the argument it fills (top level)
        for action, want in zip(self.actions, self.wants):
            # an order's items are asked like any value, each after the scalar arguments and item by item
            # (an item, then its quantity), not in the facts' alphabetical order
            scalars = [v for v in action.arguments.values() if not isinstance(v, (list, dict))]
            nested = [leaf for v in action.arguments.values() if isinstance(v, (list, dict)) for leaf in leaf_values(v)]
            place = {}
            for i, v in enumerate(scalars + nested):
                place.setdefault(norm(v), i)
            labels = sorted((k for k, v in self.facts.items() if norm(v) in place), key=lambda k: place[norm(self.facts[k])])
            self.arguments.append({k: key for k in labels for key, v in want.items() if v == norm(self.facts[k])})
            first = identity + [k for k in labels if k not in identity] if set(identity) & set(labels) else labels
            self.first_labels.append(list(dict.fromkeys(first)))
            self.labels.append(list(dict.fromkeys(labels)))


_PLANS: dict[int, Plan] = {}  # by task (each plan keeps its task alive, so an id is not reused meanwhile)


def plan_for(task: Task) -> Plan:
    """The task's plan, built on its first episode and reused by the others."""
    plan = _PLANS.get(id(task))
    if plan is None or plan.task is not task:
        if len(_PLANS) >= 1024:
            _PLANS.clear()
        plan = _PLANS[id(task)] = Plan(task)
    return plan
