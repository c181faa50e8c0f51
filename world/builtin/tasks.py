"""Builtin answers for the task steps: s14 templates (which templates, in which order), s15 re-plan, s17
persona and first query. The templates themselves are written by the builder (taskbase, taskreads, taskwrites)."""
from __future__ import annotations

import re
from typing import Any

from skiller.world.catalog import get_domain
from skiller.world.catalog.model import CatalogDomain, CatalogRecord
from skiller.world.builtin import phrasing
from skiller.world.builtin import shaped_tasks
from skiller.world.builtin import taskchains as chains
from skiller.world.builtin.codegen import checks, find
from skiller.world.builtin.registry import answers
from skiller.world.builtin.taskjudge import judge_template
from skiller.world.builtin.taskparts import _cond, _lower, _rng, _T
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
    by_kind: dict[str, list[str]] = {}
    for r in d.rules:
        by_kind.setdefault(r.kind, []).append(r.id)
    for ids in by_kind.values():
        first = rng.choice(ids)
        mixed = _with_compliant_part(b, first) if rng.random() < 0.85 else None
        if mixed is not None:
            mixed.group = "refusal"  # it stands for its rule kind among the core refusals
        core.append(mixed or b.refusal(first))
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
    core += shaped_tasks.shaped_templates(b, _T)  # summary and browse tools (skiller.world.builtin.shaped_tasks)
    lists = [t for t in d.tools if t.kind == "list_records"]
    if lists:  # at least one multi-step read among the core
        core.append(b.read_chain(rng.choice(lists)))
    chained = _chains(b)
    return core + chained[:CHAINS], extra + chained[CHAINS:]


def _with_compliant_part(b: _Builder, rule_id: str) -> _T | None:
    """The refusal of `rule_id` after a compliant write in the same conversation (None when it cannot be)."""
    rule = next(r for r in b.d.rules if r.id == rule_id)
    tool = b.d_tool(rule.tool)
    tiers = [c for c in checks(b.d, tool) if c.label == rule.id]  # a tier rule: one check per tier
    bad = b.rng.choice(tiers) if len(tiers) > 1 else next(iter(tiers), None)
    payable = [t for t in b.d.tools if t.kind in ("pay", "update")]
    if tool.kind != "create" or bad is None or bad.subject not in ("arg", "target") or not payable:
        return None
    return chains.compliant_and_refused(b, b.rng.choice(payable), tool, bad, by_list=b.rng.random() < 0.4)


CHAINS = 10  # chained templates among the core of a domain's batch (the rest add variety)


def _chains(b: _Builder) -> list[_T]:
    """Every chained template of the domain, round-robin over their kinds (replacements, double bookings,
    two acts on one record, compliant writes followed by a refused request), each kind shuffled."""
    d, rng = b.d, b.rng
    writes = [t for t in d.tools if t.kind in ("set_status", "update", "pay")]
    creates = [t for t in d.tools if t.kind == "create"]
    kinds: list[list[_T | None]] = [
        [chains.replace(b, t, c, by_list=rng.random() < 0.4, provider=rng.random() < 0.6) for c in creates for t in writes
         if t.kind == "set_status" and t.entity == c.entity],
        [chains.book_two(b, c) for c in creates],
        [chains.act_twice(b, x, y, by_list=rng.random() < 0.4) for x in writes for y in writes if x.entity == y.entity],
        [],
    ]
    kinds[3] += [_with_compliant_part(b, rule.id) for rule in d.rules]
    pools = [[t for t in ts if t] for ts in kinds]
    for p in pools:
        rng.shuffle(p)
    out: list[_T] = []
    while any(pools):
        out += [p.pop(0) for p in pools if p]
    return out


def _interleave(items: list[_T]) -> list[_T]:
    """Round-robin over groups so that any prefix of the batch mixes refusals, writes and reads."""
    groups: dict[str, list[_T]] = {}
    for t in items:
        groups.setdefault(t.group, []).append(t)
    out: list[_T] = []
    while any(groups.values()):
        for g in ("refusal", "chain", "multi", "refusal", "write", "chain", "read"):
            if groups.get(g):
                out.append(groups[g].pop(0))
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
