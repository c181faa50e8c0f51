"""World rules a generated database must obey beyond its keys: statuses agree with dates, amounts follow
prices and quantities, records point at targets of the right category. Declared as data, counted by SQL."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

from skiller.contract.policy import refund_percent
from skiller.contract.invariants import (
    AmountRule, BalanceRule, CategoryRule, DataInvariants, HoldingRule, LineTotal, RefundRule, StatusTiming,
)
from skiller.servers.database import _connect, _q

__all__ = ["AmountRule", "BalanceRule", "CategoryRule", "CoherenceReport", "DataInvariants", "HoldingRule", "LineTotal",
           "RefundRule",
           "StatusTiming",
           "coherence_report"]

TOLERANCE = 0.01  # a database passes while at most 1% of the rows checked by a kind break it
_EXAMPLES = 3


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoherenceReport(_Frozen):
    """Per kind (status_date, amount, category, balance, refund): rows checked and rows breaking the rule."""

    checked: dict[str, int] = {}
    violations: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    unknown: list[str] = []  # invariants naming a table or column the database lacks
    tolerance: float = TOLERANCE

    def rate(self, kind: str) -> float:
        return self.violations.get(kind, 0) / self.checked[kind] if self.checked.get(kind) else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.unknown and all(self.rate(k) <= self.tolerance for k in self.checked)

    def problems(self) -> list[str]:
        """One line per failing kind (with examples), for logs and repair prompts."""
        lines = [f"invariant names {u}, which the database lacks" for u in self.unknown]
        for kind in sorted(self.checked):
            if self.rate(kind) > self.tolerance:
                lines.append(f"{self.violations[kind]} of {self.checked[kind]} rows ({self.rate(kind):.1%}) break "
                             f"the {kind.replace('_', '/')} rule (at most {self.tolerance:.0%}), e.g. "
                             + "; ".join(self.examples.get(kind, [])))
        return lines


def _columns(conn: Any, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")}


def _missing(conn: Any, needs: dict[str, list[str | None]]) -> list[str]:
    out = []
    for table, cols in needs.items():
        have = _columns(conn, table)
        if not have:
            out.append(f"table {table}")
        out += [f"column {table}.{c}" for c in cols if c and have and c not in have]
    return out


class _Tally:
    def __init__(self) -> None:
        self.checked: dict[str, int] = {}
        self.violations: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}

    def add(self, kind: str, bad: str | None) -> None:
        self.checked[kind] = self.checked.get(kind, 0) + 1
        if bad is not None:
            self.violations[kind] = self.violations.get(kind, 0) + 1
            if len(self.examples.setdefault(kind, [])) < _EXAMPLES:
                self.examples[kind].append(bad)


def _status_dates(conn: Any, rule: StatusTiming, today: str, tally: _Tally) -> None:
    sql = (f"SELECT rowid, {_q(rule.status_column)}, {_q(rule.date_column)} FROM {_q(rule.table)} "
           f"WHERE {_q(rule.date_column)} IS NOT NULL ORDER BY rowid")
    past, future = set(rule.past), set(rule.future)
    earliest = (dt.date.fromisoformat(today) - dt.timedelta(days=rule.grace_days)).isoformat()
    for rowid, status, day in conn.execute(sql):
        day = str(day)[:10]
        bad = (status in past and day > today) or (status in future and day < earliest)
        tally.add("status_date", f"{rule.table} rowid {rowid} is {status} on {day} (today {today})" if bad else None)


def _amounts(conn: Any, rule: AmountRule, tally: _Tally) -> None:
    qty = f"r.{_q(rule.quantity_column)}" if rule.quantity_column else "1"
    fixed = f"t.{_q(rule.fixed_column)}" if rule.fixed_column else "0"
    sql = (f"SELECT r.rowid, r.{_q(rule.amount_column)}, t.{_q(rule.price_column)}, {qty}, {fixed} "
           f"FROM {_q(rule.table)} r JOIN {_q(rule.target_table)} t ON r.{_q(rule.target_key)} = t.{_q(rule.target_key)} "
           f"WHERE r.{_q(rule.amount_column)} IS NOT NULL ORDER BY r.rowid")
    for rowid, amount, price, quantity, extra in conn.execute(sql):
        try:
            expected = round(float(price) * float(quantity) + float(extra or 0), 2)
            bad = abs(float(amount) - expected) > 0.005
        except (TypeError, ValueError):
            bad, expected = True, None
        tally.add("amount", f"{rule.table} rowid {rowid} charges {amount}, expected {expected}" if bad else None)


def _categories(conn: Any, rule: CategoryRule, tally: _Tally) -> None:
    own = f"r.{_q(rule.column)}" if rule.column else "'*'"
    sql = (f"SELECT r.rowid, {own}, t.{_q(rule.target_column)} FROM {_q(rule.table)} r "
           f"JOIN {_q(rule.target_table)} t ON r.{_q(rule.target_key)} = t.{_q(rule.target_key)} ORDER BY r.rowid")
    for rowid, value, category in conn.execute(sql):
        allowed = rule.allowed.get(str(value))
        if allowed is None:
            continue  # the rule says nothing about this value
        bad = category not in allowed
        tally.add("category", f"{rule.table} rowid {rowid} ({value}) points at a {category} {rule.target_table}" if bad else None)


def _balances(conn: Any, rule: BalanceRule, tally: _Tally) -> None:
    amount = f"COALESCE(r.{_q(rule.amount_column)}, 0)" if rule.amount_column else "1"
    marks = ", ".join("?" for _ in rule.released)
    sql = (f"SELECT m.person_id, m.{_q(rule.balance_column)}, m.{_q(rule.limit_column)}, (SELECT COALESCE(SUM({amount}), 0) "
           f"FROM {_q(rule.record_table)} r WHERE r.person_id = m.person_id AND r.{_q(rule.status_column)} NOT IN ({marks})) "
           f"FROM {_q(rule.table)} m ORDER BY m.person_id")
    for person, left, limit, used in conn.execute(sql, list(rule.released)):
        try:
            bad = float(left) < 0 or abs(float(left) - (float(limit) - float(used))) > 0.005
        except (TypeError, ValueError):
            bad = True
        tally.add("balance", f"{rule.table} {person} has {left} of {limit} left with {used} used" if bad else None)


def _line_totals(conn: Any, rule: LineTotal, tally: _Tally) -> None:
    k, amount = _q(rule.key), _q(rule.amount_column)
    sql = (f"SELECT r.rowid, r.{amount}, (SELECT COALESCE(SUM(l.{_q(rule.line_amount_column)}), 0) FROM "
           f"{_q(rule.lines_table)} l WHERE l.{k} = r.{k} AND l.{_q(rule.status_column)} = ?), "
           f"(SELECT COUNT(*) FROM {_q(rule.lines_table)} l WHERE l.{k} = r.{k}) FROM {_q(rule.table)} r ORDER BY r.rowid")
    for rowid, total, lines, count in conn.execute(sql, (rule.active,)):
        try:
            bad = count == 0 or abs(float(total) - round(float(lines), 2)) > 0.005
        except (TypeError, ValueError):
            bad = True
        tally.add("line_total", f"{rule.table} rowid {rowid} totals {total} over {count} lines summing to "
                  f"{round(float(lines), 2)}" if bad else None)


def _refunds(conn: Any, rule: RefundRule, today: str, tally: _Tally) -> None:
    lowest = min(int(k) for k in rule.tiers)  # no cancel is made below the lowest tier
    paid = _q(rule.paid_column) if rule.paid_column else "NULL"
    sql = (f"SELECT rowid, {_q(rule.status_column)}, {_q(rule.date_column)}, {_q(rule.amount_column)}, "
           f"{_q(rule.refund_column)}, {paid} FROM {_q(rule.table)} ORDER BY rowid")
    day0 = dt.date.fromisoformat(today)
    for rowid, status, day, amount, refund, paid_as in conn.execute(sql):
        expected = None
        try:
            if status in rule.cancelled and day is not None:
                days = max((dt.date.fromisoformat(str(day)[:10]) - day0).days, lowest)
                expected = round(float(amount or 0) * (refund_percent(rule.tiers, days) or 0.0) / 100, 2)
                expected = 0.0 if rule.paid_column and paid_as != rule.paid_value else expected
            bad = (refund is not None) if expected is None else (refund is None or abs(float(refund) - expected) > 0.005)
        except (TypeError, ValueError):
            bad = True
        tally.add("refund", f"{rule.table} rowid {rowid} ({status} on {day}) refunds {refund}, expected {expected}"
                  if bad else None)


def _holdings(conn: Any, rule: HoldingRule, tally: _Tally) -> None:
    """Each holding row counts: bad when an earlier row already holds its target, or the target says it is free."""
    marks = ", ".join("?" for _ in rule.holding)
    k = _q(rule.target_key)
    sql = (f"SELECT r.rowid, r.{k}, t.{_q(rule.flag_column)} FROM {_q(rule.table)} r LEFT JOIN {_q(rule.target_table)} t "
           f"ON r.{k} = t.{k} WHERE r.{_q(rule.status_column)} IN ({marks}) ORDER BY r.rowid")
    held: set[Any] = set()
    for rowid, target, flag in conn.execute(sql, list(rule.holding)):
        bad = f"{rule.table} rowid {rowid} holds {target}, " + (
            "which an earlier row holds" if target in held else f"whose {rule.flag_column} says it is free")
        tally.add("holding", bad if target in held or bool(flag) else None)
        held.add(target)


def coherence_report(path: str | Path, invariants: DataInvariants, today: dt.date | str) -> CoherenceReport:
    """Count the rows breaking each declared invariant, relative to the simulation date `today`."""
    day = today.isoformat() if isinstance(today, dt.date) else str(today)[:10]
    tally = _Tally()
    unknown: list[str] = []
    with _connect(path) as conn:
        for s in invariants.status_dates:
            missing = _missing(conn, {s.table: [s.status_column, s.date_column]})
            unknown += missing
            if not missing:
                _status_dates(conn, s, day, tally)
        for a in invariants.amounts:
            missing = _missing(conn, {a.table: [a.amount_column, a.target_key, a.quantity_column],
                                      a.target_table: [a.target_key, a.price_column, a.fixed_column]})
            unknown += missing
            if not missing:
                _amounts(conn, a, tally)
        for c in invariants.categories:
            missing = _missing(conn, {c.table: [c.target_key, c.column], c.target_table: [c.target_key, c.target_column]})
            unknown += missing
            if not missing:
                _categories(conn, c, tally)
        for b in invariants.balances:
            missing = _missing(conn, {b.table: ["person_id", b.balance_column, b.limit_column],
                                      b.record_table: ["person_id", b.status_column, b.amount_column]})
            unknown += missing
            if not missing:
                _balances(conn, b, tally)
        for t in invariants.line_totals:
            missing = _missing(conn, {t.table: [t.key, t.amount_column],
                                      t.lines_table: [t.key, t.line_amount_column, t.status_column]})
            unknown += missing
            if not missing:
                _line_totals(conn, t, tally)
        for r in invariants.refunds:
            missing = _missing(conn, {r.table: [r.status_column, r.date_column, r.amount_column, r.refund_column]})
            unknown += missing
            if not missing:
                _refunds(conn, r, day, tally)
        for h in invariants.holdings:
            missing = _missing(conn, {h.table: [h.status_column, h.target_key], h.target_table: [h.target_key, h.flag_column]})
            unknown += missing
            if not missing:
                _holdings(conn, h, tally)
    return CoherenceReport(checked=tally.checked, violations=tally.violations, examples=tally.examples,
                           unknown=sorted(set(unknown)))
