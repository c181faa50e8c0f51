"""Builtin test model: writes the pytest file that checks a domain's implementation module against its DB."""
from __future__ import annotations

import datetime
from typing import Any

from skiller.world.catalog import values
from skiller.world.catalog.model import CatalogDomain, CatalogEntity, CatalogRecord, CatalogTool
from skiller.world.builtin.codegen import (
    Check,
    amount_source,
    attribute,
    bool_columns,
    browse_ceiling,
    charged,
    checks,
    fee_check,
    find,
    id_column,
    label,
    linked,
    lit,
    owned,
    pay_field,
    snake,
    tool_parameters,
)
from skiller.world.builtin.dbgen import solve

__all__ = ["implementation_tests"]

_HEADER = '''"""Generated tests for the __SERVER__ implementation (clock __CLOCK__).

Each test gets a fresh copy of db.sqlite, calls tools like the runtime does (inside a
SAVEPOINT, rolled back on error) and checks the effects by reading the database with SQL.
"""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import impl

DB = Path(__file__).with_name("db.sqlite")
# Boolean columns per table (stored 0/1, returned by tools as True/False).
BOOLS: dict[str, set[str]] = __BOOLS__


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "db.sqlite"
    shutil.copyfile(DB, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    yield conn
    conn.close()


def call(db: sqlite3.Connection, tool: str, /, **args: Any) -> Any:
    """Run a tool the way the runtime does: one SAVEPOINT, rolled back on any exception."""
    db.execute("SAVEPOINT test_call")
    try:
        result = impl.TOOLS[tool]["fn"](db, **args)
    except BaseException:
        db.execute("ROLLBACK TO test_call")
        db.execute("RELEASE test_call")
        raise
    db.execute("RELEASE test_call")
    return result


def pick(db: sqlite3.Connection, sql: str, *params: Any) -> Any:
    """The first column of the first row; the data generator guarantees such a row exists."""
    row = db.execute(sql + " LIMIT 1", params).fetchone()
    assert row is not None, f"no row in the database for: {sql}"
    return row[0]


def fetch(db: sqlite3.Connection, table: str, key: str, value: Any) -> dict[str, Any]:
    """A row as the tools return it (booleans as bool, floats to 2 decimals)."""
    cursor = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,))
    values = cursor.fetchone()
    assert values is not None, f"{table} {value} not found"
    row = {}
    for (column, *_), v in zip(cursor.description, values):
        if column in BOOLS.get(table, set()) and v is not None:
            v = bool(v)
        elif isinstance(v, float):
            v = round(v, 2)
        row[column] = v
    return row


def ids(db: sqlite3.Connection, sql: str, *params: Any) -> list[Any]:
    return [r[0] for r in db.execute(sql, params).fetchall()]


def next_id(db: sqlite3.Connection, table: str, key: str, prefix: str) -> str:
    numbers = [int(v.rpartition("-")[2]) for v in ids(db, f"SELECT {key} FROM {table}")
               if v.rpartition("-")[0] == prefix and v.rpartition("-")[2].isdigit()]
    return f"{prefix}-{max(numbers, default=0) + 1:04d}"


def state(db: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = ids(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}


def rejected(db: sqlite3.Connection, tool: str, args: dict[str, Any], *needles: str) -> str:
    """The call raises ToolError mentioning every needle, and the database is unchanged."""
    before = state(db)
    with pytest.raises(impl.ToolError) as info:
        call(db, tool, **args)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert state(db) == before, f"{tool} changed the database although it failed"
    return message


def test_module_follows_the_contract() -> None:
    assert impl.SERVER == __SERVER_LIT__ and impl.CLOCK == __CLOCK_LIT__ and impl.NAMESPACE == ""
    assert impl._t("person") == "person"
    assert sorted(impl.TOOLS) == sorted(__TOOL_NAMES__)
    for name, spec in impl.TOOLS.items():
        assert spec["mode"] in ("read", "write") and callable(spec["fn"]) and spec["description"]
        assert spec["parameters"]["type"] == "object"
        assert set(spec["parameters"]["required"]) <= set(spec["parameters"]["properties"])
'''


