"""Pieces every builtin task template is made of: seeded RNG, SQL conditions of policy checks, wording helpers
and the template under construction (`_T`)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from skiller.contract.placeholders import sql_literal
from skiller.contract.policy import REFUND_COLUMN
from skiller.contract.wording import LABEL_PARTS
from skiller.world.builtin.codegen import Check, words
from skiller.world.catalog.model import CatalogAttribute, CatalogEntity, CatalogRecord

Item = CatalogEntity | CatalogRecord


def _day(n: float) -> str:
    return f"<clock{int(n):+d}>"


def _cond(c: Check, holds: bool, alias: str) -> str:
    """The SQL condition under which check `c` holds (or fails) for the row aliased `alias`."""
    x = f"{alias}.{c.field}"
    if c.kind == "count_lt":
        marks = ", ".join(sql_literal(v) for v in c.values)
        other = f" AND o.{c.key} <> {alias}.{c.key}" if c.subject == "row" else ""
        n = f"(SELECT COUNT(*) FROM {c.table} o WHERE o.person_id = {alias}.person_id AND o.{c.field} IN ({marks}){other})"
        return f"{n} {'<' if holds else '>='} {c.limit}"
    if c.kind == "status_in":
        return f"{x} {'IN' if holds else 'NOT IN'} ({', '.join(sql_literal(v) for v in c.values)})"
    if c.kind == "eq":
        return f"{x} {'=' if holds else '<>'} {sql_literal(c.values[0])}"
    if c.kind == "ne":
        return f"({x} IS NULL OR {x} <> {sql_literal(c.values[0])})" if holds else f"{x} = {sql_literal(c.values[0])}"
    bound = _day if c.kind == "date_range" else (lambda v: repr(int(v)) if float(v).is_integer() else repr(v))
    if c.kind == "covers":  # a balance: it covers the largest request (holds), not even the smallest (fails)
        return f"({x} IS NOT NULL AND {x} >= {bound(c.hi or 1)})" if holds else f"({x} IS NULL OR {x} < {bound(c.lo or 1)})"
    inside = " AND ".join(([f"{x} >= {bound(c.lo)}"] if c.lo is not None else [])
                          + ([f"{x} <= {bound(c.hi)}"] if c.hi is not None else []))
    return f"({x} IS NOT NULL AND {'' if holds else 'NOT '}({inside or '1 = 1'}))"


def _static(c: Check, state: dict[str, Any]) -> bool | None:
    """Whether a row check holds for known column values (None: not decidable from `state`)."""
    if c.subject != "row" or c.field not in state:
        return None
    x = state[c.field]
    if c.kind == "status_in":
        return x in c.values
    if c.kind == "eq":
        return x == c.values[0]
    if c.kind == "ne":
        return x != c.values[0]
    return None


def _label_attr(item: Item) -> CatalogAttribute | None:
    """The attribute a person would name a row by (a name, else a descriptive choice or code)."""
    strs = [a for a in item.attributes if a.type == "str" and "ref" not in a.gen and a.name != "status"]
    named = [a for a in strs if a.gen.get("pick") in ("person_name", "company")]
    return (named or strs or [None])[0]


def _info_attrs(item: Item, skip: set[str] = frozenset()) -> list[CatalogAttribute]:  # type: ignore[assignment]
    # a refund column is empty until a cancel writes it: nothing to ask about
    return [a for a in item.attributes if a.type != "bool" and "ref" not in a.gen and a.name not in skip | {REFUND_COLUMN}]


def _flag_phrase(attr: CatalogAttribute) -> str:
    text = attr.description
    return text[8:] if text.lower().startswith("whether ") else f"{words(attr.name)} is true"


_WH = ("how ", "what ", "which ", "who ", "whom ", "where ", "when ", "why ", "whether ")


def _the(label: str) -> str:
    """'the day of the visit', but 'how the course is graded' (a clause takes no article)."""
    return label if label.lower().startswith(_WH) else f"the {label}"


def _about(label: str, subject: str) -> str:
    """' the fee of doctor X' or ', for payee X, what the payee is paid for' (follows 'You want to know'). A label
    naming the subject again says it once: "the doctor's name" of "the doctor linked to ..." is ' the name of the
    doctor linked to ...'; "kind of suite" of "the boarding suite of ..." is ' the kind of boarding suite
    of ...'."""
    if label.lower().startswith(_WH) or re.search(r" (?:for|to|in|at|with|on|from)$", label):
        return f", for {subject}, {_the(label)}"  # 'the animals the suite is for' takes no 'of' after it
    named = re.split(r" linked | of ", subject)[0]  # 'the doctor' of 'the doctor linked to your appointment'
    bare = re.sub(r" <[^>]*>| \(.*", "", named)  # without its placeholder or bracketed label
    head = re.match(rf"^(\w+) ({LABEL_PARTS})$", label)  # 'plan name' of 'the pet plan ...': 'the name of the pet plan'
    if head and re.search(rf"\b{re.escape(head.group(1))}\b", bare):  # 'card name' of 'the card product ...' too
        return f" the {head.group(2)} of {subject}"
    owner = re.match(r"^(.+)'s (.+)$", label)
    if owner and subject.startswith(("the ", "your ")) and re.search(rf"\b{re.escape(owner.group(1))}", named):  # 'vet': 'veterinarian' 
        return f" the {owner.group(2)} of {subject}"
    # 'kind of suite' of 'the boarding suite ...'; 'day of the visit' of 'your service visit ...'; 'city of the
    # service center' of 'the service center linked to ...'
    noun = re.match(r"^(.+?) of (?:the |an? )?([\w ]+)$", label)
    if noun and re.search(rf"\b{re.escape(noun.group(2))}$", bare):
        kind = noun.group(1) in ("kind", "type", "sort")  # 'the kind of boarding suite ...'
        if not kind or subject.startswith("the "):
            return f" the {noun.group(1)} of {subject.removeprefix('the ') if kind else subject}"
    if noun and re.search(rf"\b{re.escape(noun.group(2))}\b", bare):  # 'the day of the tour of your tour booking'
        return f" the {label} on {subject}"
    return f" the {label} of {subject}"



