"""Normalization and matching rules the evaluator's checks share: arguments, outputs, assistant text."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from skiller.contract.dialogue import spoken_forms
from skiller.servers.episode import Transcript
from skiller.servers.task import GoldenAction

G = TypeVar("G")
C = TypeVar("C")

_ABSENT = ("absent",)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# A decimal number standing alone (not part of a version string or an IP address).
_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?!\.?\d)")
_SPACE = re.compile(r"\s+")


def normalize_arg(value: Any) -> Any:
    """Comparable form of an argument value: strings case-insensitive and stripped, numbers as floats
    rounded to 2 decimals, booleans exact (never equal to 0/1), containers element by element."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", round(float(value), 2))
    if isinstance(value, str):
        return ("str", value.strip().casefold())
    if value is None:
        return ("null",)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(normalize_arg(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((str(k), normalize_arg(v)) for k, v in value.items()), key=lambda kv: kv[0])))
    return ("other", repr(value))


def compared_keys(action: GoldenAction) -> list[str]:
    return list(action.arguments) if action.compare_args is None else list(action.compare_args)


def args_match(action: GoldenAction, arguments: dict[str, Any]) -> bool:
    """True when every compared argument of `action` equals the call's, after normalization.
    Arguments the golden action does not compare (e.g. an extra `limit`) are ignored."""
    for key in compared_keys(action):
        want = normalize_arg(action.arguments[key]) if key in action.arguments else _ABSENT
        got = normalize_arg(arguments[key]) if key in arguments else _ABSENT
        if want != got:
            return False
    return True


def outputs_equal(a: Any, b: Any) -> bool:
    """Strict JSON equality: exact strings, int == float by value, booleans never equal to numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(outputs_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(outputs_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def max_matching(golden: Sequence[G], calls: Sequence[C], fits: Callable[[G, C], bool]) -> dict[int, int]:
    """Largest one-to-one assignment golden index -> call index (augmenting paths): a greedy pass could
    give a call to the wrong golden action and leave another unmatched although a full matching exists."""
    edges = [[j for j, call in enumerate(calls) if fits(g, call)] for g in golden]
    owner: dict[int, int] = {}  # call index -> golden index

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(golden)):
        augment(i, set())
    return {i: j for j, i in owner.items()}


def message_text(message: dict[str, Any]) -> str:
    """The text of one chat message (a string, or the text parts of a content list)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def assistant_text(transcript: Transcript) -> str:
    return "\n".join(message_text(m) for m in transcript.messages if m.get("role") == "assistant")


def _strip_zeros(match: re.Match[str]) -> str:
    fraction = match.group(2).rstrip("0")
    return match.group(1) + ("." + fraction if fraction else "")


def normalize_text(text: str) -> str:
    """Case-folded, whitespace collapsed, thousands commas dropped, trailing decimal zeros dropped:
    "$1,250.00" -> "$1250", "1.50" -> "1.5"; dates, ids and version strings are left alone."""
    text = _THOUSANDS.sub("", text)
    text = _DECIMAL.sub(_strip_zeros, text)
    return _SPACE.sub(" ", text).strip().casefold()


def mentions(haystack: str, needle: str) -> bool:
    """Case-insensitive substring test after `normalize_text`; a needle that starts or ends with a digit
    must not continue a longer number in the text ("1.5" is not found in "11.50" nor "1250" in "12500").
    A value may be told as people write it (`servers.dialogue.spoken_forms`): an ISO date as
    "March 6, 2026" or "6 March 2026", a code like "credit_card" as "credit card"."""
    return any(_mentions(haystack, form) for form in spoken_forms(needle.strip()) or [needle])


def _mentions(haystack: str, needle: str) -> bool:
    hay, want = normalize_text(haystack), normalize_text(needle)
    if not want:
        return False
    pattern = re.escape(want)
    if want[0].isdigit():
        pattern = r"(?<!\d)(?<!\d\.)" + pattern
    if want[-1].isdigit():
        pattern += r"(?!\d)(?!\.\d)"
    return re.search(pattern, hay) is not None
