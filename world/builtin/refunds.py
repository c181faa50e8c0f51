"""Refunds by date in the compiled world: a cancel under a refund_schedule rule refunds the record's amount x
the percent of the tier its days ahead fall in; the lines the tool runs, its generated tests per tier, the
forced rows per tier, the policy's words and what the customer is told."""
from __future__ import annotations

from typing import Any, Callable

from skiller.contract.policy import REFUND_COLUMN
from skiller.world.builtin.toolchecks import Check, checks
from skiller.world.builtin.toolmodel import find, id_column, lit, pay_field, snake, words
from skiller.world.catalog.model import CatalogDomain, CatalogRecord, CatalogRule, CatalogTool

__all__ = ["REFUND_COLUMN", "paid_as", "refund_cases", "refund_code", "refund_effects", "refund_rule", "refund_spec", "refund_tests",
           "refund_told", "tier_conditions", "tier_spans"]


def refund_rule(domain: CatalogDomain, tool: CatalogTool) -> CatalogRule | None:
    """The refund_schedule rule of a cancelling set_status tool, if it has one."""
    if tool.kind != "set_status":
        return None
    return next((r for r in domain.rules if r.tool == tool.name and r.kind == "refund_schedule"), None)


def paid_as(domain: CatalogDomain, rec_name: str) -> tuple[str, str] | None:
    """(column, value) that marks a record paid, from the domain's pay tool for it; None when it is never paid."""
    pay = next((t for t in domain.tools if t.kind == "pay" and t.entity == rec_name and t.to), None)
    return (pay_field(pay), pay.to) if pay is not None and pay.to is not None else None


def tier_spans(rule: CatalogRule) -> list[tuple[int, int | None, float]]:
    """(first day, last day or None, percent) of each tier, most days ahead first."""
    days = sorted((int(k) for k in rule.limits), reverse=True)
    return [(d, None if i == 0 else days[i - 1] - 1, float(rule.limits[str(d)])) for i, d in enumerate(days)]


def _pct(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(value)


def refund_code(domain: CatalogDomain, tool: CatalogTool, body: list[str]) -> list[str]:
    """A cancel's lines (ending in its return) with the refund computed from the tiers and written to the row
    before it is returned (the customer is told the refund)."""
    rule = refund_rule(domain, tool)
    if rule is None:
        return body
    assert body[-1].startswith("return ") and rule.field and rule.attribute, tool.name
    item = find(domain, tool.entity or "")
    key, table, spans = id_column(item.name), snake(item.name), tier_spans(rule)
    percent = " else ".join(f"{_pct(p)} if days >= {d}" for d, _, p in spans[:-1])
    percent = f"{percent} else {_pct(spans[-1][2])}" if percent else _pct(spans[-1][2])
    return [*body[:-1],
            f"# {rule.id}: the refund is the {words(item.name)}'s {words(rule.attribute)} x the percent of the tier "
            f"its {words(rule.field)} falls in (days ahead of the clock), rounded to cents",
            f"days = (datetime.date.fromisoformat(row[{lit(rule.field)}]) - datetime.date.fromisoformat(CLOCK)).days",
            f"percent = {percent}",
            f"refund = round(float(row[{lit(rule.attribute)}] or 0) * percent / 100, 2)",
            *([f"refund = refund if row[{lit(paid[0])}] == {lit(paid[1])} else 0.0  # only what was paid comes back"]
              if (paid := paid_as(domain, item.name)) else []),
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {{{lit(REFUND_COLUMN)}: refund}})",
            body[-1]]


def _tier_check(rule: CatalogRule, lo: int, hi: int | None) -> Check:
    return Check(f"{rule.id}-tier", "row", "date_range", rule.field, lo=lo, hi=hi)


def _paid_checks(domain: CatalogDomain, tool: CatalogTool, paid: bool = True) -> list[tuple[Check, bool]]:
    """A forced or picked row that was paid (refunded by its tier), or not (refunded nothing)."""
    found = paid_as(domain, find(domain, tool.entity or "").name)
    return [(Check("paid", "row", "eq", found[0], (found[1],)), paid)] if found else []


def refund_cases(domain: CatalogDomain, tool: CatalogTool, found: list[Check]) -> list[list[tuple[Check, bool]]]:
    """Forced-row cases: a permitted row of the cancel in each tier (so every tier can be tested and asked for)."""
    rule = refund_rule(domain, tool)
    if rule is None:
        return []
    happy = [(c, True) for c in found if c.subject == "row"]
    paid = _paid_checks(domain, tool)
    cases = [happy + paid + [(_tier_check(rule, lo, hi), True)] for lo, hi, _ in tier_spans(rule)]
    return cases + ([happy + _paid_checks(domain, tool, paid=False)] if paid else [])


