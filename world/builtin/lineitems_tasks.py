"""Builtin s14 templates for line items: order two or three items in one call (the user names them, the agent
passes the list), cancel one line of an order and tell the new total, and the refusals of their rules (an item
not available, a quantity above the limit, a line of an order already past the status that allows it)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skiller.contract.placeholders import sql_literal
from skiller.world.builtin.lineitems import (ITEMS, LINE_KINDS, LINE_STATUS, QUANTITY, LineCheck, Lines, line_checks,
                                             lines_of)
from skiller.world.builtin.taskparts import _label_attr, _lower
from skiller.world.builtin.taskrefusals import least_used
from skiller.world.builtin.toolmodel import find, id_column, words
from skiller.world.catalog.model import CatalogTool

_ORDINALS = ("first", "second", "third", "fourth")  # the items of an order, as the customer names them

__all__ = ["line_templates"]

# The builder (skiller.world.builtin.taskwrites._Builder) and the template type come in as arguments (tasks.py
# calls this module: importing them back would be a cycle).
Builder = Any
Make = Callable[..., Any]


def _active(x: Lines, alias: str) -> str:
    """SQL: how many active lines the record aliased `alias` has."""
    return (f"(SELECT COUNT(*) FROM {x.table} o WHERE o.{x.parent_key} = {alias}.{x.parent_key} "
            f"AND o.{LINE_STATUS} = 'active')")


def _first_active(x: Lines, alias: str) -> str:
    """SQL: the record aliased `alias` has its first line (by id, as its get tool lists them) active."""
    return (f"(SELECT o.{LINE_STATUS} FROM {x.table} o WHERE o.{x.parent_key} = {alias}.{x.parent_key} "
            f"ORDER BY o.{x.key} LIMIT 1) = 'active'")


def _first_line_sql(x: Lines, b: Builder) -> str:
    """The `line` slot: the first line of the selected record with its item's label. The customer names that item;
    the agent finds its line in the record it read (`<outK.items.0.<line key>>`): nobody tells a line id."""
    lab = _label_attr(x.target)
    return (f"SELECT l.*{f', t.{lab.name}' if lab else ''} FROM {x.table} l JOIN {x.target_table} t "
            f"ON t.{x.target_key} = l.{x.target_key} WHERE l.{x.parent_key} = <rec.{x.parent_key}> "
            f"AND l.{LINE_STATUS} = 'active' AND NOT EXISTS (SELECT 1 FROM {x.table} f WHERE "
            f"f.{x.parent_key} = l.{x.parent_key} AND f.{x.key} < l.{x.key})" + b.order("l", x.key))


def _named(x: Lines, slot: str) -> str:
    """'medication <item1.medication_id> (<item1.drug_name>)': how the user names a line's target."""
    lab = _label_attr(x.target)
    return f"{words(x.target.name)} <{slot}.{x.target_key}>" + (f" (<{slot}.{lab.name}>)" if lab else "")


