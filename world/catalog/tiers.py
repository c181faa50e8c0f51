"""Catalog checks of the rules that depend on who asks (profile attributes) or cross records, and their share."""
from __future__ import annotations

import re
from typing import Any

from skiller.world.catalog.balances import covers_problems
from skiller.world.catalog.refunds import schedule_problems
from skiller.world.catalog.model import CatalogDomain, CatalogRule, CatalogTool
from skiller.contract.policy import ATTRIBUTE_KINDS

__all__ = ["ATTRIBUTE_KINDS", "attribute_share", "tier_rule_problems"]

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _finite(gen: dict[str, Any]) -> list[Any] | None:
    values = gen.get("choice") if "choice" in gen else ([True, False] if "bool" in gen else None)
    return list(dict.fromkeys(values)) if isinstance(values, list) else None


def _range(gen: dict[str, Any]) -> tuple[float, float] | None:
    for kind in ("int", "money", "date"):
        if isinstance(gen.get(kind), list) and len(gen[kind]) == 2:
            return float(gen[kind][0]), float(gen[kind][1])
    return None


def tier_rule_problems(d: CatalogDomain, rule: CatalogRule, tool: CatalogTool) -> list[str]:
    """Why a member_attr / tier_limit / no_outstanding / ownership / computed_fee / balance_covers rule cannot be
    both kept and broken (empty: it can)."""
    profile = {a.name: a for a in d.role_attributes}
    out: list[str] = []
    if rule.kind == "member_attr":
        attr = profile.get(rule.field or "")
        if attr is None:
            return [f"field {rule.field!r} is not a profile attribute of {d.role}"]
        if tool.kind not in ("create", "set_status", "update", "pay"):
            out.append(f"a member_attr rule guards a write tool, not {tool.kind}")
        if rule.statuses:
            values = _finite(attr.gen) or []
            if not set(rule.statuses) & set(values) or not set(values) - set(rule.statuses):
                out.append(f"{d.role}.{attr.name} must be generated both in {rule.statuses} and otherwise")
        elif rule.min is None and rule.max is None:
            out.append("a member_attr rule needs statuses, or min and/or max")
        else:
            lo, hi = _range(attr.gen) or (None, None)
            if lo is None or (rule.min is not None and not lo < rule.min <= hi) or \
                    (rule.max is not None and not lo <= rule.max < hi):
                out.append(f"{d.role}.{attr.name} must be generated on both sides of the bounds")
        for s in rule.statuses:
            if str(s).lower() not in rule.statement.lower():
                out.append(f"statement does not mention {s!r}")
    elif rule.kind == "tier_limit":
        attr = profile.get(rule.attribute or "")
        values = _finite(attr.gen) if attr else None
        if not values:
            return [f"attribute {rule.attribute!r} is not a profile attribute with listed values"]
        if tool.kind not in ("create", "update") or rule.field not in tool.fields:
            out.append(f"field {rule.field!r} is not an argument of the create/update tool {tool.name}")
        if not rule.limits or set(rule.limits) - set(map(str, values)):
            out.append(f"limits {rule.limits} must be keyed by values of {rule.attribute} ({values})")
        numbers = {float(n.replace(",", "")) for n in _NUMBER.findall(rule.statement)}
        out += [f"statement does not mention the {k} limit {v:g}" for k, v in rule.limits.items() if v not in numbers]
        if len(set(rule.limits.values())) < 2:
            out.append("a tier rule needs at least two different limits")
    elif rule.kind == "no_outstanding":
        rec = next((r for r in d.records if r.name == rule.entity), None)
        if tool.kind != "create" or rec is None:
            return [f"a no_outstanding rule guards a create and names a record (entity {rule.entity})"]
        if rec.name == tool.entity:
            out.append("entity must be another record than the one created (eligibility across records)")
        if not rule.statuses or set(rule.statuses) - set(rec.statuses) or set(rule.statuses) >= set(rec.statuses):
            out.append(f"statuses {rule.statuses} must be some, not all, statuses of {rec.name}")
        out += [f"statement does not mention status {s!r}" for s in rule.statuses
                if s.replace("_", " ") not in rule.statement.lower()]
    elif rule.kind == "ownership":
        rec = next((r for r in d.records if r.name == tool.entity), None)
        if tool.kind not in ("set_status", "update", "pay") or rec is None:
            out.append(f"an ownership rule guards a write on a record (set_status/update/pay), not {tool.kind} {tool.name}")
        if "own" not in rule.statement.lower():
            out.append("statement must say the record has to be the person's own")
    elif rule.kind == "computed_fee":
        out += _fee_problems(d, rule, tool)
    elif rule.kind == "balance_covers":
        out += covers_problems(d, rule, tool)
    elif rule.kind == "refund_schedule":
        out += schedule_problems(d, rule, tool)
    return out


def _fee_problems(d: CatalogDomain, rule: CatalogRule, tool: CatalogTool) -> list[str]:
    """A fee is percent% of an amount argument the caller gives (never a stored, priced amount: a row
    forced past the bound would break price x quantity); the bound must cut the argument's range."""
    item = next((x for x in d.records if x.name == tool.entity), None)
    attr = next((a for a in (item.attributes if item else []) if a.name == rule.field), None)
    if tool.kind not in ("create", "update") or rule.field not in tool.fields or attr is None \
            or attr.type not in ("int", "float"):
        return [f"a computed_fee rule takes a numeric argument of the create/update tool {tool.name}, not {rule.field!r}"]
    out = []
    if not rule.percent or not 0 < rule.percent < 100:
        out.append("percent must be between 0 and 100")
        return out
    if rule.min is None and rule.max is None:
        out.append("a computed_fee rule bounds the fee: min and/or max")
    lo, hi = _range(attr.gen) or (None, None)
    for bound in (rule.min, rule.max):
        if bound is not None and lo is not None and not lo < bound * 100 / rule.percent < hi:
            out.append(f"the fee bound {bound:g} must fall inside the range of {rule.field} ({lo:g} to {hi:g})")
    numbers = {float(n.replace(",", "")) for n in _NUMBER.findall(rule.statement)}
    out += [f"statement does not mention {what} {v:g}" for what, v in
            (("the percent", rule.percent), ("the bound", rule.min), ("the bound", rule.max)) if v is not None and v not in numbers]
    return out


def attribute_share(domains: list[CatalogDomain]) -> tuple[int, int]:
    """(rules whose outcome depends on a profile attribute or a computed amount, all rules): tier,
    member and fee rules, and value ranges on a money argument."""
    hits = total = 0
    for d in domains:
        for rule in d.rules:
            total += 1
            hits += rule.kind in ATTRIBUTE_KINDS or _on_amount(d, rule)
    return hits, total


def _on_amount(d: CatalogDomain, rule: CatalogRule) -> bool:
    if rule.kind != "value_range":
        return False
    tool = next((t for t in d.tools if t.name == rule.tool), None)
    item = next((x for x in [*d.entities, *d.records] if tool and x.name == tool.entity), None)
    attr = next((a for a in (item.attributes if item else []) if a.name == rule.field), None)
    return attr is not None and "money" in attr.gen
