"""World rules a generated database promises beyond its keys, declared as data: the builtin generators
state them, the integrity check (servers.coherence) counts the rows that break them."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_serializer


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusTiming(_Frozen):
    """A status names where a row is in time: `past` statuses need `date_column` <= today (a visit
    cannot be `completed` next week), `future` statuses need it no more than `grace_days` before
    today (nor still `scheduled` last month; yesterday's booking may just not be updated yet)."""

    table: str
    status_column: str
    date_column: str
    past: list[str] = []
    future: list[str] = []
    grace_days: int = 0


class AmountRule(_Frozen):
    """`amount_column` = target's `price_column` x own `quantity_column` (1 if none) + target's `fixed_column`."""

    table: str
    amount_column: str
    target_table: str
    target_key: str  # the foreign-key column, named alike in both tables
    price_column: str
    quantity_column: str | None = None
    fixed_column: str | None = None


class CategoryRule(_Frozen):
    """A row's target must have `target_column` in `allowed[row's column value]`; with no `column`,
    `allowed["*"]` applies to every row (a bill payment goes to a utility payee)."""

    table: str
    target_table: str
    target_key: str
    target_column: str
    column: str | None = None
    allowed: dict[str, list[Any]]


class BalanceRule(_Frozen):
    """What a person has left (`balance_column` of the role `table`) is their `limit_column` minus what their rows
    of `record_table` outside the `released` statuses hold (`amount_column` each, 1 without), never below zero:
    a withdrawn claim gives its amount back, an approved one keeps it."""

    table: str
    balance_column: str
    limit_column: str
    record_table: str
    status_column: str
    released: list[str]
    amount_column: str | None = None


class LineTotal(_Frozen):
    """A record's `amount_column` = the sum of `line_amount_column` over its rows in `lines_table` (joined by
    `key`, named alike in both tables) whose `status_column` is `active` (an order totals its live lines)."""

    table: str
    key: str
    amount_column: str
    lines_table: str
    line_amount_column: str
    status_column: str
    active: str


class RefundRule(_Frozen):
    """A row of `table` in a `cancelled` status carries in `refund_column` its `amount_column` x the percent of
    the refund tier (`tiers`: days ahead -> percent) its `date_column` falls in, counted from today and never
    below the lowest tier (no cancel is made below it), rounded to cents; any other row carries none (NULL). Only
    what was paid comes back: with a `paid_column`, a cancelled row whose value is not `paid_value` refunds 0."""

    table: str
    status_column: str
    cancelled: list[str]
    date_column: str
    amount_column: str
    refund_column: str
    tiers: dict[str, float]
    paid_column: str | None = None
    paid_value: str | None = None


class HoldingRule(_Frozen):
    """A target held alone: at most one row of `table` in a `holding` status per `target_key`, and the held
    target's `flag_column` false (a rented storage unit is not available; a free one may be either)."""

    table: str
    status_column: str
    holding: list[str]
    target_table: str
    target_key: str
    flag_column: str


class DataInvariants(_Frozen):
    """What a database generator promises about its rows; the integrity check verifies it."""

    status_dates: list[StatusTiming] = []
    amounts: list[AmountRule] = []
    categories: list[CategoryRule] = []
    balances: list[BalanceRule] = []
    line_totals: list[LineTotal] = []
    refunds: list[RefundRule] = []
    holdings: list[HoldingRule] = []

    @model_serializer(mode="wrap")
    def _lean(self, handler: Any) -> dict[str, Any]:
        # balances, line totals, refunds and holdings appear only where a domain has them, so the other domains'
        # invariants keep their bytes
        out = handler(self)
        for key in ("balances", "line_totals", "refunds", "holdings"):
            if not out.get(key):
                out.pop(key, None)
        return out
