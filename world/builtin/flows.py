"""Builtin cross-domain storylines: a record of one member flows (id, date, amount) into another member's call,
and refusals of the bridge rules that govern that hand-over (s11 for combinations joined by references)."""
from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from typing import Any

from skiller.contract.namespaces import namespace_of, rename_tables
from skiller.world.catalog.model import CatalogBridge, CatalogDomain, CatalogRecord, CatalogTool
from skiller.world.builtin import phrasing
from skiller.world.builtin.seeding import rng as _rng
from skiller.world.builtin.codegen import Check, checks, find, id_column, snake, words
from skiller.world.builtin.tasks import _Builder, _cond, _lower

__all__ = ["flow_templates"]


class _Skip(Exception):
    """This storyline cannot be written for the combination (a static condition fails, a tool is missing)."""


def _copies(bridges: list[CatalogBridge]) -> dict[str, str]:
    """Target argument -> source column that the hand-over passes unchanged (an amount, a date)."""
    out = {}
    for b in bridges:
        if b.kind == "not_above" or (b.kind == "date_after" and (b.min or 0) <= 0 <= (b.max or 0)):
            out[b.field] = b.source_field
    return out


def _holds(b: CatalogBridge, hold: bool) -> str:
    """SQL on the source row (alias r) under which bridge `b` holds (or fails) whatever the argument."""
    x = f"r.{b.source_field}"
    if b.kind == "source_status":
        marks = ", ".join(f"'{s}'" for s in b.statuses)
        return f"{x} {'IN' if hold else 'NOT IN'} ({marks})"
    inside = f"{x} BETWEEN <clock{int(b.min):+d}> AND <clock{int(b.max):+d}>"
    return f"{x} IS NOT NULL AND {'' if hold else 'NOT '}({inside})"


def _of_record(what: str, label: str) -> str:
    """'the first day of the lease' (a label naming its record), else "the appointment's amount due"."""
    return f"the {label}" if " of " in label else f"the {what}'s {label}"


def _static_ok(value: Any, c: Check) -> bool:
    """Whether a literal argument value passes an argument check (dates as `<clock+N>`)."""
    if c.kind == "date_range" and isinstance(value, str) and value.startswith("<clock"):
        n = int(value[6:-1])
        return (c.lo is None or n >= c.lo) and (c.hi is None or n <= c.hi)
    if c.kind == "num_range" and isinstance(value, (int, float)):
        return (c.lo is None or value >= c.lo) and (c.hi is None or value <= c.hi)
    return True


