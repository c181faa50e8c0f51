"""Forced rows ("scenarios") of a builtin database: the rows, quotas and customer profiles that make
every policy rule of a domain both keepable and breakable on the generated data, whatever the seed."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from skiller.world.catalog.model import CatalogDomain, CatalogEntity, CatalogRecord
from skiller.world.builtin.codegen import Check, attribute, checks, choices, find, snake
from skiller.world.builtin.refunds import refund_cases

__all__ = ["data_scenarios", "solve"]


def _domain_values(item: CatalogEntity | CatalogRecord, field: str) -> list[Any]:
    if isinstance(item, CatalogRecord) and field == item.status_field:
        return list(item.statuses)
    attr = attribute(item, field)
    if attr is None:
        return []
    if attr.type == "bool":
        return [True, False]
    return choices(attr) or []


def solve(item: CatalogEntity | CatalogRecord, conds: list[tuple[Check, bool]]) -> dict[str, Any] | None:
    """Column overrides making a row satisfy each (check, holds) pair, or None if impossible.

    Dates are given as {"days": n} (offset from the clock), resolved by the script. A count
    check is met by the person the row is given: "free" (below every limit) or "full:<rule>".
    """
    must_in: dict[str, list[Any]] = {}
    must_not: dict[str, list[Any]] = {}
    ranges: dict[str, list[float | None]] = {}
    kinds: dict[str, str] = {}
    person = "free"
    for check, holds in conds:
        f = check.field or ""
        if check.kind == "count_lt":
            person = "free" if holds else f"full:{check.label}"
            continue
        if check.kind in ("status_in", "eq", "ne"):
            vals = list(check.values)
            positive = holds if check.kind != "ne" else not holds
            if positive:
                must_in[f] = [v for v in must_in.get(f, vals) if v in vals]
            else:
                must_not[f] = must_not.get(f, []) + vals
            continue
        if check.kind == "covers":  # a balance: room for two of the largest requests, or nothing left at all
            check, holds = replace(check, kind="num_range", lo=2 * (check.hi or 1) if holds else 0,
                                   hi=None if holds else 0), True
        kinds[f] = check.kind
        lo, hi = ranges.get(f, [None, None])
        step = 1 if check.kind == "date_range" else 1.0
        if holds:
            lo = check.lo if lo is None else (max(lo, check.lo) if check.lo is not None else lo)
            hi = check.hi if hi is None else (min(hi, check.hi) if check.hi is not None else hi)
        elif check.hi is not None:  # break the rule on the late/high side
            lo = check.hi + step if lo is None else max(lo, check.hi + step)
        elif check.lo is not None:
            hi = check.lo - step if hi is None else min(hi, check.lo - step)
        ranges[f] = [lo, hi]
    sets: dict[str, Any] = {}
    for f in sorted(set(must_in) | set(must_not)):
        pool = must_in.get(f, _domain_values(item, f))
        pool = [v for v in pool if v not in must_not.get(f, [])]
        if not pool:
            return None
        sets[f] = pool[0]
    for f, (lo, hi) in sorted(ranges.items()):
        if lo is not None and hi is not None and lo > hi:
            return None
        if kinds[f] == "date_range":
            if lo is not None and hi is not None:
                value = int((lo + hi) // 2)
            elif lo is not None:
                value = int(lo) + 7  # comfortably inside an open-ended window
            elif hi is not None:
                value = int(hi)
            else:
                continue
            sets[f] = {"days": value}
        else:
            if lo is not None and hi is not None:
                value = round((lo + hi) / 2, 2)
            else:
                value = lo if lo is not None else hi
            if value is None:
                continue
            attr = attribute(item, f)
            sets[f] = int(value) if attr is not None and attr.type == "int" else value
    return {"set": sets, "person": person}


def _row_cases(found: list[Check], subject: str) -> list[list[tuple[Check, bool]]]:
    """The happy case (every check of `subject` holds) and one case per check that breaks it
    while every earlier check of the same subject holds (so the error is that check's)."""
    mine = [c for c in found if c.subject == subject]
    cases = [[(c, True) for c in mine]]
    for i, c in enumerate(mine):
        cases.append([(p, True) for p in mine[:i]] + [(c, False)])
    return cases


def _role(domain: CatalogDomain) -> CatalogEntity:
    """The role table (profile attributes) seen as an entity, so `solve` can force its rows too."""
    return CatalogEntity(name=domain.role, description=domain.role, id_prefix="P", attributes=domain.role_attributes)


def _profiles(domain: CatalogDomain, found: list[Check]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A write tool's customer profiles: (the profile passing every check on who asks, or None when
    the tool has none; every profile the tool's cases need: that one, one per tier of a tier limit
    (within the others), one breaking each profile check while the earlier ones hold)."""
    member = [c for c in found if c.subject == "member"]
    tiers = list(dict.fromkeys(c.when for c in found if c.when is not None))
    if not member and not tiers:
        return None, []
    role = _role(domain)
    happy = [(c, True) for c in member]
    cases = [happy] + [happy + [(Check("tier", "member", "eq", attr, (value,)), True)] for attr, value in tiers]
    cases += [[(c, True) for c in member[:i]] + [(c, False)] for i, c in enumerate(member)]
    sets = [s["set"] for s in (solve(role, case) for case in cases) if s is not None and s["set"]]
    first = solve(role, happy)
    unique = {json.dumps(x, sort_keys=True): x for x in reversed(sets)}  # first occurrence wins, order kept
    return (first["set"] or None) if first else None, [unique[k] for k in dict.fromkeys(
        json.dumps(x, sort_keys=True) for x in sets)]


def data_scenarios(domain: CatalogDomain) -> dict[str, Any]:
    """Rows the database must contain so that every tool has a permitted case and every check a
    rejected one: {"entities": {table: [overrides]}, "records": {table: [scenario]},
    "quotas": {table: [{label, field, statuses, limit, member}]}, "profiles": [{set, kind}]}.

    A profile is a customer's forced profile row (role table) for the rules on who asks. "create"
    profiles belong to people who own no forced rows (so they stay below every limit and can book);
    "row" profiles own one permitted row of each such tool (scenario person "profile:<index>")."""
    ents: dict[str, list[dict[str, Any]]] = {snake(e.name): [] for e in domain.entities}
    recs: dict[str, list[dict[str, Any]]] = {snake(r.name): [] for r in domain.records}
    quotas: dict[str, list[dict[str, Any]]] = {snake(r.name): [] for r in domain.records}
    profiles: list[dict[str, Any]] = []

    def add(bucket: list[dict[str, Any]], scenario: dict[str, Any] | None) -> int | None:
        if scenario is None:
            return None
        if scenario not in bucket:
            bucket.append(scenario)
        return bucket.index(scenario)

    def add_target(target: CatalogEntity | CatalogRecord, overrides: dict[str, Any] | None) -> int | None:
        """A forced row of a target: an entity's overrides, or a (free person's) row of a target record."""
        if isinstance(target, CatalogRecord):
            return add(recs[snake(target.name)], None if overrides is None else {"set": overrides, "person": "free"})
        return add(ents[snake(target.name)], overrides)

    for tool in domain.tools:
        if tool.kind not in ("create", "set_status", "update", "pay"):
            continue
        item = find(domain, tool.entity or "")
        found = checks(domain, tool)
        happy, needed = _profiles(domain, found)
        kind = "create" if tool.kind == "create" else "row"
        mine = [add(profiles, {"set": p, "kind": kind}) for p in needed]
        who = f"profile:{mine[needed.index(happy)]}" if happy is not None and kind == "row" else None
        for c in found:
            if c.kind == "count_lt":
                # the person at the limit passes the tool's checks on who asks, so the limit is what refuses
                q = {"label": c.label, "field": c.field, "statuses": list(c.values), "limit": c.limit}
                q |= {"member": happy} if happy else {}
                if q not in quotas[c.table or ""]:
                    quotas[c.table or ""].append(q)
        target = find(domain, item.target) if isinstance(item, CatalogRecord) else None
        if target is not None and any(c.subject == "target" for c in found):
            for case in _row_cases(found, "target"):
                add_target(target, (solve(target, case) or {}).get("set"))
        if tool.kind == "create":
            continue
        row_cases = _row_cases(found, "row") + refund_cases(domain, tool, found)  # + a permitted row per refund tier
        happy_target = [(c, True) for c in found if c.subject == "target"]
        for n, case in enumerate(row_cases):
            scenario = solve(item, case)
            if scenario is None:
                continue
            if target is not None and happy_target:
                # tie the row to a target row for which the target checks hold
                scenario["target"] = add_target(target, (solve(target, happy_target) or {}).get("set"))
            if who and scenario["person"] == "free":  # its owner passes the checks on who asks
                scenario["person"] = who
            add(recs[snake(item.name)] if isinstance(item, CatalogRecord) else ents[snake(item.name)],
                scenario if isinstance(item, CatalogRecord) else scenario["set"])
            if n == 0 and isinstance(item, CatalogRecord):  # the permitted row, once per profile
                for k in mine:
                    add(recs[snake(item.name)], {**scenario, "person": f"profile:{k}"})
        for i, c in enumerate(t for t in found if t.subject == "target"):
            # the row is fine, its target breaks check c
            case = [(p, True) for p in found if p.subject == "target"][:i] + [(c, False)]
            bad = add_target(target, (solve(target, case) or {}).get("set")) if target else None
            base = solve(item, [(p, True) for p in found if p.subject == "row"])
            if bad is not None and base is not None and isinstance(item, CatalogRecord):
                add(recs[snake(item.name)], {**base, "target": bad, "person": who or base["person"]})
    for rec in domain.records:  # every status appears at least once
        for status in rec.statuses:
            add(recs[snake(rec.name)], {"set": {rec.status_field: status}, "person": "free"})
    return {"entities": ents, "records": recs, "quotas": quotas, "profiles": profiles}
