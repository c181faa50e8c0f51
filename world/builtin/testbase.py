"""What every generated test is built from: SQL for the rows a check needs, good and bad arguments, and
the small helpers the read and write test writers share."""
from __future__ import annotations

import datetime
from typing import Any

from skiller.world.catalog import values
from skiller.world.catalog.model import CatalogDomain, CatalogEntity, CatalogRecord, CatalogTool
from skiller.world.builtin.codegen import (
    Check,
    attribute,
    checks,
    find,
    id_column,
    lit,
    snake,
    tool_parameters,
)
from skiller.world.builtin.dbgen import solve


def _q(value: Any) -> str:
    """An SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _charge_src(price: Any, target: str, args: str) -> str:
    """The expected amount in a generated test: the target's price x the quantity argument (+ fixed),
    computed the way the data rule states it (servers.coherence), not by calling the implementation."""
    qty = f"{args}[{lit(price.quantity)}]" if price.quantity else "1"
    fixed = f" + float({target}[{lit(price.fixed)}] or 0)" if price.fixed else ""
    return f"round(float({target}[{lit(price.price)}]) * {qty}{fixed}, 2)"


def _ident(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def _field_rejections(tool: str, params: dict[str, Any], fields: list[str]) -> list[str]:
    """Lines rejecting a wrong type, an unlisted value and a malformed date for each field."""
    lines = []
    for f in fields:
        lines.append(f"    rejected(db, {lit(tool)}, {{**args, {lit(f)}: {lit(_wrong_type(params[f]))}}}, {lit(f)})")
        if "enum" in params[f]:
            lines.append(f"    rejected(db, {lit(tool)}, {{**args, {lit(f)}: \"not a listed value\"}}, {lit(f)})")
        if params[f].get("format") == "date":
            lines.append(f"    rejected(db, {lit(tool)}, {{**args, {lit(f)}: \"2026-02-30\"}}, {lit(f)})")
    return lines


def _wrong_type(schema: dict[str, Any]) -> Any:
    return {"string": 12345, "integer": "12", "number": "12.5", "boolean": "yes"}[schema["type"]]


class WriterBase:
    def __init__(self, domain: CatalogDomain, clock: str) -> None:
        self.domain = domain
        self.clock = clock
        self.day0 = datetime.date.fromisoformat(clock)
        self.role = snake(domain.role)

    def day(self, n: float) -> str:
        return (self.day0 + datetime.timedelta(days=int(n))).isoformat()

    # ------------------------------------------------------------ SQL for checks
    def _expr(self, check: Check, item: CatalogEntity | CatalogRecord, alias: str) -> str:
        if check.subject == "member" and alias != "p":  # the acting person's profile row, by subquery
            return f"(SELECT mm.{check.field} FROM {self.role} mm WHERE mm.person_id = {alias}.person_id)"
        if check.subject == "target" and alias == "r":  # the acted-on record's target, by subquery
            assert isinstance(item, CatalogRecord)
            target = find(self.domain, item.target)
            tkey = id_column(target.name)
            return f"(SELECT tt.{check.field} FROM {snake(target.name)} tt WHERE tt.{tkey} = r.{tkey})"
        return f"{alias}.{check.field}"

    def tier(self, check: Check, alias: str) -> str:
        """SQL: the person of `alias` (the role table as p, else a row with person_id) is in the check's tier."""
        assert check.when is not None
        column = f"p.{check.when[0]}" if alias == "p" else \
            f"(SELECT mm.{check.when[0]} FROM {self.role} mm WHERE mm.person_id = {alias}.person_id)"
        return f"{column} = {_q(check.when[1])}"

    def sql(self, check: Check, holds: bool, item: CatalogEntity | CatalogRecord, alias: str) -> str:
        """An SQL condition on `alias` that is true when `check` holds (or fails)."""
        if check.kind == "count_lt":
            sf = check.field
            statuses = ", ".join(_q(v) for v in check.values)
            if check.subject == "person":
                sub = f"SELECT COUNT(*) FROM {check.table} x WHERE x.person_id = {alias}.person_id AND x.{sf} IN ({statuses})"
            else:
                sub = (f"SELECT COUNT(*) FROM {check.table} x WHERE x.person_id = {alias}.person_id "
                       f"AND x.{sf} IN ({statuses}) AND x.{check.key} <> {alias}.{id_column(item.name)}")
            return f"({sub}) {'<' if holds else '>='} {check.limit}"
        x = self._expr(check, item, alias)
        if check.kind == "covers":  # a balance: it covers the largest request (holds), not even the smallest (fails)
            return f"{x} >= {_q(check.hi or 1)}" if holds else f"({x} IS NULL OR {x} < {_q(check.lo or 1)})"
        if check.kind == "status_in":
            vals = ", ".join(_q(v) for v in check.values)
            return f"{x} {'IN' if holds else 'NOT IN'} ({vals})"
        if check.kind == "eq":
            return f"{x} {'IS' if holds else 'IS NOT'} {_q(check.values[0])}"
        if check.kind == "ne":
            return f"{x} {'IS NOT' if holds else 'IS'} {_q(check.values[0])}"
        conv = self.day if check.kind == "date_range" else (lambda v: v)
        lo = _q(conv(check.lo)) if check.lo is not None else None
        hi = _q(conv(check.hi)) if check.hi is not None else None
        if holds:
            parts = [f"{x} >= {lo}"] if lo else []
            parts += [f"{x} <= {hi}"] if hi else []
            return " AND ".join(parts) or "1"
        parts = [f"{x} IS NULL"] + ([f"{x} < {lo}"] if lo else []) + ([f"{x} > {hi}"] if hi else [])
        return "(" + " OR ".join(parts) + ")"

    def select(self, table: str, key: str, conds: list[tuple[Check, bool]], item: CatalogEntity | CatalogRecord,
               alias: str, extra: tuple[str, ...] = ()) -> str:
        where = " AND ".join([self.sql(c, h, item, alias) for c, h in conds] + list(extra))
        return f"SELECT {alias}.{key} FROM {table} {alias}" + (f" WHERE {where}" if where else "") + f" ORDER BY {alias}.{key}"

    # ------------------------------------------------------------ argument values
    def _holds(self, check: Check, value: Any) -> bool:
        """Whether an argument value passes a range check (dates as offsets from the clock)."""
        if check.kind == "date_range":
            value = (datetime.date.fromisoformat(value) - self.day0).days
        return (check.lo is None or value >= check.lo) and (check.hi is None or value <= check.hi)

    def good_args(self, tool: CatalogTool, item: CatalogEntity | CatalogRecord) -> dict[str, Any]:
        """Values for the tool's fields that pass every argument check."""
        found = [c for c in checks(self.domain, tool) if c.subject == "arg"]
        params = tool_parameters(self.domain, tool)["properties"]
        out: dict[str, Any] = {}
        for f in tool.fields:
            if f not in params:
                continue
            attr = attribute(item, f)
            assert attr is not None
            mine = [c for c in found if c.field == f]
            if "enum" in params[f]:  # a listed value that passes every check on the field
                value = next((v for v in params[f]["enum"] if all(self._holds(c, v) for c in mine)), None)
                assert value is not None, f"{tool.name}: no listed value of {f} passes its rules"
                out[f] = value
                continue
            value = self._generated(attr.gen, values.sub_rng("testgen", self.domain.name, tool.name, f))
            if mine:
                solved = solve(item, [(c, True) for c in mine])
                assert solved is not None, f"{tool.name}: no valid value for {f}"
                value = solved["set"].get(f, value)
            if isinstance(value, dict):
                value = self.day(value["days"])
            if attr.type == "bool":
                value = bool(value)
            elif attr.type == "float":
                value = round(float(value), 2)
            elif attr.type == "date" and not isinstance(value, str):
                value = self.day(7)
            out[f] = value
        return out

    def _generated(self, gen: dict[str, Any], rng: Any) -> Any:
        if "ref" in gen:
            return "REF-0001"
        return values.generate(gen, rng, self.clock)

    def bad_values(self, tool: CatalogTool, check: Check) -> list[Any]:
        """Argument values that break `check` but pass the earlier checks on the same field
        (and, for a listed field, are listed: else the enum error would come first)."""
        found = checks(self.domain, tool)
        earlier = [c for c in found[: found.index(check)] if c.subject == "arg" and c.field == check.field
                   and c.when in (None, check.when)]  # another tier's limit does not apply to this person
        schema = tool_parameters(self.domain, tool)["properties"][check.field or ""]
        if "enum" in schema:
            candidates = list(schema["enum"])
        else:
            raw = ([check.hi + 1] if check.hi is not None else []) + ([check.lo - 1] if check.lo is not None else [])
            if check.kind == "date_range":
                candidates = [self.day(v) for v in raw]
            else:
                candidates = [int(v) if schema["type"] == "integer" else float(v) for v in raw]
        out = [v for v in candidates if not self._holds(check, v) and all(self._holds(c, v) for c in earlier)]
        return out[:1] + out[-1:] if len(out) > 2 else out


    # ------------------------------------------------------------ tests per tool kind
    def tool_tests(self, tool: CatalogTool) -> list[str]:
        return getattr(self, f"_t_{tool.kind}")(tool)

    def _bad_id_tests(self, tool: CatalogTool, key: str, args: str, what: str, missing: str) -> list[str]:
        """Lines checking unknown id, missing id, wrong type and unknown parameter."""
        return [
            f"    rejected(db, {lit(tool.name)}, {{**{args}, {lit(key)}: {lit(missing)}}}, {lit(f'{what} {missing} not found')})",
            f"    rejected(db, {lit(tool.name)}, {{k: v for k, v in {args}.items() if k != {lit(key)}}}, {lit(key)})",
            f"    rejected(db, {lit(tool.name)}, {{**{args}, {lit(key)}: 12345}}, {lit(key)})",
            f"    rejected(db, {lit(tool.name)}, {{**{args}, \"no_such_parameter\": 1}}, \"no_such_parameter\")",
        ]