class _Story:
    """One fused template under construction over the fused database (prefixed tables)."""

    def __init__(self, combo: dict, tables: dict[str, list[str]], rng: random.Random, clock: str,
                 domains: Mapping[str, CatalogDomain]) -> None:
        self.combo, self.tables, self.rng, self.clock, self.domains = combo, tables, rng, clock, domains
        self.link0: dict = combo["links"][0]  # the hand-over from the root, the one refusals break
        self.forbidden: tuple[str, dict[str, Any]] | None = None
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.selectors: list[tuple[str, str]] = []
        self.src_conds: list[str] = []
        self.joins: list[str] = []
        self.known: dict[str, str] = {}
        self.says: list[str] = []
        self.communicate: list[str] = []

    def sql(self, member: str, text: str) -> str:
        return rename_tables(text, self.tables[member], namespace_of(member))

    def builder(self, member: str) -> _Builder:
        return _Builder(self.domains[member], self.rng, self.clock)

    def call(self, member: str, tool: str, args: dict[str, Any]) -> int:
        self.calls.append((namespace_of(member) + tool, args))
        return len(self.calls)

    # ------------------------------------------------------------ the root record (read, or moved by a write)
    def root(self, link: dict, moved_by: CatalogTool | None, profiles_first: bool = False) -> tuple[int, dict[str, Any]]:
        """Look the root record up (and move it by a write). Each service's policy asks for the person's identity
        before their data is read there: the root's profile first, and with `profiles_first` the first target's
        too (else `hand_over` looks it up just before the target's write)."""
        d = self.domains[link["source"]]
        rec = find(d, link["record"])
        get = next((t for t in d.tools if t.kind == "get" and t.entity == rec.name), None)
        if get is None or not isinstance(rec, CatalogRecord):
            raise _Skip(f"{d.name} cannot look up a {rec.name}")
        for domain in [d, self.domains[link["target"]]] if profiles_first else [d]:
            prof = next((x for x in domain.tools if x.kind == "get_profile"), None)
            if prof is not None:
                self.call(domain.name, prof.name, {"person_id": "<src.person_id>"})
        key = id_column(rec.name)
        k = self.call(d.name, get.name, {key: f"<src.{key}>"})
        state: dict[str, Any] = {}
        if moved_by is not None:
            b = self.builder(d.name)
            row, tconds, _ = b.conds(moved_by)
            if tconds:
                raise _Skip("a status change that reads its target")
            self.src_conds += [self.sql(d.name, c) for c in row]
            k = self.call(d.name, moved_by.name, {key: f"<out{k}.{key}>"})
            state[rec.status_field] = moved_by.to
        self.known |= {"person id": "<src.person_id>", "full name": "<src.first_name> <src.last_name>",
                       f"{words(rec.name)} id": f"<src.{key}>"}
        return k, state

    # ------------------------------------------------------------ one hand-over into a target's create
    def hand_over(self, link: dict, source_out: int, state: dict[str, Any], origin: dict[str, str] | None,
                  refuse: CatalogBridge | None = None, profile: bool = True) -> int | None:
        """Call the target's create with the source record's id (and its amount or date). `origin` maps the
        source row's columns to SQL on the root row (None: the source row is the root row itself).
        With `refuse`, the create is the forbidden call breaking that bridge rule; returns its index or None."""
        t = self.domains[link["target"]]
        tool = next(x for x in t.tools if x.name == link["tool"])
        rec = find(t, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        bridges = [b for b in t.bridges if b.tool == tool.name and b.ref == link["field"]]
        copies = _copies(bridges)
        b = self.builder(t.name)
        own = checks(t, tool)
        for bridge in bridges:
            self._source_condition(bridge, bridge is not refuse, state, origin)
        _, tconds, pconds = b.conds(tool)
        self.src_conds += [self.sql(t.name, c) for c in pconds]  # the person (alias p) may take the new row
        role = namespace_of(t.name) + snake(t.role)
        alias = f"m{len(self.joins)}"
        self.joins.append(f"JOIN {role} {alias} ON {alias}.person_id = r.person_id")
        target = find(t, rec.target)
        tkey, slot = id_column(target.name), f"t{len(self.selectors) + 1}"
        self.selectors.append((slot, self.sql(t.name, b.ent_sql(target, tconds))))
        args: dict[str, Any] = {"person_id": f"<out{source_out}.person_id>", tkey: f"<{slot}.{tkey}>",
                                link["field"]: f"<out{source_out}.{id_column(link['record'])}>"}
        free = [f for f in tool.fields if f != link["field"] and f not in copies]
        args |= b.args(tool, rec, free, None)
        for field, column in copies.items():
            args[field] = f"<out{source_out}.{column}>"
            if refuse is not None and refuse.field == field:
                continue  # replaced by a value breaking the rule below
            for c in own:  # the target's own rule on the copied value must hold for the source's value
                if c.subject == "arg" and c.field == field:
                    self._value_condition(dataclasses.replace(c, field=column), state, origin)
        if refuse is not None and refuse.kind in ("not_above", "date_after"):
            args[refuse.field] = self._breaking_value(t, tool, refuse, state, origin)
        stated = free + ([refuse.field] if refuse is not None and refuse.field in copies else [])
        text, known = b.arg_text(rec, {k: v for k, v in args.items() if k in stated})
        if profile:
            prof = next((x for x in t.tools if x.kind == "get_profile"), None)
            if prof is not None:
                self.call(t.name, prof.name, {"person_id": f"<out{source_out}.person_id>"})
        twhat, lab = words(target.name), next((a for a in target.attributes if a.gen.get("pick") in
                                                ("person_name", "company")), None)
        self.known[f"{t.name} {twhat} id"] = f"<{slot}.{tkey}>"
        self.known |= known
        what = words(link["record"])
        # what the request takes from the record, said before the colon so the customer's first words carry it
        # ('..., using the first day of the lease as the day of the move'): the assistant fills them from that record
        passes = " and ".join(f"{_of_record(what, _lower(self._desc(link, c)))} as the "
                              + _lower(next((a.description for a in rec.attributes if a.name == f), words(f)))
                              for f, c in copies.items() if not (refuse is not None and refuse.field == f))
        self.says.append(f"With {t.name}, you want to {_lower(tool.description.rstrip('.'))}"
                         + (f", using {passes}" if passes else "") + f": {twhat} <{slot}.{tkey}>"
                         + (f" (<{slot}.{lab.name}>)" if lab else "") + f", naming that {what}"
                         + (f"; {text}" if text else "") + ".")
        if refuse is not None:
            self.forbidden = (namespace_of(t.name) + tool.name, args)
            return None
        return self.call(t.name, tool.name, args)

    def _desc(self, link: dict, column: str) -> str:
        rec = find(self.domains[link["source"]], link["record"])
        return next((a.description for a in rec.attributes if a.name == column), words(column))

    def _source_condition(self, b: CatalogBridge, hold: bool, state: dict[str, Any], origin: dict[str, str] | None):
        if b.kind in ("not_above", "date_after"):
            return  # about the argument: holds by passing the source's value, broken by _breaking_value
        if b.source_field in state:  # a value the storyline set (a status after a write): known statically
            value = state[b.source_field]
            ok = value in b.statuses if b.kind == "source_status" else True
            if ok != hold:
                raise _Skip(f"{b.id} cannot {'hold' if hold else 'fail'} after the write")
            return
        if origin is not None:
            if b.source_field not in origin:
                raise _Skip(f"{b.id} reads a column the storyline does not pass on")
            self.src_conds.append(_holds(b, hold).replace(f"r.{b.source_field}", origin[b.source_field]))
            return
        self.src_conds.append(_holds(b, hold))

    def _value_condition(self, c: Check, state: dict[str, Any], origin: dict[str, str] | None) -> None:
        if c.field in state:
            if not _static_ok(state[c.field], c):
                raise _Skip(f"{c.label} fails on a passed value")
            return
        cond = _cond(c, True, "r")
        if origin is not None:
            if c.field not in origin:
                raise _Skip(f"{c.label} reads a column the storyline does not pass on")
            cond = cond.replace(f"r.{c.field}", origin[c.field])
        self.src_conds.append(cond)

    def _breaking_value(self, t: CatalogDomain, tool: CatalogTool, b: CatalogBridge, state, origin) -> Any:
        """A value of argument `b.field` that passes the target's own rules but breaks bridge `b`."""
        if origin is not None:
            raise _Skip("refusals are written on the root's record")
        own = next((c for c in checks(t, tool) if c.subject == "arg" and c.field == b.field), None)
        if b.kind == "not_above":
            attr = next(a for a in find(self.domains[self.combo["members"][0]], self.link0["record"]).attributes
                        if a.name == b.source_field)
            lo, hi = (attr.gen.get("money") or attr.gen.get("int") or [0, 100])
            top = min(hi, own.hi) if own is not None and own.hi is not None else hi
            value = math.floor((lo + top) / 2)
            if own is not None and own.lo is not None and value < own.lo:
                raise _Skip(f"{b.id} cannot be broken within {own.label}")
            self.src_conds.append(f"r.{b.source_field} < {value}")
            return float(value) if "money" in attr.gen else int(value)
        lo = int(own.lo) if own is not None and own.lo is not None else 1
        hi = int(own.hi) if own is not None and own.hi is not None else lo + 30
        n = self.rng.randint(lo, min(hi, lo + 20))
        self.src_conds.append(f"r.{b.source_field} IS NOT NULL AND (r.{b.source_field} < <clock{n - int(b.max):+d}> "
                              f"OR r.{b.source_field} > <clock{n - int(b.min):+d}>)")
        return f"<clock{n:+d}>"

    # ------------------------------------------------------------ the template
    def template(self, kind: str, root_domain: str, record: str, lead: str, reason: str, rule: str | None = None,
                 communicate: list[str] | None = None) -> dict[str, Any]:
        rec = find(self.domains[root_domain], record)
        table = namespace_of(root_domain) + snake(rec.name)
        key = id_column(rec.name)
        a, m = self.rng.choice([7, 11, 13, 17, 19, 23]), self.rng.choice([29, 31, 37, 41, 43])
        src_sql = (f"SELECT r.*, p.first_name, p.last_name FROM {table} r JOIN person p ON p.person_id = r.person_id "
                   + " ".join(self.joins) + " WHERE " + " AND ".join(self.src_conds or ["1 = 1"])
                   + f" /*relax*/ORDER BY (CAST(substr(r.{key}, -4) AS INTEGER) * {a}) % {m}, r.{key}/*end*/")
        forbidden = self.forbidden
        return {
            "kind": kind, "trajectory": [{"tool": t, "arguments": args} for t, args in self.calls],
            "forbidden": {"tool": forbidden[0], "arguments": forbidden[1]} if forbidden else None,
            "violated_rule": rule, "instruction": " ".join([lead, *self.says]),
            "reason_for_call": reason, "known_info": dict(self.known),
            "unknown_info": f"You do not know the {words(record)}'s details by heart; the assistant can look them up.",
            "selectors": [{"slot": "src", "sql": src_sql}] + [{"slot": s, "sql": q} for s, q in self.selectors],
            "communicate": communicate or [], "domains": list(self.combo["members"]), "is_cross_domain": True,
        }


def _story(combo: dict, tables: dict[str, list[str]], rng: random.Random, clock: str, moved: bool,
           refuse: CatalogBridge | None, profile: bool, domains: Mapping[str, CatalogDomain]) -> dict[str, Any]:
    links = combo["links"]
    first = links[0]
    root = domains[first["source"]]
    rec = find(root, first["record"])
    s = _Story(combo, tables, rng, clock, domains)
    moved_by = None
    if moved:
        wanted = {st for b in domains[first["target"]].bridges if b.kind == "source_status"
                  and b.tool == first["tool"] for st in b.statuses}
        moved_by = next((t for t in root.tools if t.kind == "set_status" and t.entity == rec.name and t.to in wanted),
                        None)
        if moved_by is None:
            raise _Skip("no status change of the root record satisfies the hand-over")
    out, state = s.root(first, moved_by, profiles_first=not profile)
    what = words(rec.name)
    have = f"At {root.name} you have {phrasing.article(what)} <src.{id_column(rec.name)}>"
    first_move = f" First you want to {_lower(moved_by.description.rstrip('.'))} there." if moved_by else ""
    lead = f"{have}.{first_move}"
    produced: dict[str, tuple[int, dict[str, str] | None, dict[str, Any]]] = {root.name: (out, None, state)}
    for i, link in enumerate(links):
        if refuse is not None and i > 0:
            break
        src_out, origin, src_state = produced[link["source"]]
        made = s.hand_over(link, src_out, src_state, origin, refuse if i == 0 else None, profile=profile or i > 0)
        if made is not None:
            # what the created row passes on: its arguments (by the root columns they came from) and defaults
            created_args = s.calls[made - 1][1]
            t = domains[link["target"]]
            tool = next(x for x in t.tools if x.name == link["tool"])
            t_rec = find(t, tool.entity or "")
            new_origin: dict[str, str] = {}
            new_state: dict[str, Any] = dict(tool.defaults)
            new_state.setdefault(t_rec.status_field, t_rec.statuses[0])
            for name, value in created_args.items():
                if isinstance(value, str) and value.startswith(f"<out{src_out}."):
                    column = value[len(f"<out{src_out}."):-1]
                    new_origin[name] = (origin or {}).get(column, f"r.{column}")
                else:
                    new_state[name] = value
            produced[link["target"]] = (made, new_origin, new_state)
    if refuse is not None:
        src = f"<out{out}.{refuse.source_field}>"
        return s.template("refusal", root.name, rec.name, lead,
                          f"You want to use your {what} from {root.name} with {first['target']}.",
                          rule=refuse.id, communicate=[src])
    targets = " and ".join(l["target"] for l in links)
    t_last = domains[links[-1]["target"]]
    t_rec = find(t_last, next(x for x in t_last.tools if x.name == links[-1]["tool"]).entity or "")
    comm = [f"<out{len(s.calls)}.{id_column(t_rec.name)}>"]
    said = next((x for x in map(phrasing.situation, t_last.personas_hint) if x), None)
    # the hand-over is said once, in the goal ('At PropertyRental you have a lease, and PowerUtility needs it'); the
    # reason is the customer's own situation, or without one, the hand-over as a wish
    lead = f"{have}, and {targets} need{'s' if len(links) == 1 else ''} it.{first_move}"
    return s.template("write", root.name, rec.name, lead,
                      f"{said}." if said else f"You want to use your {what} from {root.name} with {targets}.",
                      communicate=comm)


def flow_templates(combo: dict, tables: dict[str, list[str]], seed: int, count: int, clock: str,
                   domains: Mapping[str, CatalogDomain]) -> list[dict[str, Any]]:
    """Up to `count` templates: storylines passing the root record on (read, or moved by a write first, the
    target's profile looked up just before its write or with the root's at the start), then refusals of the first hand-over's bridge rules. `domains`
    holds each member's domain (with its bridge rules), from the catalog or as a request states it."""
    rng = _rng(seed, combo["name"], "flows")
    first = combo["links"][0]
    bridges = [b for b in domains[first["target"]].bridges if b.tool == first["tool"] and b.ref == first["field"]]
    rng.shuffle(bridges)
    # (moved by a write first, refused rule, look the target's profile up just before its write, variant)
    plans = [(False, None, True, 0), (True, None, True, 0), (False, None, False, 0), (True, None, False, 0),
             (False, None, True, 1)]
    refusals = [(False, b, True, 0) for b in bridges]
    n_refuse = max(1, count // 4)
    writes, refused = [], []
    for moved, refuse, profile, variant in plans + refusals:
        try:
            t = _story(combo, tables, _rng(seed, combo["name"], moved, refuse.id if refuse else "", profile, variant),
                       clock, moved, refuse, profile, domains)
        except _Skip:
            continue
        if t not in writes + refused:
            (refused if refuse else writes).append(t)
    picked = refused[:n_refuse]
    picked = writes[:count - len(picked)] + picked
    return picked + refused[n_refuse:count - len(picked) + n_refuse] if len(picked) < count else picked
