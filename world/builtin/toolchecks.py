"""What a write tool verifies before it writes (a `Check` per rule, guard or tier), in one form the
code, the tests, the data and the tasks all derive from."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from skiller.world.builtin.lineitems import LINE_KINDS
from skiller.world.builtin.toolmodel import attribute, find, id_column, pay_field, snake, tool_parameters
from skiller.world.catalog.model import (
    CatalogDomain,
    CatalogRecord,
    CatalogRule,
    CatalogTool,
)


def rule_subject(domain: CatalogDomain, tool: CatalogTool, rule: CatalogRule) -> str:
    """Whose value a rule reads: 'arg' (a tool argument), 'row' (the row the tool acts on),
    'target' (the target entity row: the create's target, or the acted-on record's target),
    'person' (the person's other records, for max_active on a create), 'member' (the acting person's
    profile row: the role table, for attribute rules)."""
    item = find(domain, tool.entity or "") if tool.entity else None
    if rule.kind in ("max_active", "no_outstanding"):
        return "person" if tool.kind == "create" else "row"
    if rule.kind in ("member_attr", "balance_covers"):
        return "member"
    if rule.kind == "tier_limit":
        return "arg"
    if rule.kind == "ownership":
        return "owner"
    if rule.kind == "computed_fee":
        return "arg" if rule.field in tool_parameters(domain, tool)["properties"] else "row"
    if rule.kind in ("value_range", "date_window", "lead_time") and rule.field in tool_parameters(domain, tool)["properties"]:
        return "arg"
    if tool.kind == "create":
        return "target"
    if isinstance(item, CatalogRecord) and rule.entity == item.target and rule.entity != item.name:
        return "target"
    if isinstance(item, CatalogRecord) and rule.entity is None and rule.field and attribute(item, rule.field) is None \
            and attribute(find(domain, item.target), rule.field) is not None:
        return "target"
    return "row"


@dataclass(frozen=True)
class Check:
    """One condition a write tool verifies before writing, in a form that code (Python),
    tests (SQL) and data generation (forced rows) all derive from.

    kind: status_in (field in values) | eq (field == values[0]) | ne (field != values[0]) |
          date_range (field within clock + [lo, hi] days) | num_range (field within [lo, hi]) |
          count_lt (the person's rows of `table` with status in values number < limit) |
          owner (the acted-on row's person_id is the `person_id` argument; subject "owner") |
          covers (the person's balance `field` covers argument values[0], 1 without; lo/hi: the smallest and the
          largest request the other checks allow, so data, tests and tasks read it as "holds: field >= hi;
          fails: field < lo")
    A check with `percent` bounds a computed fee (percent% of `field`): lo/hi bound `field` itself, so
    data, tests and tasks treat it as a range; the code computes and returns the fee.
    A check with `when` holds trivially for a person whose profile attribute differs: a tier rule
    becomes one check per tier, tightest limit first.
    """

    label: str  # rule id, or "guard" (allowed from-statuses) / "paid" (already paid)
    subject: str  # arg | row | target | person
    kind: str
    field: str | None = None
    values: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None
    limit: int | None = None
    table: str | None = None  # count_lt: the counted table
    key: str | None = None  # count_lt: its id column
    statement: str = ""
    optional: bool = False  # an optional argument: absent means nothing to check
    when: tuple[str, Any] | None = None  # (profile attribute, value): the check applies to that tier only
    percent: float | None = None  # a computed fee: percent% of `field`

    @property
    def is_rule(self) -> bool:
        return self.label not in ("guard", "paid")


def _rule_checks(domain: CatalogDomain, tool: CatalogTool, rule: CatalogRule) -> list[Check]:
    """The checks of one rule: one, or one per tier for a tier_limit (tightest first)."""
    if rule.kind != "tier_limit":
        return [_rule_check(domain, tool, rule)]
    optional = rule.field not in tool_parameters(domain, tool)["required"]
    tiers = sorted(rule.limits.items(), key=lambda kv: (kv[1], kv[0]))
    return [Check(rule.id, "arg", "num_range", rule.field, hi=limit, statement=rule.statement, optional=optional,
                  when=(rule.attribute or "", tier)) for tier, limit in tiers]


def _rule_check(domain: CatalogDomain, tool: CatalogTool, rule: CatalogRule) -> Check:
    subject = rule_subject(domain, tool, rule)
    params = tool_parameters(domain, tool)
    optional = subject == "arg" and rule.field not in params["required"]
    common = {"label": rule.id, "subject": subject, "statement": rule.statement, "field": rule.field, "optional": optional}
    if rule.kind in ("max_active", "no_outstanding"):
        rec = find(domain, rule.entity or tool.entity or "")
        assert isinstance(rec, CatalogRecord), f"{rule.id}: {rule.kind} needs a record"
        limit = rule.limit if rule.kind == "max_active" else 1
        return Check(**{**common, "field": rec.status_field}, kind="count_lt", values=tuple(rule.statuses),
                     limit=limit, table=snake(rec.name), key=id_column(rec.name))
    if rule.kind == "member_attr":
        attr = next((a for a in domain.role_attributes if a.name == rule.field), None)
        assert attr is not None, f"{rule.id}: {rule.field} is not a profile attribute"
        if rule.statuses:
            return Check(**common, kind="status_in", values=tuple(rule.statuses))
        return Check(**common, kind="date_range" if attr.type == "date" else "num_range", lo=rule.min, hi=rule.max)
    if rule.kind == "value_range":
        return Check(**common, kind="num_range", lo=rule.min, hi=rule.max)
    if rule.kind == "ownership":
        return Check(**{**common, "field": "person_id", "optional": False}, kind="owner")
    if rule.kind == "computed_fee":
        pct = float(rule.percent or 0)
        base = lambda fee: None if fee is None else round(fee * 100 / pct, 2)  # noqa: E731 - the fee's bound on `field`
        return Check(**common, kind="num_range", lo=base(rule.min), hi=base(rule.max), percent=pct)
    if rule.kind == "balance_covers":  # bounded by checks(): the requests the tool's other checks allow
        return Check(**{**common, "field": rule.attribute, "optional": False}, kind="covers", values=(rule.field,))
    if rule.kind == "date_window":
        return Check(**common, kind="date_range", lo=rule.min, hi=rule.max)
    if rule.kind == "lead_time":
        return Check(**common, kind="date_range", lo=rule.min if rule.min is not None else 0)
    if rule.kind == "refund_schedule":  # a cancel below every tier is refused; the refund itself: refunds.py
        return Check(**common, kind="date_range", lo=min(int(k) for k in rule.limits))
    if rule.kind == "target_flag":
        return Check(**common, kind="eq", values=(rule.equals,))
    if rule.kind == "requires_status":
        owner = find(domain, rule.entity) if rule.entity else (
            find(domain, find(domain, tool.entity or "").target) if subject == "target" else find(domain, tool.entity or ""))  # type: ignore[union-attr]
        sf = owner.status_field if isinstance(owner, CatalogRecord) else "status"
        return Check(**{**common, "field": sf}, kind="status_in", values=tuple(rule.statuses))
    raise ValueError(f"{domain.name}: unknown rule kind {rule.kind}")


# Task generation asks for a tool's checks tens of thousands of times per domain; they depend only on
# the (immutable) domain and tool, so they are computed once. Entries hold their keys' objects, so an id is
# never reused while its entry lives.
_CHECKS: dict[tuple[int, int], tuple[CatalogDomain, CatalogTool, tuple[Check, ...]]] = {}


def checks(domain: CatalogDomain, tool: CatalogTool) -> list[Check]:
    """A write tool's checks in the order they run (after argument and existence validation):
    requires_status rules, the generic guards, then the other rules in catalog order. Line-item tools keep
    their own (skiller.world.builtin.lineitems.line_checks): none here."""
    if tool.kind in LINE_KINDS:
        return []
    hit = _CHECKS.get((id(domain), id(tool)))
    if hit is None or hit[0] is not domain or hit[1] is not tool:
        if len(_CHECKS) >= 4096:
            _CHECKS.clear()
        hit = _CHECKS[(id(domain), id(tool))] = (domain, tool, tuple(_checks(domain, tool)))
    return list(hit[2])


def _checks(domain: CatalogDomain, tool: CatalogTool) -> list[Check]:
    rules = [r for r in domain.rules if r.tool == tool.name]
    # whose record it is comes first: nothing about another person's record is disclosed by a later check
    first = [_rule_check(domain, tool, r) for r in rules if r.kind == "ownership"]
    first += [_rule_check(domain, tool, r) for r in rules if r.kind == "requires_status"]
    rest = [c for r in rules if r.kind not in ("requires_status", "ownership") for c in _rule_checks(domain, tool, r)]
    # a balance comes last: a request every other rule allows, only then whether what is left covers it
    rest = [c for c in rest if c.kind != "covers"] + [_covering(domain, tool, c, rest) for c in rest if c.kind == "covers"]
    guards: list[Check] = []
    item = find(domain, tool.entity) if tool.entity else None
    if tool.kind in ("set_status", "update", "pay") and isinstance(item, CatalogRecord):
        if tool.from_statuses:
            guards.append(Check("guard", "row", "status_in", item.status_field, tuple(tool.from_statuses)))
        elif tool.kind == "set_status" and tool.to:
            guards.append(Check("guard", "row", "ne", item.status_field, (tool.to,)))
    if tool.kind == "pay":
        guards.append(Check("paid", "row", "ne", pay_field(tool), (tool.to,)))

    def implied(guard: Check) -> bool:  # an earlier status rule already admits only rows the guard admits
        for rule in first:
            if rule.subject == "row" and rule.field == guard.field:
                if guard.kind == "status_in" and set(rule.values) <= set(guard.values):
                    return True
                if guard.kind == "ne" and guard.values[0] not in rule.values:
                    return True
        return False

    return [*first, *[g for g in guards if not implied(g)], *rest]


def _covering(domain: CatalogDomain, tool: CatalogTool, check: Check, found: list[Check]) -> Check:
    """A balance check bounded by the smallest and largest request the amount's generator and the tool's
    argument checks allow (1 and 1 for a balance counted per record)."""
    field = check.values[0] if check.values else None
    if not field:
        return replace(check, lo=1, hi=1)
    attr = attribute(find(domain, tool.entity or ""), field)
    span = (attr.gen.get("money") or attr.gen.get("int") or [None, None]) if attr is not None else [None, None]
    ranged = [c for c in found if c.subject == "arg" and c.field == field and c.kind == "num_range"]
    los = [float(x) for x in [span[0], *(c.lo for c in ranged)] if x is not None]
    his = [float(x) for x in [span[1], *(c.hi for c in ranged)] if x is not None]
    return replace(check, lo=max(los) if los else 1.0, hi=min(his) if his else None)


def fee_check(domain: CatalogDomain, tool: CatalogTool) -> Check | None:
    """The computed fee a write tool charges and returns (`fee`), if a rule sets one."""
    return next((c for c in checks(domain, tool) if c.percent is not None), None)


# ---------------------------------------------------------------- rendering helpers
