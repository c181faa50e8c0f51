"""How a refusal is judged: does it state the violated rule, and does it show why the rule holds (what a read
returned)? Pure functions over a task and its transcript; the quality report counts them."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from skiller.contract.dialogue import said_value, value_text
from skiller.servers.episode import Transcript
from skiller.servers.task import Task

__all__ = ["REQUEST_ONLY_KINDS", "RULE_WORDS", "WORD", "message_text", "shows_why", "states_rule"]

WORD = re.compile(r"[\w'$-]+")  # a word of a message (the report's n-grams too)
_STOP = {"the", "a", "an", "of", "to", "and", "or", "is", "are", "be", "can", "may", "only", "from", "for", "in",
         "on", "at", "by", "with", "who", "that", "this", "their", "its", "it", "as", "not", "no", "up", "days",
         "must", "per", "than", "more", "most", "least", "each", "any", "all"}
RULE_WORDS = 0.6
# Rule kinds judging only a value the request carries: the request is the evidence, no read shows it.
REQUEST_ONLY_KINDS = frozenset({"date_window", "value_range", "computed_fee"})
_NOT_THEIRS = re.compile(r"\bnot (?:yours|on your account|your own)\b|\banother (?:customer|patient|person|member|"
                         r"client|guest)\b|\bsomeone else\b|\bbelongs to\b")


def message_text(message: Mapping[str, Any]) -> str:
    """A chat message's text, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def _content_words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.casefold().replace(",", "")) if w not in _STOP and len(w) > 1]


def states_rule(task: Task, transcript: Transcript) -> bool:
    if task.rule is None:
        return False
    words = set(_content_words(task.rule.statement))
    said = set(_content_words(" ".join(message_text(m) for m in transcript.messages if m.get("role") == "assistant")))
    return bool(words) and len(words & said) / len(words) >= RULE_WORDS


def _fields(value: Any) -> Iterable[tuple[str, Any]]:
    """Every (key, scalar) of a tool's output, nested rows included."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, (Mapping, list)):
                yield from _fields(v)
            else:
                yield str(k), v
    elif isinstance(value, list):
        for v in value:
            yield from _fields(v)


def shows_why(task: Task, transcript: Transcript) -> bool | None:
    """Whether a refusal cites what a read showed (see the module docstring); None when it is no refusal or its
    rule judges only the request's own value."""
    rule = task.rule
    if task.kind != "refusal" or rule is None or rule.kind in REQUEST_ONLY_KINDS:
        return None
    said = " ".join(message_text(m) for m in transcript.messages if m.get("role") == "user")
    after: list[str] = []
    for m in transcript.messages:
        if m.get("role") == "assistant":
            after = [] if m.get("tool_calls") else after + [message_text(m)]
    text = " ".join(after).casefold().replace(rule.statement.casefold().rstrip("."), " ")
    if rule.kind == "ownership":
        return bool(_NOT_THEIRS.search(text))
    for key, value in (kv for c in transcript.tool_calls if c.ok for kv in _fields(c.output)):
        words = [w for w in key.casefold().split("_") if w not in _STOP and w != "is"]
        named = bool(words) and all(re.search(rf"\b{re.escape(w)}", text) for w in words)
        if isinstance(value, bool):
            if named:
                return True
        # a one-character value ('0 visits left') counts only next to its field's name: alone it is too common
        elif value is not None and (len(shown := value_text(value)) > 1 or named) and not said_value(said, shown) \
                and said_value(text, shown):
            return True
    return False
