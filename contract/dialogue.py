"""The words a conversation and its report agree on: how people say values, and what a yes or a no looks like.

The simulated user speaks values this way, the demonstrator writes them this way, the evaluator's
COMMUNICATE check and the data-quality report recognise them this way: one definition for all four.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

__all__ = ["ISO_DATE", "as_said", "human_date", "is_clause", "is_no", "is_yes", "label_phrase", "leaf_values", "owned_by", "said_value", "spoken_forms", "value_text"]

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?!\.?\d)")
_YES = re.compile(r"^\W*(yes|yeah|yep|yup|sure|ok(ay)?|please (do|go ahead)|go ahead|confirmed?|correct|"
                  r"that'?s (right|correct|fine)|absolutely|certainly|of course|definitely|do it|please proceed|"
                  r"proceed)\b", re.I)
_NO = re.compile(r"^\W*(no|nope|don'?t|do not|wait|stop|cancel|hold on|not yet)\b", re.I)


def value_text(value: Any) -> str:
    """The canonical text of an argument or fact value: integral floats without '.0', booleans as words."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_SERVICE_LABEL = re.compile(r"^([A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*) ([a-z].*)$")


_CLAUSE = ("how ", "what ", "which ", "who ", "whom ", "where ", "when ", "why ", "whether ")


def is_clause(label: str) -> bool:
    """A label that is a question clause ('why the team visits'): it takes no article."""
    m = _SERVICE_LABEL.match(label)
    return (m.group(2) if m else label).lower().startswith(_CLAUSE)


_OWNED_LABEL = re.compile(r"^(.+?)(?:,? for| of) (the (?:first|second|third|fourth|fifth|sixth) [a-z][a-z ]*)$", re.I)


def owned_by(labels: list[str]) -> tuple[list[str], str] | None:
    """Labels that all belong to one of several like records ('day of the visit of the first appointment', 'reason
    for the visit of the first appointment') as ('day of the visit', 'reason for the visit') and their owner ('the
    first appointment'), so they are said 'For the first appointment, the day of the visit ...'; else None."""
    if any(_SERVICE_LABEL.match(label) for label in labels):  # 'WillowPharmacy quantity of the second medication'
        return None  # a fused label: its service and its record in one phrase, said whole as the customer knows it
    found = [owner_of(label) for label in labels]
    if not labels or not all(found) or len({m.group(2).lower() for m in found if m}) != 1:
        return None
    if any(_BARE_HEAD.match(m.group(1)) for m in found if m):  # 'first day of the first rental': the first day of what
        return None
    return [m.group(1) for m in found if m], found[0].group(2)  # type: ignore[union-attr]


# A label's head that says nothing without its record ('first day' of 'first day of the first storage rental', made
# from 'first day of the rental'): such labels are said whole.
_BARE_HEAD = re.compile(r"^(?:(?:first|last|start|end|new) )?(?:day|date|time)$", re.I)


def owner_of(label: str) -> re.Match[str] | None:
    """'day of the visit of the first appointment' -> groups ('day of the visit', 'the first appointment')."""
    return _OWNED_LABEL.match(label)


def label_phrase(label: str, speaker: str | None = None) -> str:
    """A fact label as said in a sentence: 'the day of the slot' ('why the team visits' stays a clause); a
    fused scenario's member prefix moves behind ('ChargingNetwork day of the slot' -> 'the day of the slot for
    ChargingNetwork'). With a speaker, the customer is spoken of as `as_said` does."""
    m = _SERVICE_LABEL.match(label)
    core, service = (m.group(2), m.group(1)) if m else (label, "")
    core = core if core.lower().startswith(("the ", "your ", "my ") + _CLAUSE) else f"the {core}"
    phrase = f"{core} for {service}" if service else core
    return as_said(phrase, speaker) if speaker else phrase


# Labels and tool descriptions speak of the customer in the third person ("the day the customer collects the
# fill", "the member's vehicle"); said in a conversation, the agent says "you", the customer says "I".
_ROLE = r"(?:customer|member|owner|tenant|student|applicant|patron|diner|policyholder|homeowner|client)"
_OWNED = re.compile(rf"\b(?:[Tt]he |[Mm]y |[Yy]our )?({_ROLE})'s\b", re.I)  # 'your tenant's employer': 'my employer'
_ROLE_NOUN = re.compile(rf"\b([Tt])he {_ROLE}\b( \w+)?")
_BE = {"is": ("are", "am"), "was": ("were", "was"), "has": ("have", "have"), "does": ("do", "do")}
_AFTER_OBJECT = {"in", "on", "at", "for", "to", "from", "with", "and", "or", "about", "by", "of", "into", "when"}
_MODAL = {"may", "can", "will", "must", "should", "would", "could", "might", "cannot"}


def _present(verb: str, speaker: str) -> str | None:
    """The verb after a converted subject ('collects' -> 'collect', 'is' -> 'are'/'am'); None: not a verb."""
    if verb in _BE:
        return _BE[verb][speaker != "agent"]
    if verb in _MODAL or verb.endswith("ed"):
        return verb
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return verb[:-2]
    if verb.endswith("s") and not verb.endswith(("ss", "us")):
        return verb[:-1]
    return None


def as_said(text: str, speaker: str) -> str:
    """`text` in the words of `speaker` ('agent' or 'user') about the customer: 'the day the customer collects
    the fill' -> 'the day you collect the fill' / 'the day I collect the fill'; "the member's vehicle" -> 'your
    vehicle' / 'my vehicle'; 'pay it to the member' -> 'pay it to you' / 'pay it to me'."""
    if not re.search(rf"\b{_ROLE}\b", text, re.I):
        return text
    agent = speaker == "agent"
    your = "your" if agent else "my"
    before = text
    text = _OWNED.sub(lambda m: your.capitalize() if m.group(0)[:1].isupper() else your, text)
    text = _ROLE_NOUN.sub(lambda m: _spoken_role(m, speaker), text)
    if text != before:
        text = re.sub(r"\btheir\b", your, re.sub(r"\bthemselves\b", "yourself" if agent else "myself", text))
    return text


def _spoken_role(m: re.Match[str], speaker: str) -> str:
    """'the customer collects' -> 'you collect' / 'I collect'; 'to the member' -> 'to you' / 'to me'."""
    agent = speaker == "agent"
    verb = (m.group(2) or "").strip()
    said = _present(verb, speaker) if verb else None
    if said is None and verb and verb not in _AFTER_OBJECT:
        return m.group(0)  # a compound noun: 'the client number', 'the customer segment'
    if said is None:  # the customer as an object: 'to the member', 'contacts the customer'
        who = "you" if agent else "me"
        return (who.capitalize() if m.group(1) == "T" else who) + (m.group(2) or "")
    who = "you" if agent else "I"
    return f"{who.capitalize() if m.group(1) == 'T' else who} {said}"


def human_date(iso: str, weekday: bool = False) -> str:
    """'2026-03-06' -> 'March 6, 2026' (or 'Friday, March 6, 2026'); other text unchanged."""
    if not ISO_DATE.match(iso):
        return iso
    try:
        day = dt.date.fromisoformat(iso)
    except ValueError:
        return iso
    text = f"{day:%B} {day.day}, {day.year}"
    return f"{day:%A}, {text}" if weekday else text


_ORDINAL = {11: "th", 12: "th", 13: "th", 1: "st", 2: "nd", 3: "rd"}  # 11th-13th before 1st-3rd


def spoken_forms(value: Any) -> list[str]:
    """Every text a person may use for `value`, the canonical one first. Dates: ISO, 'March 6, 2026', '6 March 2026'
    and their spoken variants ('March 6 2026', 'March 6th, 2026', '6th March 2026', '6th of March 2026'), always with
    the year; codes with underscores also with spaces ('credit_card')."""
    text = value_text(value).strip()
    forms = [text]
    if ISO_DATE.match(text) and human_date(text) != text:
        day = dt.date.fromisoformat(text)
        nth = f"{day.day}{_ORDINAL.get(day.day % 100, _ORDINAL.get(day.day % 10, 'th'))}"
        forms += [human_date(text), f"{day.day} {day:%B} {day.year}", f"{day:%B} {day.day} {day.year}",
                  f"{day:%B} {nth}, {day.year}", f"{nth} {day:%B} {day.year}", f"{nth} of {day:%B} {day.year}"]
    elif "_" in text:
        forms.append(text.replace("_", " "))
    return forms


def _pattern(form: str) -> str:
    """A form as a regex that does not match inside a longer token ('28' is not in '2026-02-28' or 'A-028')."""
    pattern = re.escape(form.casefold())
    if form[:1].isalnum():
        pattern = r"(?<![\w.-])" + pattern
    if form[-1:].isalnum():
        pattern += r"(?![\w]|[.-]\w)"
    return pattern


def _plain(text: str) -> str:
    """Thousands commas and trailing decimal zeros dropped: '1,250.00' -> '1250', '1.50' -> '1.5'."""
    def strip(m: re.Match[str]) -> str:
        fraction = m.group(2).rstrip("0")
        return m.group(1) + ("." + fraction if fraction else "")
    return _DECIMAL.sub(strip, _THOUSANDS.sub("", text))


def said_value(text: str, value: Any) -> bool:
    """Whether `text` mentions `value` in any spoken form (case-insensitive; '1,250.00' says '1250')."""
    said = value_text(value)
    if "\n" in text and "\n" not in said:  # no form spans a line break: each line is read once, for all turns
        return any(_said(line, said) for line in text.split("\n"))
    return _said(text, said)


# A conversation asks the same questions of the same texts turn after turn: remember answers and parts.
@functools.lru_cache(maxsize=16384)
def _said(text: str, value: str) -> bool:
    hay = _hay(text)
    return any(p.search(hay) for p in _patterns(value))


@functools.lru_cache(maxsize=4096)
def _hay(text: str) -> str:
    return _plain(text).casefold()


@functools.lru_cache(maxsize=4096)
def _patterns(text: str) -> tuple[re.Pattern[str], ...]:
    forms = [f for f in (_plain(f) for f in spoken_forms(text) if f) if f]
    return (re.compile("|".join(f"(?:{_pattern(f)})" for f in forms)),) if forms else ()  # one search for all forms


def is_yes(text: str) -> bool:
    """An explicit agreement: the message starts with yes (or an equivalent) and does not start with no."""
    return bool(_YES.match(text)) and not _NO.match(text)


def is_no(text: str) -> bool:
    return bool(_NO.match(text))


def leaf_values(value: Any) -> list[Any]:
    """The scalar values inside arguments, through lists and objects (a multi-item order's ids and quantities)."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaf_values(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaf_values(v)]
    return [value]