def order_items(b: Builder, make: Make, tool: CatalogTool, n: int, look: bool, bad: LineCheck | None = None) -> Any:
    """profile (-> the record's target) -> one create_items call with `n` lines the user lists (a refusal when
    `bad` is given: one line breaks it, so the whole order is refused)."""
    x = lines_of(b.d, tool.entity)
    if x is None:
        return None
    parent = find(b.d, x.rec.target)
    pkey, found = id_column(parent.name), line_checks(b.d, tool)
    flags = [c for c in found if c.kind == "flag"]
    qmax = min([int(c.hi) for c in found if c.kind == "quantity" and c.hi is not None] or [3])
    slots = [f"item{i + 1}" for i in range(n)]
    selectors: list[tuple[str, str]] = [("person", b.person_sql([])), ("target", b.ent_sql(parent, []))]
    for i, slot in enumerate(slots):
        breaks = bad is not None and bad.kind == "flag" and i == n - 1  # the last item is the one not allowed
        conds = [f"t.{x.spec.price} IS NOT NULL"]
        conds += [f"t.{c.field} {'<>' if breaks and c.rule.id == bad.rule.id else '='} {sql_literal(c.values[0])}"
                  for c in flags if not breaks or c.rule.id == bad.rule.id]
        conds += [f"t.{x.target_key} <> <{s}.{x.target_key}>" for s in slots[:i]]
        selectors.append((slot, b.ent_sql(x.target, conds)))
    quantities = [b.rng.randint(1, qmax) for _ in slots]
    if bad is not None and bad.kind == "quantity":
        quantities[-1] = int(bad.hi) + b.rng.randint(1, 2) if bad.hi is not None else int(bad.lo or 1) - 1
        if quantities[-1] < 1:
            return None
    items = [{x.target_key: f"<{s}.{x.target_key}>", QUANTITY: q} for s, q in zip(slots, quantities)]
    args = b.args(tool, x.rec, list(tool.fields), None)
    text, known_args = b.arg_text(x.rec, args)
    calls = b.profile_call("person")
    get_parent = b.tool("get", parent.name)
    if look and get_parent is not None:
        calls.append((get_parent.name, {pkey: f"<target.{pkey}>"}))
    own = (tool.name, {"person_id": "<person.person_id>", pkey: f"<target.{pkey}>", **args, ITEMS: items})
    what, rec = words(x.target.name), words(x.rec.name)
    listing = "; ".join(f"{q} of {_named(x, s)}" for s, q in zip(slots, quantities))
    known = b.who("person") | {f"{words(parent.name)} id": f"<target.{pkey}>"}
    for i, (s, q) in enumerate(zip(slots, quantities)):
        known[f"{_ORDINALS[i]} {what}"] = f"<{s}.{x.target_key}>"
        known[f"quantity of the {_ORDINALS[i]} {what}"] = str(q)
    known |= known_args
    instruction = (f"You want to {_lower(tool.description.rstrip('.'))}, all in one order at {words(parent.name)} "
                   f"<target.{pkey}>: {listing}" + (f"; {text}" if text else "") + ".")
    if bad is not None:
        return make("refusal", calls, instruction, b.reason("refusal", bad.rule.id, what=rec, target=what), known,
                    f"You do not know whether {b.d.name}'s rules allow this.", selectors, [],
                    forbidden=own, rule=bad.rule.id, group="refusal")
    calls.append(own)
    instruction += f" You want to know the new {rec}'s id and its {words(x.spec.amount)}."
    return make("write", calls, instruction, b.reason("create", what=rec, target=what), known,
                f"You do not know the new {rec}'s id or what it will cost.", selectors,
                [f"<out{len(calls)}.{x.parent_key}>", f"<out{len(calls)}.{x.spec.amount}>"],
                group="multi" if len(calls) >= 3 else "write")


def cancel_line(b: Builder, make: Make, tool: CatalogTool, bad: LineCheck | None = None, by_list: bool = False) -> Any:
    """profile (-> the person's records in one status) -> the record with its lines -> the item the user names (by
    its id, as they ordered it; never the internal line id) -> cancel that item's line, then tell the new total (a
    refusal when `bad`, a status rule, is given: the record is in a status that keeps its lines). `by_list`: the
    user knows the record only as their one in its status."""
    x = lines_of(b.d, tool.entity)
    get = b.tool("get", x.rec.name) if x is not None else None
    # customers name the item, never the internal line id: the agent reads the order's lines and looks the item up
    look = b.tool("get", x.target.name) if x is not None else None
    if x is None or get is None or (bad is None and look is None):
        return None
    sf, found = x.rec.status_field, line_checks(b.d, tool)
    ruled = [c for c in found if c.kind == "status"]
    if bad is None:
        open_ = [s for s in tool.from_statuses if all(s in c.values for c in ruled)]
        conds = [f"r.{sf} IN ({', '.join(sql_literal(s) for s in open_)})", f"{_active(x, 'r')} >= 2"]
    else:
        conds = [f"r.{sf} NOT IN ({', '.join(sql_literal(s) for s in bad.values)})", f"{_active(x, 'r')} >= 1"]
    conds.append(_first_active(x, "r"))
    line_sql = _first_line_sql(x, b)
    listed = b.listed(x.rec) if by_list and b.profile is not None else None
    if by_list and listed is None:
        return None
    ref = "<out2." + x.parent_key + ">" if listed else f"<rec.{x.parent_key}>"
    selectors = [("rec", b.rec_sql(x.rec, conds + ([b.unique_status(x.rec)] if listed else []))), ("line", line_sql)]
    calls = b.profile_call("rec") + ([listed] if listed else []) + [(get.name, {x.parent_key: ref})]
    own = (tool.name, {x.key: f"<out{len(calls)}.{ITEMS}.0.{x.key}>"})  # read off the record's lines
    rec, what = words(x.rec.name), words(x.target.name)
    known = b.who("rec") | {f"{what} to remove": f"<line.{x.target_key}>"}
    known |= {f"{rec} status": f"<rec.{sf}>"} if listed else {f"{rec} id": f"<rec.{x.parent_key}>"}
    which = f"your only {rec} in status <rec.{sf}>" if listed else f"your {rec} <rec.{x.parent_key}>"
    instruction = (f"You want to {_lower(tool.description.rstrip('.'))}: from {which}, "
                   f"remove the line for {_named(x, 'line')} and keep the rest.")
    if bad is not None:
        return make("refusal", calls, instruction, b.reason("refusal", bad.rule.id, what=rec), known,
                    f"You do not know whether {b.d.name}'s rules allow this.", selectors, [f"<rec.{sf}>"],
                    forbidden=own, rule=bad.rule.id, group="refusal")
    calls += [(look.name, {x.target_key: f"<line.{x.target_key}>"}), own]  # the line whose item the customer named
    instruction += f" You want to know the {rec}'s new {words(x.spec.amount)}."
    return make("write", calls, instruction, b.reason("update", what=rec), known,
                f"You do not know what the {rec} will cost without that line.", selectors,
                [f"<out{len(calls)}.{x.spec.amount}>"], group="multi")