def refund_tests(domain: CatalogDomain, tool: CatalogTool, select: Callable[[list[tuple[Check, bool]]], str],
                 args_src: str) -> list[str]:
    """One generated test per tier: a permitted row dated in the tier is cancelled; the refund returned and
    stored is its amount x the tier's percent, computed here from the rule, not by calling the implementation."""
    rule = refund_rule(domain, tool)
    if rule is None:
        return []
    item = find(domain, tool.entity or "")
    table, key = snake(item.name), id_column(item.name)
    happy = [(c, True) for c in checks(domain, tool) if c.subject in ("row", "target", "member")]
    paid = _paid_checks(domain, tool)
    out: list[str] = []
    for lo, hi, pct in tier_spans(rule):
        out += ["", "",
                f"def test_{tool.name}_refunds_{_pct(pct)}_percent_from_{lo}_days_ahead(db):",
                f"    key = pick(db, {lit(select(happy + paid + [(_tier_check(rule, lo, hi), True)]))})",
                f"    args = {{{lit(key)}: key{', ' + args_src if args_src else ''}}}",
                f"    before = fetch(db, {lit(table)}, {lit(key)}, key)",
                f"    out = call(db, {lit(tool.name)}, **args)",
                f"    expected = round(float(before[{lit(rule.attribute)}] or 0) * {_pct(pct)} / 100, 2)",
                f"    assert out[{lit(REFUND_COLUMN)}] == expected",
                f"    assert fetch(db, {lit(table)}, {lit(key)}, key)[{lit(REFUND_COLUMN)}] == expected"]
    if paid:  # nothing paid, nothing refunded
        out += ["", "", f"def test_{tool.name}_refunds_nothing_unpaid(db):",
                f"    key = pick(db, {lit(select(happy + _paid_checks(domain, tool, paid=False)))})",
                f"    args = {{{lit(key)}: key{', ' + args_src if args_src else ''}}}",
                f"    assert call(db, {lit(tool.name)}, **args)[{lit(REFUND_COLUMN)}] == 0.0"]
    return out


def refund_effects(domain: CatalogDomain, tool: CatalogTool) -> list[str]:
    """The policy's words for the refund a cancel gives, tier by tier."""
    rule = refund_rule(domain, tool)
    if rule is None:
        return []
    parts = [f"{lo} or more days ahead: {_pct(p)}%" if hi is None else
             (f"{lo} days ahead: {_pct(p)}%" if lo == hi else f"{lo} to {hi} days ahead: {_pct(p)}%")
             for lo, hi, p in tier_spans(rule)]
    what = words(find(domain, tool.entity or "").name)
    paid = paid_as(domain, find(domain, tool.entity or "").name)
    unpaid = f" (only when its `{paid[0]}` is `{paid[1]}`: nothing paid, nothing refunded)" if paid else ""
    return [f"- Refunds the {what}'s `{rule.attribute}`{unpaid} by how many days before its `{rule.field}` it is "
            f"cancelled ({'; '.join(parts)}), rounded to cents; writes the refund to `{REFUND_COLUMN}` and returns it "
            "with the row; tell the user the refund."]


def refund_told(domain: CatalogDomain, tool: CatalogTool) -> tuple[str, str] | None:
    """(the returned key, the customer's wish in words) of the refund a cancel gives."""
    if refund_rule(domain, tool) is None:
        return None
    return REFUND_COLUMN, " You also want to know the refund you will get."


def tier_conditions(rule: CatalogRule, turn: int, paid: tuple[str, str] | None = None) -> list[str]:
    """SQL conditions (on alias r, dates as clock placeholders) for a paid record in tier number `turn` (cycled)."""
    lo, hi, _ = tier_spans(rule)[turn % len(rule.limits)]
    return ([f"r.{rule.field} >= <clock+{lo}>"] + ([f"r.{rule.field} <= <clock+{hi}>"] if hi is not None else [])
            + ([f"r.{paid[0]} = '{paid[1]}'"] if paid else []))



def refund_spec(domain: CatalogDomain) -> list[dict[str, Any]]:
    """Each refund schedule as the data generator settles it and the integrity check verifies it."""
    out = []
    for tool in domain.tools:
        rule = refund_rule(domain, tool)
        if rule is None:
            continue
        rec = find(domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        out.append({"table": snake(rec.name), "key": id_column(rec.name), "status": rec.status_field,
                    "cancelled": [tool.to], "date": rule.field, "amount": rule.attribute, "column": REFUND_COLUMN,
                    "tiers": {k: float(v) for k, v in sorted(rule.limits.items(), key=lambda kv: int(kv[0]))},
                    "paid": list(paid_as(domain, rec.name) or []) or None})
    return out
