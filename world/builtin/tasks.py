"""Builtin answers for the task steps: s14 templates and judge, s15 re-plan, s17 persona and first query."""
from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from skiller.world.catalog import get_domain, values
from skiller.world.catalog.model import CatalogAttribute, CatalogDomain, CatalogEntity, CatalogRecord, CatalogTool
from skiller.world.builtin import phrasing
from skiller.world.builtin.codegen import (
    PAYMENT_METHODS, Check, checks, choices, fee_check, find, id_column, owned, pay_field, snake, words,
)
from skiller.world.builtin.registry import answers
from skiller.llm.interface import LLMRequest
from skiller.contract.placeholders import PLACEHOLDER, sql_literal

__all__ = ["judge_template", "relax_sql", "templates_for"]

Item = CatalogEntity | CatalogRecord
RELAX = re.compile(r"\s*/\*relax\*/.*?/\*end\*/", re.S)


def _rng(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big"))


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
    return [a for a in item.attributes if a.type != "bool" and "ref" not in a.gen and a.name not in skip]


def _flag_phrase(attr: CatalogAttribute) -> str:
    text = attr.description
    return text[8:] if text.lower().startswith("whether ") else f"{words(attr.name)} is true"


_WH = ("how ", "what ", "which ", "who ", "where ", "when ", "whether ")


def _the(label: str) -> str:
    """'the day of the visit', but 'how the course is graded' (a clause takes no article)."""
    return label if label.lower().startswith(_WH) else f"the {label}"


def _about(label: str, subject: str) -> str:
    """' the fee of doctor X' or ', for payee X, what the payee is paid for' (follows 'You want to know')."""
    return f", for {subject}, {label}" if label.lower().startswith(_WH) else f" the {label} of {subject}"


def _lower(text: str) -> str:
    """Sentence case to mid-sentence ('Day of the visit' -> 'day of the visit'; 'ABO group' stays)."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


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

    def dump(self, domain: str) -> dict[str, Any]:
        call = lambda c: {"tool": c[0], "arguments": c[1]}  # noqa: E731
        return {"kind": self.kind, "trajectory": [call(c) for c in self.calls],
                "forbidden": call(self.forbidden) if self.forbidden else None, "violated_rule": self.rule,
                "instruction": self.instruction, "reason_for_call": self.reason, "known_info": self.known,
                "unknown_info": self.unknown, "selectors": [{"slot": s, "sql": q} for s, q in self.selectors],
                "communicate": self.communicate, "domains": [domain], "is_cross_domain": False}


class _Impossible(Exception):
    """A template cannot be written for this domain (e.g. no value breaks a rule within the schema)."""


class _Builder:
    """Writes every kind of template for one catalog domain, seeded."""

    def __init__(self, domain: CatalogDomain, rng: random.Random, clock: str) -> None:
        self.d, self.rng, self.clock = domain, rng, clock
        self.profile = next((t for t in domain.tools if t.kind == "get_profile"), None)

    # ---------------------------------------------------------------- lookups
    def tool(self, kind: str, entity: str | None) -> CatalogTool | None:
        return next((t for t in self.d.tools if t.kind == kind and t.entity == entity), None)

    def order(self, alias: str, key: str) -> str:
        a, m = self.rng.choice([7, 11, 13, 17, 19, 23]), self.rng.choice([29, 31, 37, 41, 43])
        return f" /*relax*/ORDER BY (CAST(substr({alias}.{key}, -4) AS INTEGER) * {a}) % {m}, {alias}.{key}/*end*/"

    def rec_sql(self, rec: CatalogRecord, conds: list[str], tconds: list[str] | None = None,
                prefer: list[str] | None = None) -> str:
        """Rows of `rec` (with the person's name) meeting `conds`; `prefer` conditions may be relaxed by s15."""
        key, target = id_column(rec.name), find(self.d, rec.target)
        sql = f"SELECT r.*, p.first_name, p.last_name FROM {snake(rec.name)} r JOIN person p ON p.person_id = r.person_id"
        if tconds:
            tkey = id_column(target.name)
            sql += f" JOIN {snake(target.name)} t ON t.{tkey} = r.{tkey}"
        sql += " WHERE " + " AND ".join([*conds, *(tconds or [])] or ["1 = 1"])
        sql += "".join(f" /*relax*/AND {c}/*end*/" for c in prefer or [])
        return sql + self.order("r", key)

    def ent_sql(self, item: Item, conds: list[str]) -> str:
        return (f"SELECT t.* FROM {snake(item.name)} t WHERE " + " AND ".join(conds or ["1 = 1"])
                + self.order("t", id_column(item.name)))

    def person_sql(self, conds: list[str]) -> str:
        return (f"SELECT p.person_id, p.first_name, p.last_name FROM person p JOIN {snake(self.d.role)} m "
                f"ON m.person_id = p.person_id WHERE " + " AND ".join(conds or ["1 = 1"]) + self.order("p", "person_id"))

    def who(self, slot: str) -> dict[str, str]:
        return {"person id": f"<{slot}.person_id>", "full name": f"<{slot}.first_name> <{slot}.last_name>"}

    def profile_call(self, slot: str) -> list[tuple[str, dict[str, Any]]]:
        return [(self.profile.name, {"person_id": f"<{slot}.person_id>"})] if self.profile else []

    # ---------------------------------------------------------------- argument values
    def good(self, c: Check, attr: CatalogAttribute | None) -> Any:
        lo, hi = c.lo, c.hi
        if c.kind == "date_range":
            lo = lo if lo is not None else (hi - 30 if hi is not None else 1)
            return _day(self.rng.randint(int(lo), int(min(hi, lo + 40)) if hi is not None else int(lo) + 40))
        options = [v for v in (choices(attr) if attr else None) or [] if (lo is None or v >= lo) and (hi is None or v <= hi)]
        if options:  # an enum: the schema accepts nothing else
            return self.rng.choice(options)
        gen = (attr.gen.get("int") or attr.gen.get("money")) if attr else None
        glo, ghi = (gen or [lo if lo is not None else 0, hi if hi is not None else 100])
        lo2, hi2 = max(lo if lo is not None else glo, glo), min(hi if hi is not None else ghi, ghi)
        if lo2 > hi2:
            lo2, hi2 = lo if lo is not None else hi, hi if hi is not None else lo
        value = self.rng.randint(math.ceil(lo2), math.floor(hi2)) if math.ceil(lo2) <= math.floor(hi2) else lo2
        return int(value) if attr is not None and attr.type == "int" else float(value)

    def bad(self, c: Check, attr: CatalogAttribute | None) -> Any:
        """A value breaking `c` (None when the argument's enum leaves no such value)."""
        if attr is not None and choices(attr) and c.kind == "num_range":
            options = [v for v in choices(attr) if (c.lo is not None and v < c.lo) or (c.hi is not None and v > c.hi)]
            return self.rng.choice(options) if options else None
        if c.kind == "date_range":
            return _day(c.hi + self.rng.choice([25, 60, 150, 400]) if c.hi is not None else c.lo - self.rng.randint(1, 5))
        if attr is not None and attr.type == "int":
            over = 1 if c.when else self.rng.randint(1, 4)  # a tier's limit: just above it, within the others
            return int(c.hi) + over if c.hi is not None else int(c.lo) - 1
        return float(round(c.hi * 1.5) + self.rng.randint(1, 9) * 10) if c.hi is not None else float(c.lo - 1)

    def free(self, attr: CatalogAttribute) -> Any:
        options = choices(attr)
        if options:
            return self.rng.choice(options)
        if attr.type == "date":
            return _day(self.rng.randint(3, 40))
        if attr.type == "bool":
            return True
        if attr.type in ("int", "float"):
            return self.good(Check("free", "arg", "num_range", attr.name), attr)
        return values.generate(attr.gen, self.rng, self.clock, lambda ref: 30)

    def args(self, tool: CatalogTool, item: Item, names: list[str], bad: Check | None) -> dict[str, Any]:
        found = [c for c in checks(self.d, tool) if c.subject == "arg"]
        out: dict[str, Any] = {}
        for name in names:
            attr = next((a for a in item.attributes if a.name == name), None)
            mine = [c for c in found if c.field == name]
            if bad is not None and bad.field == name:
                out[name] = self.bad(bad, attr)
                if out[name] is None:
                    raise _Impossible(f"{bad.label} cannot be broken within the schema of {name}")
            elif mine:  # within every check on the field, each tier's limit included: valid for anyone
                his = [c.hi for c in mine if c.hi is not None and c.kind == mine[0].kind]
                los = [c.lo for c in mine if c.lo is not None and c.kind == mine[0].kind]
                out[name] = self.good(Check(mine[0].label, "arg", mine[0].kind, name, lo=max(los, default=None),
                                            hi=min(his, default=None)), attr)
            else:
                out[name] = self.free(attr) if attr else "n/a"
        return out

    def arg_text(self, item: Item, args: dict[str, Any]) -> tuple[str, dict[str, str]]:
        parts, known = [], {}
        for name, value in args.items():
            attr = next((a for a in item.attributes if a.name == name), None)
            label = _lower(attr.description) if attr else words(name)
            text = str(value)
            if isinstance(value, float):
                text = str(int(value)) if value.is_integer() else f"{value:.2f}"
            parts.append(f"{label}: {text}")
            known[label] = text
        return "; ".join(parts), known

    # ---------------------------------------------------------------- conditions of a write tool
    def conds(self, tool: CatalogTool, bad: Check | None = None) -> tuple[list[str], list[str], list[str]]:
        """(row, target, person) SQL conditions under which every check before `bad` holds and `bad` fails."""
        row: list[str] = []
        target: list[str] = []
        person: list[str] = []
        for c in checks(self.d, tool):
            fails = bad is not None and c.label == bad.label and c.when == bad.when
            if c.subject == "member" or (fails and c.when):  # who asks: their profile row
                self.member(tool, row, person, _cond(c, not fails, "m") if c.subject == "member"
                            else f"m.{c.when[0]} = {sql_literal(c.when[1])}")
            elif c.subject not in ("arg", "owner"):  # the owner is who asks: the task's person, not a row condition
                bucket = {"row": row, "target": target, "person": person}[c.subject]
                bucket.append(_cond(c, not fails, {"row": "r", "target": "t", "person": "p"}[c.subject]))
            if fails:
                break
        return row, target, person

    def member(self, tool: CatalogTool, row: list[str], person: list[str], cond: str) -> None:
        """A condition on the acting person's profile (alias m), reached from the person (p) or the record (r)."""
        whose = "p" if tool.kind == "create" else "r"
        (person if tool.kind == "create" else row).append(
            f"EXISTS (SELECT 1 FROM {snake(self.d.role)} m WHERE m.person_id = {whose}.person_id AND {cond})")

    # ---------------------------------------------------------------- shared pieces of record templates
    def key_of(self, item: Item) -> str:
        return id_column(item.name)

    def date_attr(self, rec: CatalogRecord) -> CatalogAttribute | None:
        return next((a for a in rec.attributes if a.type == "date"), None)

    def dated(self, rec: CatalogRecord) -> str:
        attr = self.date_attr(rec)
        return f" ({_lower(attr.description)} <rec.{attr.name}>)" if attr else ""

    def lookup(self, rec: CatalogRecord, ref: str) -> list[tuple[str, dict[str, Any]]]:
        """Read the record before acting on it: its get tool, else the person's list."""
        get, lst = self.tool("get", rec.name), self.tool("list_records", rec.name)
        if get:
            return [(get.name, {self.key_of(rec): ref})]
        return [(lst.name, {"person_id": "<rec.person_id>"})] if lst else []

    def unique_status(self, rec: CatalogRecord) -> str:
        sf = rec.status_field
        return f"(SELECT COUNT(*) FROM {snake(rec.name)} o WHERE o.person_id = r.person_id AND o.{sf} = r.{sf}) = 1"

    def listed(self, rec: CatalogRecord) -> tuple[str, dict[str, Any]] | None:
        lst = self.tool("list_records", rec.name)
        if lst is None or rec.status_field != "status":  # the blueprint names the filter `status`
            return None
        return lst.name, {"person_id": "<rec.person_id>", "status": "<rec.status>"}

    def reason(self, group: str, **names: str) -> str:
        names["a_what"] = phrasing.article(names.get("what", "service"))
        return self.rng.choice(phrasing.REASONS[group]).format(service=self.d.name, **names)

    # ---------------------------------------------------------------- reads
    def read_profile(self) -> _T | None:
        if self.profile is None:
            return None
        attrs = [a for a in self.d.role_attributes if a.type != "bool"]
        pick = self.rng.choice(attrs) if attrs else None
        name, desc = (pick.name, pick.description) if pick else ("city", "City of residence")
        return _T("read", self.profile_call("person"),
                  f"You want to check what {self.d.name} has on file for you, in particular your {_lower(desc)}.",
                  self.reason("profile", what=_lower(desc)), self.who("person"),
                  f"You do not remember your {_lower(desc)}.", [("person", self.person_sql([]))],
                  [f"<out1.{name}>"])

    def read_entity(self, tool: CatalogTool) -> _T:
        item = find(self.d, tool.entity or "")
        key, lab = self.key_of(item), _label_attr(item)
        attr = self.rng.choice(_info_attrs(item, {lab.name} if lab else set()) or _info_attrs(item))
        what = words(item.name)
        named = f" (<target.{lab.name}>)" if lab else ""
        known = {f"{what} id": f"<target.{key}>"} | ({f"{what} {words(lab.name)}": f"<target.{lab.name}>"} if lab else {})
        return _T("read", [(tool.name, {key: f"<target.{key}>"})],
                  f"You want to know{_about(_lower(attr.description), f'{what} <target.{key}>{named}')}.",
                  self.reason("entity", what=what), known, f"You do not know {_the(_lower(attr.description))}.",
                  [("target", self.ent_sql(item, []))], [f"<out1.{attr.name}>"])

    def read_record(self, tool: CatalogTool) -> _T:
        rec = find(self.d, tool.entity or "")
        key, what = self.key_of(rec), words(rec.name)
        attr = self.rng.choice(_info_attrs(rec))
        calls = self.profile_call("rec") + [(tool.name, {key: f"<rec.{key}>"})]
        return _T("read", calls, f"You want to know{_about(_lower(attr.description), f'your {what} <rec.{key}>')}.",
                  self.reason("record", what=what), self.who("rec") | {f"{what} id": f"<rec.{key}>"},
                  f"You do not know {_the(_lower(attr.description))}.", [("rec", self.rec_sql(rec, []))],
                  [f"<out{len(calls)}.{attr.name}>"])

    def read_search(self, tool: CatalogTool) -> _T | None:
        item = find(self.d, tool.entity or "")
        attrs = {a.name: a for a in item.attributes}
        plain = [f for f in tool.fields if attrs[f].type != "bool"]
        flags = [f for f in tool.fields if attrs[f].type == "bool"]
        args: dict[str, Any] = {}
        conds, known, asks = [], {}, []
        if plain:
            f = self.rng.choice(plain)
            args[f] = f"<target.{f}>"
            known[_lower(attrs[f].description)] = f"<target.{f}>"
            asks.append(f"({_lower(attrs[f].description)}: <target.{f}>)")
        if flags and (self.rng.random() < 0.7 or not plain):
            f = self.rng.choice(flags)
            args[f] = True
            conds.append(f"t.{f} = 1")
            known["requirement"] = _flag_phrase(attrs[f])
            asks.append(f"where {_flag_phrase(attrs[f])}")
        key, lab, what = self.key_of(item), _label_attr(item), words(item.name)
        comm = [f"<out1.{key}>"] + ([f"<out1.{lab.name}>"] if lab and lab.name not in args else [])
        return _T("read", [(tool.name, args)],
                  f"You are looking for {phrasing.article(what)} {' '.join(asks)}. You want the id"
                  f"{' and ' + words(lab.name) if len(comm) > 1 else ''} of the first match the system lists.",
                  self.reason("search", what=what), known, f"You do not know which {phrasing.plural(what)} exist.",
                  [("target", self.ent_sql(item, conds))], comm)

    def read_list(self, tool: CatalogTool) -> _T | None:
        rec = find(self.d, tool.entity or "")
        call = self.listed(rec)
        if call is None:
            return None
        key, what, date = self.key_of(rec), words(rec.name), self.date_attr(rec)
        calls = self.profile_call("rec") + [call]
        comm = [f"<out{len(calls)}.{key}>"] + ([f"<out{len(calls)}.{date.name}>"] if date else [])
        return _T("read", calls,
                  f"You want to know which of your {phrasing.plural(what)} is in status <rec.status>: its id"
                  f"{' and ' + _lower(date.description) if date else ''}.",
                  self.reason("record", what=what), self.who("rec") | {f"{what} status": "<rec.status>"},
                  f"You do not know the {what}'s id.", [("rec", self.rec_sql(rec, [self.unique_status(rec)]))],
                  comm)

    def read_chain(self, tool: CatalogTool) -> _T | None:
        """profile -> list (one record in that status) -> the record's target (3 calls)."""
        rec = find(self.d, tool.entity or "")
        call, target = self.listed(rec), find(self.d, rec.target)
        get_target, get_rec = self.tool("get", target.name), self.tool("get", rec.name)
        if call is None or (get_target is None and get_rec is None) or self.profile is None:
            return None
        what, n = words(rec.name), 3
        if get_target is not None:
            tkey, lab = self.key_of(target), _label_attr(target)
            attr = lab or self.rng.choice(_info_attrs(target))
            last = (get_target.name, {tkey: f"<out2.{tkey}>"})
            goal = _about(_lower(attr.description), f"the {words(target.name)} linked to your {what} in status <rec.status>")
        else:
            key = self.key_of(rec)
            attr = self.rng.choice(_info_attrs(rec, {"status"}))
            last = (get_rec.name, {key: f"<out2.{key}>"})
            goal = _about(_lower(attr.description), f"your {what} in status <rec.status>")
        return _T("read", self.profile_call("rec") + [call, last], f"You want to know{goal}.",
                  self.reason("record", what=what), self.who("rec") | {f"{what} status": "<rec.status>"},
                  f"You do not know the {what}'s id or its details.",
                  [("rec", self.rec_sql(rec, [self.unique_status(rec)]))], [f"<out{n}.{attr.name}>"],
                  group="multi")

    # ---------------------------------------------------------------- writes on an existing record
    def _sqlv(self, value: Any) -> str:
        return value if isinstance(value, str) and PLACEHOLDER.fullmatch(value) else sql_literal(value)

    def on_record(self, tool: CatalogTool, bad: Check | None = None, by_list: bool = False,
                  then: CatalogTool | None = None) -> _T | None:
        """profile -> look the record up -> `tool` (-> `then`, e.g. pay after checking in); or a refusal
        of `tool` when `bad` is given (the golden calls are the reads, `tool` is the forbidden call)."""
        rec = find(self.d, tool.entity or "")
        if not isinstance(rec, CatalogRecord):
            return None
        key, what = self.key_of(rec), words(rec.name)
        row, tconds, _ = self.conds(tool, None if bad is not None and bad.kind == "owner" else bad)
        args: dict[str, Any] = {}
        change = ""
        if tool.kind == "update":
            names = [bad.field] if bad is not None and bad.subject == "arg" else [self.rng.choice(tool.fields)]
            args = self.args(tool, rec, names, bad)
            if bad is None:
                row += [f"({'r.' + n} IS NULL OR r.{n} <> {self._sqlv(v)})" for n, v in args.items()]
            change = ", ".join(f"changing {_the(k)} to {v}" for k, v in self.arg_text(rec, args)[1].items())
        elif tool.kind == "pay":
            args = {"payment_method": self.rng.choice(PAYMENT_METHODS)}
            change = f"paying by {args['payment_method'].replace('_', ' ')}"
            if tool.amount_field and bad is None:
                row.append(f"r.{tool.amount_field} > 0")
        chained: list[tuple[str, dict[str, Any]]] = []
        if then is not None:  # `then` runs on the row after `tool` moved it to tool.to
            state = {rec.status_field: tool.to}
            for c in checks(self.d, then):
                known = _static(c, state)
                if known is False:
                    return None
                if known is None and c.subject not in ("row", "target"):
                    return None
                if known is None:
                    (tconds if c.subject == "target" else row).append(_cond(c, True, c.subject[0]))
            pay_args = {"payment_method": self.rng.choice(PAYMENT_METHODS)} if then.kind == "pay" else {}
            if then.kind == "pay" and then.amount_field:
                row.append(f"r.{then.amount_field} > 0")
            chained = [(then.name, {key: f"<rec.{key}>", **pay_args})]
        if by_list:
            row.append(self.unique_status(rec))
            found = self.listed(rec)
            if found is None or self.profile is None:
                return None
            reads, ref = [found], f"<out2.{key}>"
        else:
            reads, ref = self.lookup(rec, f"<rec.{key}>"), f"<rec.{key}>"
        calls = self.profile_call("rec") + reads
        own = (tool.name, {key: ref, **({"person_id": "<rec.person_id>"} if owned(self.d, tool) else {}), **args})
        if bad is not None and bad.kind == "owner":
            return self.not_owner(tool, rec, row, tconds, {key: f"<rec.{key}>", "person_id": "<person.person_id>", **args})
        desc = _lower(tool.description.rstrip("."))
        known = self.who("rec") | self.arg_text(rec, args)[1]
        if by_list:
            ident = f"your only {what} in status <rec.status>{self.dated(rec)}"
            known |= {f"{what} status": "<rec.status>"}
            if self.date_attr(rec):
                known[_lower(self.date_attr(rec).description)] = f"<rec.{self.date_attr(rec).name}>"
        else:
            ident = f"your {what} <rec.{key}>{self.dated(rec)}"
            known[f"{what} id"] = f"<rec.{key}>"
        instruction = f"You want to {desc}: {ident}" + (f", {change}" if change else "") + "."
        if then is not None:
            method = chained[0][1].get("payment_method")
            instruction += f" Then you want to {_lower(then.description.rstrip('.'))}" + (
                f", paying by {method.replace('_', ' ')}." if method else ".")
            if method:
                known["payment method"] = method
        if tool.kind == "pay":
            known["payment method"] = args["payment_method"]
        # too soon rather than long past: a lead-time refusal prefers a row dated today or just after
        soon = bad is not None and bad.subject == "row" and bad.kind == "date_range" and bad.hi is None and (bad.lo or 0) > 0
        selectors = [("rec", self.rec_sql(rec, row, tconds, [f"r.{bad.field} >= <clock+0>"] if soon else None))]
        if bad is not None:
            comm = [f"<rec.{bad.field}>"] if bad.subject == "row" and bad.kind in ("date_range", "status_in") else []
            return _T("refusal", calls, instruction, self.reason("refusal", what=what), known,
                      f"You do not know whether {self.d.name}'s rules allow this.", selectors, comm,
                      forbidden=own, rule=bad.label, group="refusal")
        calls += [own, *chained]
        comm = [f"<out{i + 1}.amount_paid>" for i, c in enumerate(calls) if self.d_tool(c[0]).kind == "pay"
                and self.d_tool(c[0]).amount_field]
        if fee_check(self.d, tool) is not None and fee_check(self.d, tool).field in args:  # a computed fee to tell
            comm.append(f"<out{calls.index(own) + 1}.fee>")
            instruction += " You also want to know the fee it costs."
        return _T("write", calls, instruction, self.reason(tool.kind, what=what), known,
                  f"You do not know the {what}'s current details.", selectors, comm,
                  group="multi" if len(calls) >= 3 else "write")

    def not_owner(self, tool: CatalogTool, rec: CatalogRecord, row: list[str], tconds: list[str],
                  forbidden: dict[str, Any]) -> _T:
        """A person asks to act on someone else's record (a relative's, say): the golden calls read it, the
        write is refused by the ownership rule."""
        key, what = self.key_of(rec), words(rec.name)
        get = self.tool("get", rec.name)  # the record by its id (a list would need the owner's id)
        calls = self.profile_call("person") + ([(get.name, {key: f"<rec.{key}>"})] if get else [])
        owner = "<rec.first_name> <rec.last_name>"
        instruction = (f"You want to {_lower(tool.description.rstrip('.'))} for {owner}: their {what} <rec.{key}>"
                       f"{self.dated(rec)}. You are doing it on their behalf with your own person id.")
        known = self.who("person") | {f"{what} id": f"<rec.{key}>", "whose it is": owner}
        selectors = [("rec", self.rec_sql(rec, row, tconds)),
                     ("person", self.person_sql(["p.person_id <> <rec.person_id>"]))]
        return _T("refusal", calls, instruction, self.reason("refusal", what=what), known,
                  f"You do not know whether {self.d.name}'s rules allow this.", selectors,
                  forbidden=(tool.name, forbidden), rule=next(c.label for c in checks(self.d, tool) if c.kind == "owner"),
                  group="refusal")

    def d_tool(self, name: str) -> CatalogTool:
        return next(t for t in self.d.tools if t.name == name)

    # ---------------------------------------------------------------- creates
    def create(self, tool: CatalogTool, bad: Check | None = None, via_search: bool = False,
               then: CatalogTool | None = None) -> _T | None:
        rec = find(self.d, tool.entity or "")
        if not isinstance(rec, CatalogRecord):
            return None
        target = find(self.d, rec.target)
        tkey, key, what, twhat = self.key_of(target), self.key_of(rec), words(rec.name), words(target.name)
        _, tconds, pconds = self.conds(tool, bad)
        args = self.args(tool, rec, list(tool.fields), bad)
        text, known = self.arg_text(rec, args)
        lab = _label_attr(target)
        calls = self.profile_call("person")
        get_target = self.tool("get", target.name)
        if via_search:
            search = self.tool("search", target.name)
            flags = [c for c in checks(self.d, tool) if c.subject == "target"]
            if search is None or any(c.kind != "eq" or c.field not in search.fields for c in flags):
                return None
            plain = [f for f in search.fields if all(a.type != "bool" for a in target.attributes if a.name == f)]
            if not plain:
                return None
            f = self.rng.choice(plain)
            sargs = {f: f"<target.{f}>"} | {c.field: c.values[0] for c in flags}
            calls.append((search.name, sargs))
            tref = f"<out{len(calls)}.{tkey}>"
            fdesc = _lower(next(a.description for a in target.attributes if a.name == f))
            whom = f"the first {twhat} the system lists with {fdesc}: <target.{f}>"
            for c in flags:  # the search filters on the flags the policy requires
                attr = next(a for a in target.attributes if a.name == c.field)
                whom += f" {'among' if c.values[0] else 'excluding'} those where {_flag_phrase(attr)}"
            known = {fdesc: f"<target.{f}>"} | known
        else:
            if get_target is not None:
                calls.append((get_target.name, {tkey: f"<target.{tkey}>"}))
            tref = f"<target.{tkey}>"
            whom = f"{twhat} <target.{tkey}>" + (f" (<target.{lab.name}>)" if lab else "")
            known = {f"{twhat} id": f"<target.{tkey}>"} | known
        known = self.who("person") | known
        own = (tool.name, {"person_id": "<person.person_id>", tkey: tref, **args})
        desc = _lower(tool.description.rstrip("."))
        instruction = f"You want to {desc}: {whom}; {text}."
        selectors = [("person", self.person_sql(pconds)), ("target", self.ent_sql(target, tconds))]
        if bad is not None:
            if bad.subject == "person":
                lst = self.tool("list_records", rec.name)
                calls = self.profile_call("person") + ([(lst.name, {"person_id": "<person.person_id>"})] if lst else [])
            elif bad.subject == "arg":
                calls = self.profile_call("person") or calls
            return _T("refusal", calls, instruction, self.reason("refusal", what=what), known,
                      f"You do not know whether {self.d.name}'s rules allow this.", selectors,
                      forbidden=own, rule=bad.label, group="refusal")
        calls.append(own)
        comm = [f"<out{len(calls)}.{key}>"]
        if fee_check(self.d, tool) is not None:  # a computed fee to tell
            comm.append(f"<out{len(calls)}.fee>")
            instruction += " You also want to know the fee it costs."
        if then is not None:
            state = {rec.status_field: tool.defaults.get(rec.status_field, rec.statuses[0]),
                     pay_field(then): tool.defaults.get(pay_field(then))}
            if then.amount_field and then.amount_field != tool.amount_field or pay_field(then) in tool.fields \
                    or any(_static(c, state) is not True for c in checks(self.d, then)):
                return None
            method = self.rng.choice(PAYMENT_METHODS)
            calls.append((then.name, {key: f"<out{len(calls)}.{key}>", "payment_method": method}))
            instruction += f" Then you want to pay for it right away by {method.replace('_', ' ')}."
            known["payment method"] = method
            comm.append(f"<out{len(calls)}.amount_paid>" if then.amount_field else comm[0])
        return _T("write", calls, instruction, self.reason("create", what=what, target=twhat), known,
                  f"You do not know the new {what}'s id" + (" or the amount due." if then else "."), selectors,
                  list(dict.fromkeys(comm)), group="multi" if len(calls) >= 3 else "write")

    def refusal(self, rule_id: str) -> _T | None:
        rule = next(r for r in self.d.rules if r.id == rule_id)
        tool = self.d_tool(rule.tool)
        tiers = [c for c in checks(self.d, tool) if c.label == rule.id]  # a tier rule: one check per tier
        bad = self.rng.choice(tiers) if len(tiers) > 1 else next(iter(tiers), None)
        if bad is None:
            return None
        try:
            return self.create(tool, bad) if tool.kind == "create" else self.on_record(tool, bad)
        except _Impossible:
            return None


# ---------------------------------------------------------------- s14.templates
def _candidates(b: _Builder) -> tuple[list[_T | None], list[_T | None]]:
    """(core, extra): core covers one refusal per rule kind and every tool; extra adds variety."""
    d, rng = b.d, b.rng
    core: list[_T | None] = []
    extra: list[_T | None] = []
    by_kind: dict[str, list[str]] = {}
    for r in d.rules:
        by_kind.setdefault(r.kind, []).append(r.id)
    for ids in by_kind.values():
        first = rng.choice(ids)
        core.append(b.refusal(first))
        extra += [b.refusal(i) for i in ids if i != first]
    pays = {t.entity: t for t in reversed(d.tools) if t.kind == "pay"}  # the first pay tool of each record
    core.append(b.read_profile())
    for t in d.tools:
        entity = find(d, t.entity) if t.entity else None
        if t.kind == "get":
            core.append(b.read_record(t) if isinstance(entity, CatalogRecord) else b.read_entity(t))
        elif t.kind == "search":
            core.append(b.read_search(t))
        elif t.kind == "list_records":
            core.append(b.read_list(t))
            extra.append(b.read_chain(t))
        elif t.kind == "create":
            core.append(b.create(t))
            extra += [b.create(t, via_search=True), b.create(t, then=pays[t.entity]) if t.entity in pays else None]
        elif t.kind in ("set_status", "update", "pay"):
            by_list = rng.random() < 0.4
            core.append(b.on_record(t, by_list=by_list) or b.on_record(t))
            extra.append(b.on_record(t, by_list=not by_list))
            if t.kind == "set_status" and t.entity in pays:
                extra.append(b.on_record(t, then=pays[t.entity]))
    lists = [t for t in d.tools if t.kind == "list_records"]
    if lists:  # at least one multi-step read among the core
        core.append(b.read_chain(rng.choice(lists)))
    return core, extra


def _interleave(items: list[_T]) -> list[_T]:
    """Round-robin over groups so that any prefix of the batch mixes refusals, writes and reads."""
    groups: dict[str, list[_T]] = {}
    for t in items:
        groups.setdefault(t.group, []).append(t)
    out: list[_T] = []
    while any(groups.values()):
        for g in ("refusal", "multi", "write", "read"):
            if groups.get(g):
                out.append(groups[g].pop(0))
    return out


def templates_for(domain: CatalogDomain, count: int, seed: int, min_length: int = 1, max_length: int = 5,
                  clock: str = "2026-03-02") -> list[dict[str, Any]]:
    """Up to `count` diverse templates of `domain` (same arguments, same answer)."""
    b = _Builder(domain, _rng(seed, domain.name, count, "s14"), clock)
    core, extra = _candidates(b)
    seen: set[str] = set()
    ordered: list[_T] = []
    fillers = [t for t in domain.tools if t.kind in ("get", "search", "get_profile", "list_records")]
    pool = _interleave([t for t in core if t]) + _interleave([t for t in extra if t])
    for attempt in range(len(pool) + 4 * count):  # then more reads drawn anew (other rows, other attributes)
        if not pool and fillers:
            t = fillers[attempt % len(fillers)]
            pool = [b.read_profile() if t.kind == "get_profile" else b.read_search(t) if t.kind == "search"
                    else b.read_list(t) if t.kind == "list_records" else
                    b.read_record(t) if isinstance(find(domain, t.entity or ""), CatalogRecord) else b.read_entity(t)]
            pool = [p for p in pool if p]
        if not pool or len(ordered) >= count:
            break
        t = pool.pop(0)
        sig = repr((t.calls, t.instruction, t.forbidden))
        if sig in seen or not min_length <= len(t.calls) <= max_length:
            continue
        seen.add(sig)
        ordered.append(t)
    return [t.dump(domain.name) for t in ordered[:count]]


@answers("s14.templates")
def task_templates(request: LLMRequest) -> dict:
    ctx = request.context
    domain = get_domain(ctx["domain"])
    everything = templates_for(domain, int(ctx["count"]), ctx.get("seed", 0), int(ctx.get("min_length", 1)),
                               int(ctx.get("max_length", 5)), str(ctx.get("clock", "2026-03-02")))
    offset = int(ctx.get("offset", 0))  # s14 asks in groups: this group's slice of the whole set
    return {"templates": everything[offset:offset + int(ctx.get("size", len(everything)))]}


# ---------------------------------------------------------------- s14.judge
_SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


def _clamp(x: float) -> int:
    return max(1, min(5, int(x + 0.5)))


def judge_template(t: dict[str, Any]) -> dict[str, int]:
    """Rule-based scores from checkable properties of a template dict (TaskTemplate JSON)."""
    instruction, reason = str(t.get("instruction") or ""), str(t.get("reason_for_call") or "")
    known = {str(k): str(v) for k, v in (t.get("known_info") or {}).items()}
    calls = list(t.get("trajectory") or [])
    slots = {s.get("slot") for s in t.get("selectors") or []}
    kind = t.get("kind")
    n_words = len(instruction.split())
    # motivation: a reason in its own words
    motivation = 5 if len(reason.split()) >= 6 else 3 if len(reason.split()) >= 3 else 1
    if reason.strip() and reason.strip() == instruction.strip():
        motivation -= 2
    # coherence: every id argument comes from a selected row or an earlier call's output
    coherence = 5 if calls else 1
    for i, call in enumerate(calls, start=1):
        for name, value in (call.get("arguments") or {}).items():
            if not name.endswith("_id"):
                continue
            m = PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
            slot = m.group(1) if m else None
            ok = slot is not None and (slot in slots or (slot.startswith("out") and slot[3:].isdigit() and int(slot[3:]) < i))
            coherence -= 0 if ok else 2
    if kind == "refusal" and not (t.get("forbidden") and t.get("violated_rule")):
        coherence -= 3
    if kind == "refusal" and t.get("forbidden") and any(c.get("tool") == t["forbidden"].get("tool") for c in calls):
        coherence -= 2
    # completeness: the user knows every selected value the calls need; the unknowns are stated
    needed = {m.group(0) for c in [*calls, t.get("forbidden") or {}] for v in (c.get("arguments") or {}).values()
              if isinstance(v, str) for m in PLACEHOLDER.finditer(v) if m.group(1) and not m.group(1).startswith("out")}
    given = " ".join(known.values()) + " " + instruction
    completeness = 5 - 2 * len([p for p in needed if p not in given])
    completeness -= 0 if str(t.get("unknown_info") or "").strip() else 1
    completeness -= 1 if kind == "read" and not t.get("communicate") else 0
    completeness -= 2 if needed and not slots else 0
    # naturalness: sentences of a sensible length in words, not identifiers or SQL
    naturalness = 5 if 8 <= n_words <= 90 else 3 if 4 <= n_words <= 140 else 1
    naturalness -= 1 if not instruction.rstrip().endswith((".", "?", "!")) else 0
    naturalness -= min(2, len(_SNAKE.findall(PLACEHOLDER.sub("", instruction))))
    naturalness -= 2 if re.search(r"\bSELECT\b|[{}]", instruction) else 0
    # specificity: concrete values (placeholders) in the goal
    concrete = len(PLACEHOLDER.findall(instruction))
    specificity = 1 if concrete == 0 else 3 if concrete == 1 else 5
    if kind in ("write", "refusal") and concrete < 1:
        specificity = 1
    scores = {"motivation_clarity": _clamp(motivation), "logical_coherence": _clamp(coherence),
              "completeness": _clamp(completeness), "naturalness": _clamp(naturalness),
              "specificity": _clamp(specificity)}
    scores["overall_score"] = _clamp(sum(scores.values()) / len(scores))
    return scores


@answers("s14.judge")
def template_judge(request: LLMRequest) -> dict:
    return judge_template(request.context["template"])


# ---------------------------------------------------------------- s15.replan
def relax_sql(sql: str) -> str:
    """Drop what is not policy: marked /*relax*/ segments, else a top-level trailing ORDER BY/LIMIT."""
    relaxed = RELAX.sub("", sql)
    if relaxed != sql:
        return relaxed.strip()
    depth, cut = 0, None
    upper = sql.upper()
    for i, ch in enumerate(sql):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and upper.startswith(("ORDER BY", "LIMIT"), i) and (i == 0 or not sql[i - 1].isalnum()):
            cut = i
            break
    return sql[:cut].strip() if cut is not None else sql


@answers("s15.replan")
def replan(request: LLMRequest) -> dict:
    """Relax the failing slot's selector; the same plan back when nothing can be relaxed (s15 then stops)."""
    ctx = request.context
    selectors = list(ctx["template"].get("selectors") or [])
    slots = [s["slot"] for s in selectors]
    failing, attempt = ctx.get("slot"), int(ctx.get("attempt", 0))
    # the context holds the template's own plan: later attempts also relax the slots before the failing one
    upto = slots.index(failing) if failing in slots else -1
    out = []
    for i, s in enumerate(selectors):
        sql = s["sql"]
        if i == upto or (attempt > 0 and i < upto):
            for _ in range(attempt + 1):
                sql = relax_sql(sql)
        out.append({"slot": s["slot"], "sql": sql})
    return {"selectors": out}


# ---------------------------------------------------------------- s17
@answers("s17.persona")
def persona(request: LLMRequest) -> dict:
    ctx = request.context
    chosen = phrasing.persona(_rng(ctx.get("seed", 0), ctx.get("stream", ""), ctx.get("domain", ""), "persona"))
    name = (ctx.get("facts") or {}).get("full name")
    return chosen | {"name": name} if name else chosen  # the persona is the person on record


@answers("s17.query")
def query(request: LLMRequest) -> dict:
    ctx = request.context
    return phrasing.query(_rng(ctx.get("seed", 0), ctx.get("stream", ""), "query"), ctx)
