"""Builtin answers for the task steps: s14 templates (which templates, in which order), s15 re-plan, s17
persona and first query. The templates themselves are written by the builder (taskbase, taskreads, taskwrites)."""
from __future__ import annotations

import re
from typing import Any

from skiller.world.catalog import get_domain
from skiller.world.catalog.model import CatalogDomain, CatalogRecord
from skiller.world.builtin import phrasing
from skiller.world.builtin import lineitems_tasks, shaped_tasks
from skiller.world.builtin import taskchains as chains
from skiller.world.builtin.codegen import find
from skiller.world.builtin.refunds import refund_rule
from skiller.world.builtin.registry import answers
from skiller.world.builtin.taskjudge import judge_template
from skiller.world.builtin.seeding import rng as _rng
from skiller.world.builtin.taskparts import _cond, _lower, _T
from skiller.world.builtin.taskrefusals import (least_used, refusal_for, refusal_shapes, refusals_for_kinds,
                                                 with_compliant_part)
from skiller.world.builtin.taskwrites import _Builder
from skiller.llm.interface import LLMRequest

__all__ = ["_Builder", "_cond", "_lower", "judge_template", "relax_sql", "templates_for"]

RELAX = re.compile(r"\s*/\*relax\*/.*?/\*end\*/", re.S)


# ---------------------------------------------------------------- s14.templates
def _candidates(b: _Builder) -> tuple[list[_T | None], list[_T | None]]:
    """(core, extra): core covers one refusal per rule kind and every tool; extra adds variety."""
    d, rng = b.d, b.rng
    core: list[_T | None] = []
    extra: list[_T | None] = []
    later: list[str] = []  # rules refused after those standing for their kind (past the usual batch)
    by_kind: dict[str, list[str]] = {}
    for r in d.rules:
        by_kind.setdefault(r.kind, []).append(r.id)
    # the rule standing for a kind is drawn among those a refusal can reach in several shapes (when some can):
    # kinds whose rules have one or two shapes would otherwise crowd the same few
    reach = {i: len(refusal_shapes(b, i, sure=True)) for ids in by_kind.values() for i in ids}
    firsts = [rng.choice([i for i in ids if reach[i] >= min(3, max(reach[j] for j in ids))])
              for ids in by_kind.values()]
    for kind in refusals_for_kinds(b, firsts):
        if kind is not None:
            kind.group = "kind"  # it stands for its rule kind: early in the batch (see _interleave)
        core.append(kind)
    later += [i for ids in by_kind.values() for i in ids if i not in firsts]
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
            core.append(made := b.create(t))
            if made is not None and any("ref" in a.gen for a in find(d, t.entity).attributes if a.name in t.fields):
                made.group = "handover"  # takes another service's record: first in the batch, a fusion needs it
            extra += [b.create(t, via_search=True), b.create(t, then=pays[t.entity]) if t.entity in pays else None]
        elif t.kind in ("set_status", "update", "pay"):  # found by id or by list, its provider asked about or not
            core.append(least_used(b, [lambda t=t, by_list=by_list, provider=provider: b.on_record(
                t, by_list=by_list, provider=provider) for by_list in (False, True) for provider in (False, True)]))
            extra.append(b.on_record(t, by_list=rng.random() < 0.5))
            if (refund := refund_rule(d, t)) is not None:  # a cancel in each refund tier
                extra += [b.on_record(t, by_list=rng.random() < 0.5, tier=k) for k in range(len(refund.limits))]
            if t.kind == "set_status" and t.entity in pays:
                extra.append(b.on_record(t, then=pays[t.entity]))
    core += shaped_tasks.shaped_templates(b, _T)  # summary and browse tools (skiller.world.builtin.shaped_tasks)
    lined, more = lineitems_tasks.line_templates(b, _T)  # orders with several lines (builtin.lineitems_tasks)
    core += lined
    extra += more
    lists = [t for t in d.tools if t.kind == "list_records"]
    if lists:  # at least one multi-step read among the core
        core.append(b.read_chain(rng.choice(lists)))
    doubles, mixed = _chains(b)
    extra += [refusal_for(b, i, mixed=False, count=False) for i in later]
    return core + doubles[:CHAINS] + mixed[:MIXED], extra + doubles[CHAINS:] + mixed[MIXED:]


