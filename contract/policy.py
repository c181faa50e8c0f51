"""The policy rule grammar shared by s07 (which asks for it), the implementations that enforce it and
the task generators that target it: a rule in words carries a `<!-- RULE {json} -->` marker."""
from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_serializer


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


RULE_MARKER = re.compile(r"<!-- RULE (\{.*?\}) -->")
RuleKind = Literal["max_active", "value_range", "date_window", "target_flag", "lead_time", "requires_status",
                   "member_attr", "tier_limit", "no_outstanding", "ownership", "computed_fee", "balance_covers",
                   "refund_schedule"]
# Rule kinds whose outcome depends on who asks (a customer attribute) or on a computed amount.
ATTRIBUTE_KINDS = frozenset({"member_attr", "tier_limit", "computed_fee", "balance_covers", "refund_schedule"})
REFUND_COLUMN = "refund_amount"  # the record column a refund_schedule cancel writes (and returns) its refund into


class PolicyRule(Frozen):
    """The machine-checkable form of one rule; the implementation enforces it, s14 targets it.

    max_active:      person holds < `limit` rows of `entity` in `statuses`
    value_range:     argument `field` within [`min`, `max`]
    date_window:     date argument `field` within clock + [`min`, `max`] days
    target_flag:     the target entity row of a create has `field` == `equals`
    lead_time:       the row's date `field` is at least `min` days after the clock
    requires_status: the row's status is in `statuses` (guards set_status/update/pay)
    member_attr:     the acting person's profile attribute `field` is in `statuses` or within [`min`, `max`]
    tier_limit:      argument `field` at most `limits[v]`, v the person's profile attribute `attribute`
    no_outstanding:  the person holds no row of `entity` in `statuses` (e.g. an unpaid bill) to create
    ownership:       the acting person (the tool's `person_id` argument) owns the record the tool acts on
    computed_fee:    fee = `percent`% of `field` (an argument, else the row's column), rounded to cents,
                     computed by the tool and returned as `fee`; the fee must lie within [`min`, `max`]
    balance_covers:  the acting person's profile attribute `attribute` (a balance, e.g. benefit left) covers argument
                     `field` (1 per record without); the create uses it up, a cancelling write gives it back
    refund_schedule: a cancel (set_status) of a row whose date `field` is d days after the clock refunds the row's
                     amount `attribute` x `limits[k]`% for the largest tier k <= d (`limits`: days ahead -> percent),
                     rounded to cents, written to the row's REFUND_COLUMN and returned; d below every tier: refused
    """

    id: str
    tool: str
    kind: RuleKind
    statement: str
    entity: str | None = None
    field: str | None = None
    statuses: list[str] = []
    limit: int | None = None
    min: float | None = None
    max: float | None = None
    equals: Any = None
    attribute: str | None = None
    limits: dict[str, float] = {}
    percent: float | None = None

    @model_serializer(mode="wrap")
    def _lean(self, handler: Any) -> dict[str, Any]:
        # the tier and fee fields appear only on their rules, so policies without them keep their bytes
        out = handler(self)
        for key in ("attribute", "limits", "percent"):
            if not out.get(key):
                out.pop(key, None)
        return out


def refund_percent(tiers: dict[str, float], days: int) -> float | None:
    """The percent a refund_schedule's `tiers` (days ahead -> percent) gives a cancel `days` ahead of the
    record's date: the tier with the most days not above `days`; None below every tier (the cancel is refused)."""
    fitting = [int(k) for k in tiers if int(k) <= days]
    return float(tiers[str(max(fitting))]) if fitting else None


def parse_rules(markdown: str) -> list[PolicyRule]:
    rules = []
    for raw in RULE_MARKER.findall(markdown):
        try:
            rules.append(PolicyRule.model_validate(json.loads(raw)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"malformed rule marker {raw[:60]}: {str(exc).splitlines()[0]}") from None
    return rules


# A rule a service applies to a record of another service that one of its tools takes (a claim naming a visit):
# stated in that service's policy, checked only where both services are fused (s13's bridge rules).
REFERENCE_MARKER = re.compile(r"<!-- REFERENCE (\{.*?\}) -->")


def reference_marker(fields: dict[str, Any]) -> str:
    """`<!-- REFERENCE {json} -->` with sorted keys, escaped like a RULE marker so the comment stays closed."""
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("--", "-\\u002d")
    return f"<!-- REFERENCE {text} -->"


def parse_references(markdown: str) -> list[dict[str, Any]]:
    """The reference rules a policy states, in document order (fields as the marker gives them)."""
    out = []
    for raw in REFERENCE_MARKER.findall(markdown):
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise ValueError(f"malformed reference marker {raw[:60]}: {exc}") from None
    return out
