"""The pieces chained templates share: finding the record, the new record's call, its fee, who acts."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from skiller.world.catalog.model import CatalogRecord, CatalogTool
from skiller.world.builtin.codegen import (PAYMENT_METHODS, checks, fee_check, find, owned, pay_field,
                                            snake, words)
from skiller.world.builtin.taskparts import FEE_TOLD, _changing, _cond, _lower, _told_back
from skiller.world.builtin.refunds import refund_told
from skiller.world.builtin.taskwrites import _Builder
from skiller.contract.dialogue import is_clause
from skiller.contract.placeholders import sql_literal

Call = tuple[str, dict[str, Any]]


def _on_record(b: _Builder, tool: CatalogTool, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A write on the task person's own record; an ownership rule makes the tool take who acts as well."""
    return tool.name, {**args, **({"person_id": "<rec.person_id>"} if owned(b.d, tool) else {})}

def _fee(b: _Builder, create: CatalogTool, at: int) -> tuple[list[str], str]:
    """A create with a computed fee tells it back: (what to communicate, the words asking for it)."""
    return _told_back(FEE_TOLD if fee_check(b.d, create) is not None else None, at)


def _refund(b: _Builder, tool: CatalogTool, at: int) -> tuple[list[str], str]:
    """A cancel with a refund schedule tells the refund back: (what to communicate, the words asking for it)."""
    return _told_back(refund_told(b.d, tool), at)


def _desc(tool: CatalogTool) -> str:
    return _lower(tool.description.rstrip("."))


_PREPOSITIONS = {"of", "for", "to", "in", "at", "on", "by", "with", "from", "into"}


def _of(label: str, whose: str) -> str:
    """A record's fact named for one of two records, kept short: 'day of the first visit' (not 'day of the visit
    of the first visit'), 'vet visit for the first stay' (not 'vet visit where the pet was vaccinated of the
    first stay'), 'why the team visits, for the first visit'; else 'number of nights of the first stay'."""
    tail = re.match(r"^(.+) of the (\w+)$", label)  # 'day of the visit' for 'the first (service) visit'
    if tail and whose.endswith(f" {tail.group(2)}"):
        return f"{tail.group(1)} of {whose}"
    if is_clause(label):
        return f"{label}, for {whose}"
    words_ = label.split(" ")
    cut = next((i for i, w in enumerate(words_) if i and w in ("where", "which", "that", "who", "whose", "the")
                and words_[i - 1] not in _PREPOSITIONS), None)
    if cut is not None:  # a relative clause: the noun it describes says enough once the record is named
        return f"{' '.join(words_[:cut])} for {whose}" if cut >= 2 else f"{label}, for {whose}"
    return f"{label} of {whose}"


def _facts_of(facts: dict[str, str], whose: str) -> dict[str, str]:
    """`facts` named for `whose` by `_of`, each in full where two short names would be the same."""
    short = {k: _of(k, whose) for k in facts}
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {(f"{k} of {whose}" if short[k] in clash else short[k]): v for k, v in facts.items()}


def _ends(tool: CatalogTool) -> bool:
    """Whether a status change ends the record (a cancellation, a withdrawal): a new one comes 'instead'."""
    return any(w in f"{tool.name} {tool.to or ''}" for w in ("cancel", "withdraw", "terminat", "close", "end_"))


def _target_read(b: _Builder, rec: CatalogRecord, ref: str) -> list[Call]:
    get = b.tool("get", rec.target)
    return [(get.name, {b.key_of(find(b.d, rec.target)): ref})] if get else []


def _new_record(b: _Builder, create: CatalogTool, rec: CatalogRecord, slot: str, tref: str) -> tuple[Call, str, dict]:
    """The create call for the person in `slot` on target `tref`, its wording and the facts it needs."""
    args = b.args(create, rec, list(create.fields), None)
    text, known = b.arg_text(rec, args)
    tkey = b.key_of(find(b.d, rec.target))
    return (create.name, {"person_id": f"<{slot}.person_id>", tkey: tref, **args}), text, known


def _find(b: _Builder, rec: CatalogRecord, by_list: bool) -> tuple[list[Call], str, str, dict[str, str], list[str]] | None:
    """How the assistant finds the customer's record: by its id (get), or as their only one in a status (list).
    Returns (profile and read calls, the record's id as later calls name it, its wording, facts, row conditions)."""
    key, what = b.key_of(rec), words(rec.name)
    if by_list:
        found = b.listed(rec)
        if found is None or b.profile is None:
            return None
        calls = b.profile_call("rec") + [found]
        facts = {f"{what} status": "<rec.status>"}
        date = b.date_attr(rec)
        if date:
            facts[_lower(date.description)] = f"<rec.{date.name}>"
        return (calls, f"<out{len(calls)}.{key}>", f"your only {what} in status <rec.status>{b.dated(rec)}", facts,
                [b.unique_status(rec)])
    get = b.tool("get", rec.name)
    if get is None:
        return None
    return (b.profile_call("rec") + [(get.name, {key: f"<rec.{key}>"})], f"<rec.{key}>",
            f"your {what} <rec.{key}>{b.dated(rec)}", {f"{what} id": f"<rec.{key}>"}, [])


def _person_conds(b: _Builder, create: CatalogTool, room: int, rec: CatalogRecord | None = None,
                  moved_to: str | None = None) -> list[str] | None:
    """The create's checks on who asks (person p, profile m), with `room` new rows still under every count
    limit. With `rec` (the selected row r) the count leaves r out and counts it as `moved_to` instead (a
    replacement: the cancelled record no longer counts). None when no person can have that room."""
    out: list[str] = []
    for c in checks(b.d, create):
        if c.subject == "member":  # a balance covers every new row
            b.member(create, [], out, _cond(replace(c, hi=(c.hi or 1) * room) if c.kind == "covers" else c, True, "m"))
        elif c.subject == "person" and c.kind == "count_lt" and c.limit is not None:
            made = c.table == snake(find(b.d, create.entity or "").name)  # the new rows count here
            mine = rec is not None and c.table == snake(rec.name)
            limit = c.limit - (room - 1 if made else 0) - int(mine and moved_to in c.values)
            if limit <= 0:
                return None
            marks = ", ".join(sql_literal(v) for v in c.values)
            other = f" AND o.{c.key} <> r.{c.key}" if mine else ""
            out.append(f"(SELECT COUNT(*) FROM {c.table} o WHERE o.person_id = p.person_id AND o.{c.field} IN ({marks})"
                       f"{other}) < {limit}")
        elif c.subject == "person":
            out.append(_cond(c, True, "p"))
    return out


def _effect(tool: CatalogTool, rec: CatalogRecord, args: dict[str, Any]) -> dict[str, Any]:
    """Column values a write leaves on its row (as far as known statically)."""
    if tool.kind == "set_status":
        return {rec.status_field: tool.to}
    if tool.kind == "pay":
        return {pay_field(tool): tool.to}
    return dict(args)


def _step_args(b: _Builder, tool: CatalogTool, rec: CatalogRecord) -> tuple[dict[str, Any], str]:
    if tool.kind == "update":
        args = b.args(tool, rec, [b.rng.choice(tool.fields)], None)
        return args, ", ".join(_changing(k, v) for k, v in b.arg_text(rec, args)[1].items())
    if tool.kind == "pay":
        method = b.rng.choice(PAYMENT_METHODS)
        return {"payment_method": method}, f"paying by {method.replace('_', ' ')}"
    return {}, ""
