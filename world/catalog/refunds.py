"""Catalog checks of refund schedules: a refund_schedule rule on a cancel (tiers of days ahead -> percent of the
record's amount) and the record column the refund is written to."""
from __future__ import annotations

from skiller.contract.policy import REFUND_COLUMN
from skiller.world.catalog.check_base import _NUMBER, _gen_range
from skiller.world.catalog.model import CatalogDomain, CatalogRule, CatalogTool

__all__ = ["refund_column_problems", "schedule_problems"]


def _tiers(rule: CatalogRule) -> dict[int, float] | None:
    try:
        return {int(k): float(v) for k, v in rule.limits.items() if str(int(k)) == k}
    except ValueError:
        return None


def schedule_problems(d: CatalogDomain, rule: CatalogRule, tool: CatalogTool) -> list[str]:
    """Why a refund_schedule rule cannot compute a refund on its cancel, or cannot be kept in every tier and
    broken (empty: it can)."""
    rec = next((r for r in d.records if r.name == tool.entity), None)
    if tool.kind != "set_status" or rec is None:
        return [f"a refund_schedule rule guards a cancel (set_status of a record), not {tool.kind} {tool.name}"]
    if rule.entity not in (None, rec.name):
        return [f"entity {rule.entity} must be the tool's record {rec.name}"]
    attrs = {a.name: a for a in rec.attributes}
    out: list[str] = []
    if "cancel" not in (tool.to or "") or any(tool.to in t.from_statuses for t in d.tools if t.entity == rec.name):
        out.append(f"{tool.name} moves to {tool.to!r}: a refund_schedule rule guards a final cancelled status")
    date, amount = attrs.get(rule.field or ""), attrs.get(rule.attribute or "")
    if date is None or date.type != "date" or rule.field in tool.fields:
        out.append(f"field {rule.field!r} must be a date attribute of {rec.name} (not an argument of {tool.name})")
    if amount is None or amount.type not in ("int", "float") or amount.name == REFUND_COLUMN:
        out.append(f"attribute {rule.attribute!r} must be the numeric amount of {rec.name} the refund is a share of")
    if REFUND_COLUMN not in attrs or attrs[REFUND_COLUMN].type != "float":
        out.append(f"{rec.name} needs a float attribute {REFUND_COLUMN} the refund is written to")
    tiers = _tiers(rule)
    if tiers is None or len(tiers) != len(rule.limits) or len(tiers) < 2 or min(tiers) < 0:
        return out + [f"limits {rule.limits} must map at least 2 whole days ahead (>= 0, as text) to percents"]
    ordered = [tiers[k] for k in sorted(tiers)]
    if any(not 0 <= p <= 100 for p in ordered) or ordered != sorted(ordered) or len(set(ordered)) < 2:
        out.append(f"percents {ordered} must lie in [0, 100] and grow with the days ahead (not all equal)")
    if sum(r.kind == "refund_schedule" for r in d.rules if r.tool == tool.name) != 1:
        out.append(f"{tool.name} may have one refund_schedule rule only")
    if any(r.kind == "lead_time" and r.tool == tool.name for r in d.rules):
        out.append(f"{tool.name} has a lead_time rule too: the schedule's lowest tier is its lead time")
    lo, hi = (_gen_range(date.gen) or (None, None)) if date is not None else (None, None)
    if lo is None or hi is None or not lo < min(tiers) or max(tiers) > hi:
        out.append(f"{rec.name}.{rule.field} offsets must fall below {min(tiers)} days and reach {max(tiers)} days")
    said = {float(n.replace(",", "")) for n in _NUMBER.findall(rule.statement)}
    missing = [f"{v:g}" for v in [*tiers, *tiers.values()] if float(v) not in said and float(v) != 0]
    if missing:
        out.append(f"statement must state every tier (missing {', '.join(missing)}): {rule.statement!r}")
    return out


def refund_column_problems(d: CatalogDomain) -> list[str]:
    """Why a record's refund column could drift from its schedule: only a scheduled cancel writes it."""
    out = []
    for rec in (r for r in d.records if any(a.name == REFUND_COLUMN for a in r.attributes)):
        tools = [t for t in d.tools if t.entity == rec.name]
        if not any(r.kind == "refund_schedule" and r.tool in {t.name for t in tools} for r in d.rules):
            out.append(f"{rec.name}.{REFUND_COLUMN} is written by no refund_schedule rule")
        out += [f"{t.name} may not take {REFUND_COLUMN} as an argument (only the schedule sets it)"
                for t in tools if REFUND_COLUMN in t.fields or REFUND_COLUMN in t.defaults]
    return out