def _q(value: Any) -> str:
    """An SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class _Writer:
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

    def _t_get_profile(self, tool: CatalogTool) -> list[str]:
        n = tool.name
        return [
            f"def test_{n}_returns_person_and_{self.role}(db):",
            f'    pid = pick(db, "SELECT person_id FROM {self.role} ORDER BY person_id")',
            f"    out = call(db, {lit(n)}, person_id=pid)",
            f'    assert out == {{**fetch(db, "person", "person_id", pid), **fetch(db, {lit(self.role)}, "person_id", pid)}}',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{"person_id": pick(db, "SELECT person_id FROM {self.role} ORDER BY person_id")}}',
            *self._bad_id_tests(tool, "person_id", "args", "Person", "P-9999"),
        ]

    def _t_get(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        table, key, n = snake(item.name), id_column(item.name), tool.name
        return [
            f"def test_{n}_returns_the_row(db):",
            f'    for key in ids(db, "SELECT {key} FROM {table} ORDER BY {key} LIMIT 3"):',
            f"        assert call(db, {lit(n)}, {key}=key) == fetch(db, {lit(table)}, {lit(key)}, key)",
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{{lit(key)}: pick(db, "SELECT {key} FROM {table} ORDER BY {key}")}}',
            *self._bad_id_tests(tool, key, "args", label(item.name), f"{item.id_prefix}-9999"),
        ]

    def _t_search(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        table, key, n = snake(item.name), id_column(item.name), tool.name
        params = tool_parameters(self.domain, tool)["properties"]
        lines = [
            f"def test_{n}_filters_exactly_sorted_and_limited(db):",
            f"    everything = call(db, {lit(n)})",
            f'    assert [r[{lit(key)}] for r in everything] == ids(db, "SELECT {key} FROM {table} ORDER BY {key} LIMIT 20")',
            f"    assert all(r == fetch(db, {lit(table)}, {lit(key)}, r[{lit(key)}]) for r in everything)",
        ]
        for f in tool.fields:
            conv = "bool" if params[f]["type"] == "boolean" else ""
            lines += [
                f'    value = {conv}(pick(db, "SELECT {f} FROM {table} ORDER BY {key}"))',
                f"    rows = call(db, {lit(n)}, {f}=value)",
                f"    assert rows and all(r[{lit(f)}] == value for r in rows)",
                f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE {f} = ? ORDER BY {key} LIMIT 20", value)',
            ]
        lines += ["", "", f"def test_{n}_rejects_bad_arguments(db):"]
        for f in tool.fields:
            lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: {lit(_wrong_type(params[f]))}}}, {lit(f)})")
            if "enum" in params[f]:
                lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: \"not a listed value\"}}, {lit(f)})")
        lines.append(f"    rejected(db, {lit(n)}, {{\"no_such_parameter\": 1}}, \"no_such_parameter\")")
        return lines

    def _t_list_records(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        table, key, n, sf = snake(rec.name), id_column(rec.name), tool.name, rec.status_field
        return [
            f"def test_{n}_lists_the_persons_records(db):",
            f'    pid = pick(db, "SELECT person_id FROM {table} ORDER BY {key}")',
            f"    rows = call(db, {lit(n)}, person_id=pid)",
            f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE person_id = ? ORDER BY {key}", pid)',
            f"    assert all(r == fetch(db, {lit(table)}, {lit(key)}, r[{lit(key)}]) for r in rows)",
            f'    status = pick(db, "SELECT {sf} FROM {table} WHERE person_id = ? ORDER BY {key}", pid)',
            f"    rows = call(db, {lit(n)}, person_id=pid, {sf}=status)",
            f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE person_id = ? AND {sf} = ? ORDER BY {key}", pid, status)',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{"person_id": pick(db, "SELECT person_id FROM {table} ORDER BY {key}")}}',
            *self._bad_id_tests(tool, "person_id", "args", label(self.domain.role), "P-9999"),
            f"    rejected(db, {lit(n)}, {{**args, {lit(sf)}: \"not a listed value\"}}, {lit(sf)})",
        ]

    def _t_summary(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        table, key, n, sf, amount = snake(rec.name), id_column(rec.name), tool.name, rec.status_field, tool.amount_field
        total = f"round(sum(float(v or 0) for v in ids(db, \"SELECT {amount} FROM {table} WHERE person_id = ?{{}}\", {{}})), 2)"
        return [
            f"def test_{n}_counts_and_totals_the_persons_records(db):",
            f'    pid = pick(db, "SELECT person_id FROM {table} GROUP BY person_id ORDER BY COUNT(*) DESC, person_id")',
            f"    out = call(db, {lit(n)}, person_id=pid)",
            f'    statuses = ids(db, "SELECT {sf} FROM {table} WHERE person_id = ?", pid)',
            f'    assert out["count"] == len(statuses) >= 1 and out["person_id"] == pid',
            f'    assert out["by_status"] == {{s: statuses.count(s) for s in sorted(set(statuses))}}',
            f'    assert out[{lit("total_" + amount)}] == ' + total.format("", "pid"),
            f'    status = pick(db, "SELECT {sf} FROM {table} WHERE person_id = ? ORDER BY {key}", pid)',
            f"    out = call(db, {lit(n)}, person_id=pid, {sf}=status)",
            f'    assert out["count"] == statuses.count(status) and out["by_status"] == {{status: statuses.count(status)}}',
            f'    assert out[{lit("total_" + amount)}] == ' + total.format(f" AND {sf} = ?", "pid, status"),
            f'    empty = pick(db, "SELECT person_id FROM {self.role} WHERE person_id NOT IN (SELECT person_id FROM {table}) '
            f'UNION SELECT \'\' ORDER BY 1 DESC")',
            "    if empty:  # a person without any: zero, not an error",
            f'        assert call(db, {lit(n)}, person_id=empty) == {{"person_id": empty, {lit(sf)}: None, "count": 0, '
            f'{lit("total_" + amount)}: 0, "by_status": {{}}}}',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{"person_id": pick(db, "SELECT person_id FROM {table} ORDER BY {key}")}}',
            *self._bad_id_tests(tool, "person_id", "args", label(self.domain.role), "P-9999"),
            f"    rejected(db, {lit(n)}, {{**args, {lit(sf)}: \"not a listed value\"}}, {lit(sf)})",
        ]

    def _t_browse(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        table, key, n, amount = snake(item.name), id_column(item.name), tool.name, tool.amount_field
        ceiling = browse_ceiling(tool)
        params = tool_parameters(self.domain, tool)["properties"]
        order = f"ORDER BY {amount}, {key} LIMIT 20"
        lines = [
            f"def test_{n}_filters_caps_and_sorts_cheapest_first(db):",
            f"    everything = call(db, {lit(n)})",
            f'    assert [r[{lit(key)}] for r in everything] == ids(db, "SELECT {key} FROM {table} WHERE {amount} IS NOT NULL {order}")',
            f"    assert all(r == fetch(db, {lit(table)}, {lit(key)}, r[{lit(key)}]) for r in everything)",
            f'    cap = pick(db, "SELECT MAX({amount}) FROM (SELECT {amount} FROM {table} WHERE {amount} IS NOT NULL ORDER BY {amount} LIMIT 4)")',
            f"    rows = call(db, {lit(n)}, {ceiling}=cap)",
            f'    assert rows and [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE {amount} <= ? {order}", cap)',
        ]
        for f in tool.fields:
            conv = "bool" if params[f]["type"] == "boolean" else ""
            lines += [
                f'    value = {conv}(pick(db, "SELECT {f} FROM {table} WHERE {amount} IS NOT NULL ORDER BY {key}"))',
                f"    rows = call(db, {lit(n)}, {f}=value, {ceiling}=cap)",
                f"    assert all(r[{lit(f)}] == value and r[{lit(amount)}] <= cap for r in rows)",
                f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE {f} = ? AND {amount} <= ? {order}", value, cap)',
            ]
        lines += ["", "", f"def test_{n}_rejects_bad_arguments(db):"]
        for f in [*tool.fields, ceiling]:
            lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: {lit(_wrong_type(params[f]))}}}, {lit(f)})")
            if "enum" in params[f]:
                lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: \"not a listed value\"}}, {lit(f)})")
        lines.append(f"    rejected(db, {lit(n)}, {{\"no_such_parameter\": 1}}, \"no_such_parameter\")")
        return lines

    def _t_create(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        target = find(self.domain, rec.target)
        table, key, n = snake(rec.name), id_column(rec.name), tool.name
        ttable, tkey = snake(target.name), id_column(target.name)
        found = checks(self.domain, tool)
        person_ok = [(c, True) for c in found if c.subject in ("person", "member")]
        target_ok = [(c, True) for c in found if c.subject == "target"]
        args = self.good_args(tool, rec)
        find_person = self.select(self.role, "person_id", person_ok, rec, "p")
        find_target = self.select(ttable, tkey, target_ok, target, "t")
        rest = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in args.items())
        setup = [
            f"    person = pick(db, {lit(find_person)})",
            f"    target = pick(db, {lit(find_target)})",
            f"    args = {{\"person_id\": person, {lit(tkey)}: target, " + rest + "}",
        ]
        if linked(self.domain, rec):  # the target is a record: one of the person's own
            setup = [f"    args = {{{rest}}}", *self.owned(rec, target_ok, person_ok)]
        lines = [
            f"def test_{n}_creates_the_{table}(db):",
            *setup,
            f'    count = pick(db, "SELECT COUNT(*) FROM {table}")',
            f"    new_id = next_id(db, {lit(table)}, {lit(key)}, {lit(rec.id_prefix)})",
            f"    out = call(db, {lit(n)}, **args)",
            *self._fee_lines(tool, "args"),
            f"    assert out[{lit(key)}] == new_id",
            f"    row = fetch(db, {lit(table)}, {lit(key)}, new_id)",
            "    assert out == row",
            f'    assert pick(db, "SELECT COUNT(*) FROM {table}") == count + 1',
            f'    assert row["person_id"] == person and row[{lit(tkey)}] == target',
        ]
        for f in args:
            lines.append(f"    assert row[{lit(f)}] == args[{lit(f)}]")
        fixed = dict(tool.defaults)
        fixed.setdefault(rec.status_field, rec.statuses[0])
        for f, v in fixed.items():
            if f not in args:
                lines.append(f"    assert row[{lit(f)}] == {lit(v)}")
        price = charged(self.domain, tool)
        if price is not None:
            lines += [f"    t = fetch(db, {lit(ttable)}, {lit(tkey)}, target)",
                      f"    assert row[{lit(price.amount)}] == {_charge_src(price, 't', 'args')}"]
        elif tool.amount_field and tool.amount_field not in args and tool.amount_field not in fixed:
            column, fallback = amount_source(self.domain, rec, tool.amount_field)
            if column:
                lines.append(f"    assert row[{lit(tool.amount_field)}] == fetch(db, {lit(ttable)}, {lit(tkey)}, target)[{lit(column)}]")
            else:
                lines.append(f"    assert row[{lit(tool.amount_field)}] == {lit(fallback)}")
        lines += ["", "", f"def test_{n}_rejects_bad_arguments(db):", *setup,
                  *self._bad_id_tests(tool, "person_id", "args", label(self.domain.role), "P-9999"),
                  *self._bad_id_tests(tool, tkey, "args", label(target.name), f"{target.id_prefix}-9999")[:1]]
        params = tool_parameters(self.domain, tool)["properties"]
        lines += _field_rejections(n, params, list(args))
        if linked(self.domain, rec):
            lines += ["", "", f"def test_{n}_refuses_another_persons_{snake(target.name)}(db):", *setup,
                      f'    other = pick(db, "SELECT person_id FROM {self.role} WHERE person_id <> ? ORDER BY person_id", person)',
                      f'    rejected(db, {lit(n)}, {{**args, "person_id": other}}, "belongs to another person")']
        for i, check in enumerate(found):
            lines += ["", ""] + self._create_violation(tool, rec, target, found, i, setup, find_person, find_target)
        return lines

    def owned(self, rec: CatalogRecord, target_conds: list[tuple[Check, bool]], person_conds: list[tuple[Check, bool]],
              extra: tuple[str, ...] = ()) -> list[str]:
        """Lines choosing a target record meeting `target_conds` whose own person meets `person_conds`,
        and acting as that person (a record naming another record must name one of the person's own)."""
        target = find(self.domain, rec.target)
        ttable, tkey = snake(target.name), id_column(target.name)
        where = [self.sql(c, h, target, "t") for c, h in target_conds] + [self.sql(c, h, rec, "p") for c, h in person_conds]
        sql = (f"SELECT t.{tkey} FROM {ttable} t JOIN {self.role} p ON p.person_id = t.person_id"
               + (" WHERE " + " AND ".join([*where, *extra]) if where or extra else "") + f" ORDER BY t.{tkey}")
        return [f"    args[{lit(tkey)}] = target = pick(db, {lit(sql)})",
                f'    args["person_id"] = person = pick(db, "SELECT person_id FROM {ttable} WHERE {tkey} = ?", target)']

    def _create_violation(self, tool: CatalogTool, rec: CatalogRecord, target: CatalogEntity | CatalogRecord,
                          found: list[Check], i: int, setup: list[str], find_person: str, find_target: str) -> list[str]:
        check = found[i]
        head = f"def test_{tool.name}_enforces_{_ident(check.label)}(db):"
        needle = lit(check.label)
        if linked(self.domain, rec) and check.subject != "arg":
            return self._linked_violation(tool, rec, found, i, head, setup)
        if check.subject == "arg":
            bad = self.bad_values(tool, check)
            if not bad:
                return [f"# {check.label} cannot be broken without breaking an earlier rule first"]
            if check.when is not None:  # a tier's limit: act as a person of that tier
                head = f"def test_{tool.name}_enforces_{_ident(check.label)}_for_{_ident(str(check.when[1]))}(db):"
                person_ok = [(c, True) for c in found if c.subject in ("person", "member")]
                tiered = self.select(self.role, "person_id", person_ok, rec, "p", (self.tier(check, "p"),))
                if linked(self.domain, rec):
                    target_ok = [(c, True) for c in found if c.subject == "target"]
                    setup = [*setup, *self.owned(rec, target_ok, person_ok, (self.tier(check, "p"),))]
                else:
                    setup = [*setup, f"    args[\"person_id\"] = pick(db, {lit(tiered)})"]
            return [head, *setup, f"    for bad in {lit(bad)}:",
                    f"        rejected(db, {lit(tool.name)}, {{**args, {lit(check.field)}: bad}}, {needle})"]
        same = [(c, True) for c in found[:i] if c.subject == check.subject] + [(check, False)]
        subject = rec if check.subject in ("person", "member") else target
        if check.subject == "target" and solve(target, same) is None:
            return [f"# {check.label} cannot be broken without breaking an earlier rule first"]
        if check.subject in ("person", "member"):
            same = [(c, True) for c in found[:i] if c.subject in ("person", "member")] + [(check, False)]
            sql = self.select(self.role, "person_id", same, rec, "p")
            swap = [f"    args[\"person_id\"] = pick(db, {lit(sql)})"]
        else:
            tkey = id_column(subject.name)
            sql = self.select(snake(subject.name), tkey, same, subject, "t")
            swap = [f"    args[{lit(tkey)}] = pick(db, {lit(sql)})"]
        return [head, *setup, *swap, f"    rejected(db, {lit(tool.name)}, args, {needle})"]

    def _linked_violation(self, tool: CatalogTool, rec: CatalogRecord, found: list[Check], i: int, head: str,
                          setup: list[str]) -> list[str]:
        """A create naming one of the person's own records, where the person or that record breaks check i."""
        check, people = found[i], ("person", "member")
        target_conds = [(c, True) for c in found if c.subject == "target"]
        person_conds = [(c, True) for c in found if c.subject in people]
        if check.subject == "target":
            target_conds = [(c, True) for c in found[:i] if c.subject == "target"] + [(check, False)]
            if solve(find(self.domain, rec.target), target_conds) is None:
                return [f"# {check.label} cannot be broken without breaking an earlier rule first"]
        else:
            person_conds = [(c, True) for c in found[:i] if c.subject in people] + [(check, False)]
        return [head, *setup, *self.owned(rec, target_conds, person_conds),
                f"    rejected(db, {lit(tool.name)}, args, {lit(check.label)})"]

    def _row_tool(self, tool: CatalogTool, effect: list[str]) -> list[str]:
        """Tests shared by set_status / update / pay: permitted case, each check's rejection, bad ids."""
        item = find(self.domain, tool.entity or "")
        table, key, n = snake(item.name), id_column(item.name), tool.name
        found = checks(self.domain, tool)
        row_ok = [(c, True) for c in found if c.subject in ("row", "target", "member")]
        extra = self.good_args(tool, item)
        if tool.kind == "pay":
            extra["payment_method"] = tool_parameters(self.domain, tool)["properties"]["payment_method"]["enum"][0]
        extra_src = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in extra.items())
        if owned(self.domain, tool):  # the record's owner acts
            extra_src = ", ".join([f'"person_id": fetch(db, {lit(table)}, {lit(key)}, key)["person_id"]'] + ([extra_src] if extra_src else []))
        lines = [
            f"def test_{n}_is_permitted(db):",
            f"    key = pick(db, {lit(self.select(table, key, row_ok, item, 'r'))})",
            f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
            f"    before = fetch(db, {lit(table)}, {lit(key)}, key)",
            f"    out = call(db, {lit(n)}, **args)",
            *self._fee_lines(tool, "before" if (fee_check(self.domain, tool) or Check("", "arg", "")).subject == "row" else "args"),
            f"    after = fetch(db, {lit(table)}, {lit(key)}, key)",
            *effect,
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f"    key = pick(db, {lit(self.select(table, key, row_ok, item, 'r'))})",
            f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
            *self._bad_id_tests(tool, key, "args", label(item.name), f"{item.id_prefix}-9999"),
        ]
        params = tool_parameters(self.domain, tool)["properties"]
        lines += _field_rejections(n, params, list(extra))
        if tool.kind == "update" and len(tool.fields) > 1:
            lines.append(f"    rejected(db, {lit(n)}, {{{lit(key)}: key}}, \"Nothing to change\")")
        for i, check in enumerate(found):
            lines += ["", ""]
            name = f"def test_{n}_enforces_{_ident(check.label)}(db):" if check.is_rule else \
                f"def test_{n}_refuses_{'a_row_in_a_wrong_status' if check.label == 'guard' else 'a_row_already_' + _ident(str(check.values[0]))}(db):"
            needle = lit(check.label) if check.is_rule else (lit("status") if check.kind == "status_in" else lit("already"))
            if check.kind == "owner":  # a permitted row, asked for by someone else (and by no one known)
                lines += [name,
                          f"    key = pick(db, {lit(self.select(table, key, row_ok, item, 'r'))})",
                          f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
                          f"    rejected(db, {lit(n)}, {{**args, \"person_id\": \"P-9999\"}}, \"P-9999 not found\")",
                          f"    other = pick(db, \"SELECT person_id FROM {self.role} WHERE person_id <> ? ORDER BY person_id\", "
                          "args[\"person_id\"])",
                          f"    rejected(db, {lit(n)}, {{**args, \"person_id\": other}}, {needle})"]
                continue
            if check.subject == "arg":
                bad = self.bad_values(tool, check)
                if not bad:
                    lines[-2:] = []
                    continue
                tier = (self.tier(check, "r"),) if check.when is not None else ()
                chosen = self.select(table, key, row_ok, item, 'r', tier)
                if tier:  # a tier's limit: a row of a person of that tier
                    name = name.replace("(db):", f"_for_{_ident(str(check.when[1]))}(db):")
                lines += [name,
                          f"    key = pick(db, {lit(chosen)})",
                          f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
                          f"    for bad in {lit(bad)}:",
                          f"        rejected(db, {lit(n)}, {{**args, {lit(check.field)}: bad}}, {needle})"]
                continue
            case = [(c, True) for c in found[:i] if c.subject in ("row", "target", "member")] + [(check, False)]
            solvable = solve(item, [(c, h) for c, h in case if c.subject == "row"])
            if solvable is None:
                lines[-2:] = []
                continue
            lines += [name,
                      f"    key = pick(db, {lit(self.select(table, key, case, item, 'r'))})",
                      f"    rejected(db, {lit(n)}, {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}, {needle})"]
        return lines

    def _fee_lines(self, tool: CatalogTool, source: str) -> list[str]:
        """A tool with a computed fee returns it: percent% of the base amount (an argument or the row's
        column before the call), computed here from the rule, not by calling the implementation."""
        fee = fee_check(self.domain, tool)
        if fee is None:
            return []
        base = f"{source}.get({lit(fee.field)})"
        return [f"    fee = out.pop(\"fee\")",
                f"    assert fee == (None if {base} is None else round(float({base}) * {fee.percent!r} / 100, 2))"]

    def _t_set_status(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        sf = item.status_field if isinstance(item, CatalogRecord) else "status"
        return self._row_tool(tool, [
            f"    assert after[{lit(sf)}] == {lit(tool.to)} and out == after",
            f"    assert {{k: v for k, v in after.items() if k != {lit(sf)}}} == {{k: v for k, v in before.items() if k != {lit(sf)}}}",
        ])

    def _t_update(self, tool: CatalogTool) -> list[str]:
        fields = list(tool.fields)
        price = charged(self.domain, tool)
        recharge: list[str] = []
        if price is not None and price.quantity in self.good_args(tool, find(self.domain, tool.entity or "")):
            rec = find(self.domain, tool.entity or "")
            assert isinstance(rec, CatalogRecord)
            target = find(self.domain, rec.target)
            tkey = id_column(target.name)
            fields.append(price.amount)  # the amount follows the new quantity
            recharge = [f"    t = fetch(db, {lit(snake(target.name))}, {lit(tkey)}, before[{lit(tkey)}])",
                        f"    assert after[{lit(price.amount)}] == {_charge_src(price, 't', 'args')}"]
        return self._row_tool(tool, [
            "    assert out == after",
            *[f"    assert after[{lit(f)}] == args[{lit(f)}]" for f in tool.fields],
            *recharge,
            f"    assert {{k: v for k, v in after.items() if k not in {lit(fields)}}} == {{k: v for k, v in before.items() if k not in {lit(fields)}}}",
        ])

    def _t_pay(self, tool: CatalogTool) -> list[str]:
        pf = pay_field(tool)
        lines = [
            f"    assert after[{lit(pf)}] == {lit(tool.to)}",
            f"    assert {{k: v for k, v in after.items() if k != {lit(pf)}}} == {{k: v for k, v in before.items() if k != {lit(pf)}}}",
            '    assert out["payment_method"] == args["payment_method"]',
        ]
        if tool.amount_field:
            lines.append(f'    assert out["amount_paid"] == before[{lit(tool.amount_field)}]')
        return self._row_tool(tool, lines)


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


def implementation_tests(domain: CatalogDomain, clock: str) -> str:
    """The source of test_impl.py: pytest tests for `impl.py` run against `db.sqlite` beside it."""
    writer = _Writer(domain, clock)
    bools = bool_columns(domain)
    bools_src = "{" + ", ".join(f"{lit(t)}: {{{', '.join(lit(c) for c in cols)}}}" for t, cols in sorted(bools.items())) + "}"
    head = (_HEADER.replace("__SERVER__", domain.name).replace("__CLOCK__", clock)
            .replace("__SERVER_LIT__", lit(domain.name)).replace("__CLOCK_LIT__", lit(clock))
            .replace("__TOOL_NAMES__", lit([t.name for t in domain.tools])).replace("__BOOLS__", bools_src))
    parts = [head]
    for tool in domain.tools:
        parts.append("\n\n# ---------------------------------------------------------------- " + tool.name + "\n")
        parts.append("\n".join(writer.tool_tests(tool)).rstrip() + "\n")
    source = "".join(parts)
    compile(source, "test_impl.py", "exec")
    return source