def order_then_refused(b: Builder, make: Make, create: CatalogTool, tool: CatalogTool, bad: LineCheck) -> Any:
    """A compliant part and a refused part in one conversation: a new order of two items (its id and total told),
    then a line of the person's earlier record, past the status `bad` allows, which `tool` must not cancel."""
    x = lines_of(b.d, tool.entity)
    get = b.tool("get", x.rec.name) if x is not None else None
    base = order_items(b, make, create, 2, look=False)
    if x is None or get is None or base is None or bad.kind != "status":
        return None
    sf, key = x.rec.status_field, x.parent_key
    shut = f"NOT IN ({', '.join(sql_literal(s) for s in bad.values)})"
    holder = (f"EXISTS (SELECT 1 FROM {x.parent_table} r2 WHERE r2.person_id = p.person_id AND r2.{sf} {shut} "
              f"AND {_active(x, 'r2')} >= 1 AND {_first_active(x, 'r2')})")
    selectors = [("person", b.person_sql([holder])), *base.selectors[1:],
                 ("rec", b.rec_sql(x.rec, [f"r.{sf} {shut}", f"{_active(x, 'r')} >= 1", _first_active(x, "r"),
                                           "r.person_id = <person.person_id>"])),
                 ("line", _first_line_sql(x, b))]
    rec, what = words(x.rec.name), words(x.target.name)
    known = base.known | {f"earlier {rec} id": f"<rec.{key}>", f"{what} to remove from it": f"<line.{x.target_key}>"}
    instruction = (base.instruction + f" Then you want to {_lower(tool.description.rstrip('.'))}: from your earlier "
                   f"{rec} <rec.{key}>, remove the line for {_named(x, 'line')}.")
    calls = [*base.calls, (get.name, {key: f"<rec.{key}>"})]
    return make("refusal", calls, instruction, b.reason("refusal", bad.rule.id, what=rec), known,
                f"You do not know the new {rec}'s id, its cost, or whether {b.d.name}'s rules allow the change.",
                selectors, [*base.communicate, f"<rec.{sf}>"],
                forbidden=(tool.name, {x.key: f"<out{len(calls)}.{ITEMS}.0.{x.key}>"}),
                rule=bad.rule.id, group="mixed")


def line_templates(b: Builder, make: Make) -> tuple[list[Any], list[Any]]:
    """(core, extra) line-item templates of the builder's domain. Core: orders of two and three items, a cancelled
    line with its new total, a new order followed by a refused cancel of an earlier line, and the lone refusal of
    a rule whose kind no other rule of the domain has (it stands for its kind); extra: the other lone refusals,
    each in the shape the batch has used least (None where one does not fit)."""
    core: list[Any] = []
    extra: list[Any] = []
    lined = {t.name for t in b.d.tools if t.kind in LINE_KINDS}
    elsewhere = {r.kind for r in b.d.rules if r.tool not in lined}  # kinds the other templates already refuse

    def lone(options: list[Callable[[], Any]], c: LineCheck) -> None:
        t = least_used(b, options, count=c.rule.kind not in elsewhere)
        if t is not None and c.rule.kind not in elsewhere:
            t.group = "kind"  # early in the batch: the refusal standing for its rule kind
        (extra if c.rule.kind in elsewhere else core).append(t)

    for tool in b.d.tools:
        if tool.kind == "create_items":
            core += [order_items(b, make, tool, 2, look=True), order_items(b, make, tool, 3, look=False)]
            for c in line_checks(b.d, tool):
                lone([lambda c=c, look=look: order_items(b, make, tool, 2, look=look, bad=c) for look in (False, True)], c)
        elif tool.kind == "cancel_item":
            core.append(cancel_line(b, make, tool, by_list=True) or cancel_line(b, make, tool))
            creates = [t for t in b.d.tools if t.kind == "create_items" and t.entity == tool.entity]
            core += [order_then_refused(b, make, creates[0], tool, c) for c in line_checks(b.d, tool) if creates]
            for c in line_checks(b.d, tool):
                lone([lambda c=c, by_list=by_list: cancel_line(b, make, tool, bad=c, by_list=by_list)
                      for by_list in (False, True)], c)
    return core, extra