CHAINS, MIXED = 10, 1  # chained templates (two writes or more; a compliant write then a refusal) in the core


def _chains(b: _Builder) -> tuple[list[_T], list[_T]]:
    """Every chained template of the domain: those with two writes or more round-robin over their kinds
    (replacements, double bookings, two acts on one record), and compliant writes followed by a refused
    request; each kind shuffled."""
    d, rng = b.d, b.rng
    writes = [t for t in d.tools if t.kind in ("set_status", "update", "pay")]
    creates = [t for t in d.tools if t.kind == "create"]
    kinds: list[list[_T | None]] = [
        [least_used(b, [lambda t=t, c=c, by_list=by_list, provider=provider: chains.replace(
            b, t, c, by_list=by_list, provider=provider) for by_list in (False, True) for provider in (False, True)])
         for c in creates for t in writes if t.kind == "set_status" and t.entity == c.entity],
        [chains.book_two(b, c) for c in creates],
        [least_used(b, [lambda x=x, y=y, by_list=by_list: chains.act_twice(b, x, y, by_list=by_list)
                        for by_list in (False, True)]) for x in writes for y in writes if x.entity == y.entity],
    ]
    pools = [[t for t in ts if t] for ts in kinds]
    for p in pools:
        rng.shuffle(p)
    rules = list(d.rules)
    rng.shuffle(rules)
    mixed: list[_T] = []
    for rule in rules:  # the first few are in the core: their shapes count
        t = with_compliant_part(b, rule.id, count=len(mixed) < MIXED)
        mixed += [t] if t else []
    out: list[_T] = []
    while any(pools):
        out += [p.pop(0) for p in pools if p]
    return out, mixed


# one round of the batch: chains (two writes or more) and refusals (alone, or after a compliant change: mixed)
ORDER = ("chain", "read", "multi", "chain", "refusal", "write", "mixed", "chain", "refusal")


def _tools_of(t: _T) -> set[str]:
    return {name for name, _ in t.calls} | ({t.forbidden[0]} if t.forbidden else set())


def _interleave(items: list[_T], count: int) -> list[_T]:
    """Round-robin over groups so that any prefix of the batch mixes refusals, writes and reads; within a
    group, a template using a tool the batch has not used yet goes first (the batch covers the tools). The
    refusal standing for each rule kind takes every third place from the start (closer when many kinds would
    not fit in `count` so), so a batch covers every kind."""
    groups: dict[str, list[_T]] = {}
    for t in items:
        groups.setdefault(t.group, []).append(t)
    kinds = groups.pop("handover", []) + groups.pop("kind", [])
    covered = set().union(*(_tools_of(t) for t in kinds))
    rest: list[_T] = []
    while any(groups.values()):
        for g in ORDER:
            if groups.get(g):
                i = next((i for i, t in enumerate(groups[g]) if _tools_of(t) - covered), 0)
                rest.append(groups[g].pop(i))
                covered |= _tools_of(rest[-1])
    step = max(1, min(2, (count - 1) // max(1, len(kinds) - 1) - 1))  # other templates between two kinds
    out: list[_T] = []
    while kinds or rest:
        out += kinds[:1] + rest[:step]
        kinds, rest = kinds[1:], rest[step:]
        if not kinds:
            out += rest
            break
    return out


def templates_for(domain: CatalogDomain, count: int, seed: int, min_length: int = 1, max_length: int = 5,
                  clock: str = "2026-03-02", refs: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Up to `count` diverse templates of `domain` (same arguments, same answer); `refs` gives the id prefix of
    records other services keep ("Domain.Record" -> prefix), else the catalog is asked."""
    b = _Builder(domain, _rng(seed, domain.name, count, "s14"), clock, refs)
    core, extra = _candidates(b)
    seen: set[str] = set()
    ordered: list[_T] = []
    fillers = [t for t in domain.tools if t.kind in ("get", "search", "get_profile", "list_records")]
    pool = _interleave([t for t in core if t], count) + _interleave([t for t in extra if t], count)
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
        sig = repr((t.calls, t.instruction, t.forbidden, t.rule))  # two rules refused alike are two tasks
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
