"""What the policy says about line-item tools (create_items, cancel_item): preconditions, outcomes, effects."""
from __future__ import annotations

from skiller.contract.wording import article
from skiller.world.builtin.lineitems import guard_statuses, line_checks, lines_of
from skiller.world.builtin.toolmodel import find, id_column, words
from skiller.world.catalog.model import CatalogDomain, CatalogTool

__all__ = ["line_effects", "line_outcomes", "line_preconditions"]


def line_preconditions(d: CatalogDomain, tool: CatalogTool, role: str) -> list[str]:
    x = lines_of(d, tool.entity)
    assert x is not None
    if tool.kind == "cancel_item":
        return [f"- The {words(x.spec.name)} id (`{x.key}`) comes from the {words(x.rec.name)} the confirmed person "
                f"named, read with its lines (a lookup of the {words(x.rec.name)} returns them under `items`).",
                "- The user explicitly confirmed this action and its arguments (global rule 3)."]
    parent = find(d, x.rec.target)
    return [f"- The person's id is confirmed (global rule 1) and they are {article(role)} of {d.name}.",
            f"- The {words(parent.name)} (`{id_column(parent.name)}`) exists; find it with a lookup.",
            f"- Each {words(x.target.name)} of `items` (`{x.target_key}`) exists and is named once, with the quantity "
            "the user asked for; the whole list goes in one call.",
            "- The user explicitly confirmed this action and its arguments (global rule 3)."]


def line_outcomes(d: CatalogDomain, tool: CatalogTool) -> list[str]:
    x = lines_of(d, tool.entity)
    assert x is not None
    out = ["- Permitted: when every condition below is met."]
    out += [f"- Rejected [{c.rule.id}]: {c.rule.statement}" for c in line_checks(d, tool)]
    if tool.kind == "create_items":
        return out + [f"- Rejected: an empty list, more than {x.spec.max_lines} lines, {article(words(x.target.name))} listed "
                      "twice or unknown. One refused line refuses the whole call: nothing is created."]
    allowed = guard_statuses(d, tool)
    if allowed:
        out.append(f"- Rejected: the {words(x.rec.name)} is not in an allowed status (allowed: {', '.join(allowed)}).")
    return out + [f"- Rejected: the {words(x.spec.name)} is already cancelled, or it is the only active line "
                  f"(cancel the whole {words(x.rec.name)} instead)."]


def line_effects(d: CatalogDomain, tool: CatalogTool) -> list[str]:
    x = lines_of(d, tool.entity)
    assert x is not None
    total = (f"`{x.spec.amount}` is the sum of the active lines' `line_amount`, each the {words(x.target.name)}'s "
             f"`{x.spec.price}` (copied as `unit_price`) x `quantity`, rounded to cents")
    if tool.kind == "cancel_item":
        return [f"- Sets the line's `line_status` to cancelled and recomputes the {words(x.rec.name)}'s amount: {total}. "
                f"Returns the {words(x.rec.name)} with every line under `items`; tell the user the new "
                f"`{x.spec.amount}`."]
    fixed = {**tool.defaults}
    fixed.setdefault(x.rec.status_field, x.rec.statuses[0])
    return [f"- Creates a new {words(x.rec.name)} for the person with the next free id ({x.rec.id_prefix}-NNNN) and "
            f"one active {words(x.spec.name)} per item ({x.spec.id_prefix}-NNNN, in the order given).",
            "- Sets " + ", ".join(f"`{k}` = {v}" for k, v in fixed.items()) + f"; {total}.",
            f"- Returns the new {words(x.rec.name)} with its lines under `items`; tell the user its id and "
            f"`{x.spec.amount}`."]
