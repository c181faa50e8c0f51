"""Builtin refusal templates, balanced: every way a refused request can be reached (the record by its id or
as the only one in a status, after a question about its provider, after a compliant change; a new record
with a named provider, one found by a search, the provider of an earlier record, or none looked up) is
written, and the batch takes the shape (tool kinds in order) it has used least so far."""
from __future__ import annotations

from collections.abc import Callable

from skiller.world.builtin import taskchains as chains
from skiller.world.builtin.codegen import Check, checks, find, linked
from skiller.world.catalog.model import CatalogRecord
from skiller.world.builtin.taskparts import _Impossible, _T
from skiller.world.builtin.taskwrites import _Builder

__all__ = ["least_used", "refusal_for", "refusals_for_kinds", "with_compliant_part"]

Option = Callable[[], "_T | None"]


def _bad(b: _Builder, rule_id: str) -> Check | None:
    """The check a refusal of `rule_id` breaks (a tier rule: one tier, drawn)."""
    rule = next(r for r in b.d.rules if r.id == rule_id)
    tiers = [c for c in checks(b.d, b.d_tool(rule.tool)) if c.label == rule.id]
    return b.rng.choice(tiers) if len(tiers) > 1 else next(iter(tiers), None)


def _lists(bad: Check, sure: bool) -> tuple[bool, ...]:
    """Whether the customer's record may be found as their only one in a status: not when the refusal is about
    how many records the person holds (who is at the limit holds several in the counted statuses), nor, for a
    refusal that must find rows (`sure`) from one of few people, or on a row dated too soon (few rows are, and
    fewer still are their person's only one in a status)."""
    soon = bad.subject == "row" and bad.kind == "date_range"
    return (False,) if bad.subject == "person" or (sure and (_few(bad) or soon)) else (False, True)


def _few(bad: Check) -> bool:
    """The refusal needs one of few people (outside a tier, under a profile attribute): keep it simple."""
    return bad.subject == "member" or bad.when is not None


def _alone(b: _Builder, rule_id: str, bad: Check, sure: bool) -> list[Option]:
    """The refused request with nothing done before it."""
    tool = b.d_tool(next(r for r in b.d.rules if r.id == rule_id).tool)
    if tool.kind == "create":
        rec = find(b.d, tool.entity or "")
        # (a record naming another: the same one named again needs a person holding both, seldom in a small database)
        same = [] if sure and (_few(bad) or (isinstance(rec, CatalogRecord) and linked(b.d, rec))) else _lists(bad, sure)
        return [lambda: b.create(tool, bad), lambda: b.create(tool, bad, look=False),  # provider looked up, or not
                lambda: b.create(tool, bad, via_search=True) if bad.subject == "arg" else None,
                *[(lambda by_list=by_list: chains.refused_same_provider(b, tool, bad, by_list)) for by_list in same]]
    # by its id, or as "your only X in status S" (a status rule: S is the status that stops it)
    return [(lambda by_list=by_list, provider=provider: b.on_record(tool, bad, by_list=by_list, provider=provider))
            for by_list in _lists(bad, sure) for provider in (False, True)] + \
        ([lambda: b.on_record(tool, bad, by_list=True, provider=True, detail=True)] if True in _lists(bad, sure) else [])


def _mixed(b: _Builder, rule_id: str, bad: Check, sure: bool = False) -> list[Option]:
    """The refused request after a write the rules allow, in the same conversation."""
    tool = b.d_tool(next(r for r in b.d.rules if r.id == rule_id).tool)
    if sure and (bad.subject != "arg" or _few(bad)):  # a rule on the request holds for any row the write needs
        return []
    rec = find(b.d, tool.entity or "")
    if sure and tool.kind == "create" and isinstance(rec, CatalogRecord) and linked(b.d, rec):
        return []  # it would need a person holding two records: one to write on, one the new record names
    firsts = [f for f in b.d.tools if f.kind in ("pay", "update") and f is not tool]
    if tool.kind != "create":  # a compliant change to the same record first
        return [(lambda f=f, by_list=by_list: chains.act_then_refused(b, f, tool, bad, by_list))
                for f in firsts if f.entity == tool.entity for by_list in _lists(bad, sure)]
    return [(lambda f=f, by_list=by_list: chains.compliant_and_refused(b, f, tool, bad, by_list=by_list))
            for f in firsts for by_list in _lists(bad, sure)]


def _shape(b: _Builder, t: _T) -> str:
    """The template's pattern as the report counts it: its kind and the tool kinds of its golden calls."""
    return t.kind + ": " + " ".join(b.d_tool(name).kind for name, _ in t.calls[:len(t.calls) - t.evidence])


def shapes(b: _Builder, options: list[Option]) -> dict[str, _T]:
    """The templates the options write, one per shape (so a shape many options write is not drawn more often)."""
    out: dict[str, _T] = {}
    for option in options:
        try:
            t = option()
        except _Impossible:
            t = None
        if t is not None:
            out.setdefault(_shape(b, t), t)
    return out


def pick(b: _Builder, written: dict[str, _T], count: bool = True) -> _T | None:
    """The template whose shape the batch has used least (ties drawn); `count`: the choice is likely to be in
    the batch, so its shape counts as used."""
    if not written:
        return None
    fewest = min(b.used[s] for s in written)
    chosen = b.rng.choice(sorted(s for s in written if b.used[s] == fewest))
    b.used[chosen] += count
    return written[chosen]


def least_used(b: _Builder, options: list[Option], count: bool = True) -> _T | None:
    return pick(b, shapes(b, options), count)


def refusal_shapes(b: _Builder, rule_id: str, mixed: bool = True, sure: bool = False) -> dict[str, _T]:
    """Refusals of `rule_id`, alone or (when `mixed`) after a compliant write, one per shape; `sure`: it stands
    for its rule kind, so only shapes whose rows a small database has too."""
    bad = _bad(b, rule_id)
    if bad is None:
        return {}
    return shapes(b, _alone(b, rule_id, bad, sure) + (_mixed(b, rule_id, bad, sure) if mixed else []))


def refusals_for_kinds(b: _Builder, rule_ids: list[str]) -> list[_T | None]:
    """One sure refusal per rule (each standing for its kind), in the order given; the rules with the fewest
    shapes choose first, so those with many take the shapes the others could not."""
    written = [refusal_shapes(b, r, sure=True) for r in rule_ids]
    out: list[_T | None] = [None] * len(rule_ids)
    for i in sorted(range(len(rule_ids)), key=lambda i: len(written[i])):
        out[i] = pick(b, written[i])
    return out


def refusal_for(b: _Builder, rule_id: str, mixed: bool = True, count: bool = True) -> _T | None:
    """A refusal of `rule_id` in the least used shape."""
    return pick(b, refusal_shapes(b, rule_id, mixed), count)


def with_compliant_part(b: _Builder, rule_id: str, count: bool = True) -> _T | None:
    """The refusal of `rule_id` after a compliant write in the same conversation (None when it cannot be)."""
    bad = _bad(b, rule_id)
    return least_used(b, _mixed(b, rule_id, bad), count) if bad is not None else None
