"""The builtin template builder's base: lookups, selector SQL, argument values that pass (or break) a policy
check, and the pieces record templates share. Reads, writes and chains build on it."""
from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from typing import Any

from skiller.world.catalog import values
from skiller.world.catalog.coherence import status_timing
from skiller.world.catalog.model import CatalogAttribute, CatalogDomain, CatalogRecord, CatalogTool
from skiller.world.builtin import phrasing
from skiller.world.builtin.codegen import Check, checks, choices, find, id_column, snake, words
from skiller.contract.placeholders import sql_literal
from skiller.world.builtin.taskparts import Item, _cond, _day, _Impossible, _lower, _static

__all__ = ["_Base"]


def _within_all(found: list[Check]) -> Check:
    """One range check every check in `found` admits (a tier rule's checks: the tightest bounds), so a
    compliant value passes whatever tier the person is in."""
    ranged = [c for c in found if c.kind in ("num_range", "date_range")]
    if len(ranged) < 2 or len({c.kind for c in ranged}) > 1:
        return found[0]
    los = [c.lo for c in ranged if c.lo is not None]
    his = [c.hi for c in ranged if c.hi is not None]
    lo, hi = (max(los) if los else None), (min(his) if his else None)
    if lo is not None and hi is not None and lo > hi:
        return found[0]
    return dataclasses.replace(ranged[0], lo=lo, hi=hi, when=None)


class _Base:
    """Writes templates for one catalog domain, seeded (the parts every kind of template uses)."""

    def __init__(self, domain: CatalogDomain, rng: random.Random, clock: str,
                 refs: dict[str, str] | None = None) -> None:
        self.d, self.rng, self.clock = domain, rng, clock
        self.refs = refs or {}  # "Domain.Record" -> its id prefix, when known without the catalog
        self.profile = next((t for t in domain.tools if t.kind == "get_profile"), None)
        self.used: Counter[str] = Counter()  # patterns (kind: tool kinds in order) chosen so far

    # ---------------------------------------------------------------- lookups
    def tool(self, kind: str, entity: str | None) -> CatalogTool | None:
        return next((t for t in self.d.tools if t.kind == kind and t.entity == entity), None)

    def counted_list(self, bad: Check | None, person: str = "<person.person_id>") -> list[tuple[str, dict[str, str]]]:
        """The read that shows a limit on the customer's records reached (a scheduled visit too many, a claim
        under review): the list of the records the limit counts, so the refusal can cite them."""
        if bad is None or bad.subject != "person" or bad.kind != "count_lt":
            return []
        counted = next((r for r in self.d.records if snake(r.name) == bad.table), None)
        lst = self.tool("list_records", counted.name) if counted is not None else None
        return [(lst.name, {"person_id": person})] if lst is not None else []

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

    def bad(self, c: Check, attr: CatalogAttribute | None, others: list[Check] | None = None) -> Any:
        """A value breaking `c` (None when the argument's enum leaves no such value); from an enum, one that
        keeps the `others` checks on the same argument (a tier's cap broken, not the general limit)."""
        if attr is not None and choices(attr) and c.kind == "num_range":
            options = [v for v in choices(attr) if (c.lo is not None and v < c.lo) or (c.hi is not None and v > c.hi)]
            kept = [v for v in options if all((o.lo is None or v >= o.lo) and (o.hi is None or v <= o.hi)
                                              for o in others or [] if o.kind == "num_range")]
            options = kept or options
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
        return values.generate(attr.gen, self.rng, self.clock, lambda ref: (self.refs[ref], 30) if ref in self.refs else 30)

    def args(self, tool: CatalogTool, item: Item, names: list[str], bad: Check | None) -> dict[str, Any]:
        found = [c for c in checks(self.d, tool) if c.subject == "arg"]
        out: dict[str, Any] = {}
        for name in names:
            attr = next((a for a in item.attributes if a.name == name), None)
            mine = [c for c in found if c.field == name]
            if bad is not None and bad.field == name:
                out[name] = self.bad(bad, attr, [c for c in mine if c.label != bad.label])
                if out[name] is None:
                    raise _Impossible(f"{bad.label} cannot be broken within the schema of {name}")
            elif mine:
                out[name] = self.good(_within_all(mine), attr)
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
    def statuses(self, rec: CatalogRecord, tool: CatalogTool, among: set[str] | None = None) -> set[str]:
        """The statuses of `rec` (of `among`) in which `tool`'s row checks on the status let it act."""
        out = set(rec.statuses) if among is None else set(among)
        for c in checks(self.d, tool):
            if c.subject == "row" and c.field == rec.status_field and c.kind in ("status_in", "eq", "ne"):
                out = {s for s in out if _static(c, {c.field: s})}
        return out

    def conds(self, tool: CatalogTool, bad: Check | None = None) -> tuple[list[str], list[str], list[str]]:
        """(row, target, person) SQL conditions under which every check before `bad` holds and `bad` fails."""
        row: list[str] = []
        target: list[str] = []
        person: list[str] = []
        rec = find(self.d, tool.entity or "") if tool.kind == "set_status" and tool.entity else None
        timing = status_timing(rec) if isinstance(rec, CatalogRecord) else None
        if timing is not None and tool.to in timing.past:  # what it records has happened: its day has come
            row.append(f"r.{timing.date} <= {sql_literal(self.clock)}")
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

    def reason(self, group: str, rule: str | None = None, **names: str) -> str:
        """Why the customer calls; a refusal's reason fits the kind of the rule `rule` (an id) it breaks."""
        what = names.get("what", "service")
        names["a_what"] = phrasing.article(what)
        names["whats"] = phrasing.plural(what)
        names.setdefault("target", self._target_words(what))
        names["a_target"] = phrasing.article(names["target"])
        broken = next((r for r in self.d.rules if r.id == rule), None)
        kind = broken.kind if broken is not None else None
        if broken is not None and broken.kind == "no_outstanding":  # the records that stop it, not the new one
            names["counteds"] = phrasing.plural(words(broken.entity) if broken.entity else what)
            names["state"] = " or ".join(s.replace("_", " ") for s in broken.statuses)
        pool = phrasing.REFUSAL_REASONS.get(kind or "") if group == "refusal" else None
        return self.rng.choice(pool or phrasing.REASONS[group]).format(service=self.d.name, **names)

    def _target_words(self, what: str) -> str:
        """The provider a record of `what` is with ('doctor' for 'appointment'), else 'option'."""
        rec = next((r for r in self.d.records if words(r.name) == what), None)
        return words(find(self.d, rec.target).name) if rec is not None else "option"