def _joined(what: str, label: str) -> str:
    """'storage unit' + 'unit size' -> 'storage unit size', not 'storage unit unit size'."""
    last, first = what.rsplit(" ", 1)[-1], label.split(" ", 1)
    return f"{what} {first[1]}" if len(first) > 1 and first[0] == last else f"{what} {label}"


def _changing(label: str, value: str) -> str:
    """'changing the day of the visit to V', but 'so that the city the parcel goes to is V' (no 'to to')."""
    return f"so that {_the(label)} is {value}" if label.endswith(" to") else f"changing {_the(label)} to {value}"


def _wish(attr: CatalogAttribute, value: str) -> str | None:
    """'with orthopedics as the medical specialty': a search criterion as the customer states it in their first
    message (a wish they have, not an attribute they are asked for); None for numbers and codes, which the
    first message leaves out (the assistant asks for them)."""
    if attr.type != "str" or not set(attr.gen) & {"choice", "pick", "compose"}:
        return None
    return f"with {value} as {_the(_lower(attr.description))}"


def _lower(text: str) -> str:
    """Sentence case to mid-sentence ('Day of the visit' -> 'day of the visit'; 'ABO group' stays)."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


FEE_TOLD = ("fee", " You also want to know the fee it costs.")  # a computed fee, asked for as balance_told/refund_told


def _told_back(told: tuple[str, str] | None, at: int) -> tuple[list[str], str]:
    """A figure call `at` returns that the customer asks for, from a (returned key, words asking for it) pair:
    (what to communicate, the words), or nothing when there is no such figure."""
    return ([f"<out{at}.{told[0]}>"], told[1]) if told else ([], "")


@dataclass
class _T:
    """A template under construction (becomes a TaskTemplate dict)."""

    kind: str
    calls: list[tuple[str, dict[str, Any]]]
    instruction: str
    reason: str
    known: dict[str, str]
    unknown: str
    selectors: list[tuple[str, str]]
    communicate: list[str] = field(default_factory=list)
    forbidden: tuple[str, dict[str, Any]] | None = None
    rule: str | None = None
    group: str = "read"  # read | write | refusal | multi (ordering of the batch)
    evidence: int = 0  # trailing reads that show why a refusal holds: they do not make a new shape to balance

    def dump(self, domain: str) -> dict[str, Any]:
        call = lambda c: {"tool": c[0], "arguments": c[1]}  # noqa: E731
        return {"kind": self.kind, "trajectory": [call(c) for c in self.calls],
                "forbidden": call(self.forbidden) if self.forbidden else None, "violated_rule": self.rule,
                "instruction": self.instruction, "reason_for_call": self.reason, "known_info": self.known,
                "unknown_info": self.unknown, "selectors": [{"slot": s, "sql": q} for s, q in self.selectors],
                "communicate": self.communicate, "domains": [domain], "is_cross_domain": False}


class _Impossible(Exception):
    """A template cannot be written for this domain (e.g. no value breaks a rule within the schema)."""

