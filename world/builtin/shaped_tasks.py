"""Builtin s14 templates for the catalog's richer shapes: aggregate reads (summary), cheapest-first
searches (browse) and creates that take the cheapest match a browse returned (a value passed on)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skiller.world.builtin import phrasing
from skiller.world.builtin.codegen import browse_ceiling, checks, find, id_column, linked, snake, words
from skiller.world.catalog.model import CatalogRecord, CatalogTool
from skiller.contract.placeholders import sql_literal

__all__ = ["linked_conds", "shaped_templates"]

# The builder (skiller.world.builtin.tasks._Builder) and the template type (_T) come in as arguments:
# tasks.py calls this module, so importing it back would be a cycle.
Builder = Any
Make = Callable[..., Any]


def _lower(text: str) -> str:
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def linked_conds(b: Builder, tool: CatalogTool, pconds: list[str], tconds: list[str]) -> None:
    """A create naming another record takes one of the person's own: the person selector asks for a
    person holding such a record, the target selector for one of theirs (aliases p and t)."""
    rec = find(b.d, tool.entity or "")
    if not isinstance(rec, CatalogRecord) or not linked(b.d, rec):
        return
    target = find(b.d, rec.target)
    owned = " AND ".join(["t.person_id = p.person_id", *tconds])
    pconds.append(f"EXISTS (SELECT 1 FROM {snake(target.name)} t WHERE {owned})")
    tconds.append("t.person_id = <person.person_id>")


def summary_read(b: Builder, make: Make, tool: CatalogTool) -> Any:
    """profile -> summary of the person's records in one status: the count and the total to communicate."""
    rec = find(b.d, tool.entity or "")
    if not isinstance(rec, CatalogRecord) or rec.status_field != "status":
        return None
    what, amount = words(rec.name), tool.amount_field or ""
    calls = [*b.profile_call("rec"), (tool.name, {"person_id": "<rec.person_id>", "status": "<rec.status>"})]
    n = len(calls)
    return make("read", calls,
                f"You want to know how many of your {phrasing.plural(what)} are in status <rec.status> "
                f"and their total {words(amount)}.",
                b.reason("record", what=what), b.who("rec") | {f"{what} status": "<rec.status>"},
                f"You do not know how many {phrasing.plural(what)} you have or what they add up to.",
                [("rec", b.rec_sql(rec, []))], [f"<out{n}.count>", f"<out{n}.total_{amount}>"], group="read")


def browse_read(b: Builder, make: Make, tool: CatalogTool) -> Any:
    """One browse with a filter and a ceiling: the cheapest match's id and amount."""
    item = find(b.d, tool.entity or "")
    attrs = {a.name: a for a in item.attributes}
    plain = [f for f in tool.fields if attrs[f].type != "bool"]
    amount, key, what = tool.amount_field or "", id_column(item.name), words(item.name)
    args: dict[str, Any] = {browse_ceiling(tool): f"<target.{amount}>"}
    known = {f"highest {words(amount)}": f"<target.{amount}>"}
    asks = ""
    if plain:
        f = b.rng.choice(plain)
        args = {f: f"<target.{f}>", **args}
        known[_lower(attrs[f].description)] = f"<target.{f}>"
        asks = f" ({_lower(attrs[f].description)}: <target.{f}>)"
    return make("read", [(tool.name, args)],
                f"You are looking for the cheapest {what}{asks} with {phrasing.article(words(amount))} of at most <target.{amount}>. "
                f"You want its id and its {words(amount)}.",
                b.reason("search", what=what), known, f"You do not know which {phrasing.plural(what)} exist.",
                [("target", b.ent_sql(item, [f"t.{amount} IS NOT NULL"]))], [f"<out1.{key}>", f"<out1.{amount}>"])


def browse_then_create(b: Builder, make: Make, browse: CatalogTool, create: CatalogTool) -> Any:
    """profile -> browse (filters, ceiling) -> create on the cheapest match: the id passes from one
    output to the next input, and the target's policy flags are browse filters the user states."""
    rec = find(b.d, create.entity or "")
    if not isinstance(rec, CatalogRecord) or rec.target != browse.entity or linked(b.d, rec):
        return None
    target = find(b.d, rec.target)
    found = checks(b.d, create)
    flags = [c for c in found if c.subject == "target"]
    if any(c.kind != "eq" or c.field not in browse.fields for c in flags):
        return None  # a target rule the browse cannot filter on: the cheapest match might break it
    base = b.create(create)
    if base is None:
        return None
    amount, tkey, key = browse.amount_field or "", id_column(target.name), id_column(rec.name)
    sargs: dict[str, Any] = {c.field: c.values[0] for c in flags}
    sargs[browse_ceiling(browse)] = f"<target.{amount}>"
    calls = [*b.profile_call("person"), (browse.name, sargs)]
    own_name, own_args = base.calls[-1]
    calls.append((own_name, {**own_args, tkey: f"<out{len(calls)}.{tkey}>"}))
    attrs = {a.name: a for a in target.attributes}
    needs = "".join(f", {'only' if c.values[0] else 'not'} where {_lower(attrs[c.field].description)}" for c in flags)
    text, _ = b.arg_text(rec, {k: v for k, v in own_args.items() if k not in ("person_id", tkey)})
    known = {k: v for k, v in base.known.items() if k != f"{words(target.name)} id"}
    known[f"highest {words(amount)}"] = f"<target.{amount}>"
    desc = _lower(create.description.rstrip("."))
    instruction = (f"You want to {desc}: the cheapest {words(target.name)} with {phrasing.article(words(amount))} of at most "
                   f"<target.{amount}>{needs}" + (f"; {text}." if text else "."))
    person_sql = base.selectors[0][1]
    target_sql = b.ent_sql(target, [f"t.{amount} IS NOT NULL", *[f"t.{c.field} = {sql_literal(c.values[0])}" for c in flags]])
    return make("write", calls, instruction, base.reason, known,
                f"You do not know which {phrasing.plural(words(target.name))} exist or the new {words(rec.name)}'s id.",
                [("person", person_sql), ("target", target_sql)],
                [f"<out{len(calls)}.{key}>", f"<out{len(calls) - 1}.{tkey}>"], group="multi")


def shaped_templates(b: Builder, make: Make) -> list[Any]:
    """Every template of the richer tool kinds for the builder's domain (None where one does not fit)."""
    out: list[Any] = []
    for tool in b.d.tools:
        if tool.kind == "summary":
            out.append(summary_read(b, make, tool))
        elif tool.kind == "browse":
            out.append(browse_read(b, make, tool))
            out += [browse_then_create(b, make, tool, c) for c in b.d.tools if c.kind == "create"]
    return out
