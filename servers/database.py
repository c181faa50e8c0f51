"""Trusted, read-only views of an environment's SQLite file: integrity, summary, state hash, diff, JSON dump."""
from __future__ import annotations

import hashlib
import json
import json.encoder
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

__all__ = [
    "ColumnSummary",
    "DatabaseSummary",
    "FKViolation",
    "IntegrityReport",
    "RowChange",
    "TableSummary",
    "canonical_value",
    "dump_json",
    "integrity_report",
    "state_diff",
    "state_hash",
    "summarize",
]

SMALL_SET = 12  # a column with at most this many distinct values lists them in the summary
SAMPLE_IDS = 3


class FKViolation(BaseModel):
    """One row whose foreign key points at a missing parent row."""

    model_config = ConfigDict(frozen=True)
    table: str
    rowid: int | None
    column: str
    parent: str
    value: Any = None


class IntegrityReport(BaseModel):
    """What is structurally wrong with a database; `ok` when nothing is."""

    model_config = ConfigDict(frozen=True)
    fk_violations: list[FKViolation] = []
    tables_without_pk: list[str] = []
    empty_tables: list[str] = []
    duplicate_person_ids: dict[str, list[str]] = {}  # table -> person ids that appear more than once
    null_primary_keys: list[str] = []  # tables holding a NULL in a primary-key column

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not (self.fk_violations or self.tables_without_pk or self.empty_tables
                    or self.duplicate_person_ids or self.null_primary_keys)

    def problems(self) -> list[str]:
        """One line per problem, for logs and repair prompts."""
        lines = [f"{v.table}.{v.column}={v.value!r} (rowid {v.rowid}) has no row in {v.parent}"
                 for v in self.fk_violations]
        lines += [f"table {t} has no primary key" for t in self.tables_without_pk]
        lines += [f"table {t} is empty" for t in self.empty_tables]
        lines += [f"table {t} repeats person ids {ids}" for t, ids in self.duplicate_person_ids.items()]
        lines += [f"table {t} has NULL primary keys" for t in self.null_primary_keys]
        return lines


class ColumnSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    type: str  # declared SQL type
    nulls: int
    distinct: int
    min: Any = None
    max: Any = None
    values: list[Any] | None = None  # all distinct values when there are at most SMALL_SET


class TableSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    rows: int
    primary_key: list[str]
    columns: list[ColumnSummary]
    sample_ids: list[Any]  # first primary keys in key order (a list per row for composite keys)


class DatabaseSummary(BaseModel):
    """Deterministic overview of every table, small enough for a prompt."""

    model_config = ConfigDict(frozen=True)
    tables: list[TableSummary]


class RowChange(BaseModel):
    """One row that differs between two states. For `changed`, before/after hold only the differing columns."""

    model_config = ConfigDict(frozen=True)
    table: str
    key: Any
    kind: Literal["added", "removed", "changed"]
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


# --- reading -----------------------------------------------------------------

@contextmanager
def _connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    # The file may have been shaped by untrusted code: open read-only and distrust its schema.
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    if not Path(path).is_file():
        raise FileNotFoundError(f"no SQLite file at {path}")
    conn = sqlite3.connect(uri, uri=True)
    try:
        yield _distrusting(conn)
    finally:
        conn.close()


@contextmanager
def _connect_bytes(data: bytes) -> Iterator[sqlite3.Connection]:
    """`_connect` over the bytes of a rollback-journal file with no hot journal (the caller checks), in memory."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(data)
        yield _distrusting(conn)
    finally:
        conn.close()


def _distrusting(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute("PRAGMA trusted_schema=OFF")
    conn.execute("PRAGMA cell_size_check=ON")
    conn.execute("PRAGMA query_only=ON")
    return conn


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
    return sorted(r[0] for r in rows)


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, int]]:
    """(name, declared type, position in primary key or 0) in declaration order."""
    return [(r[1], r[2] or "", r[5]) for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]


def _pk(cols: list[tuple[str, str, int]]) -> list[str]:
    return [name for name, _, pos in sorted((c for c in cols if c[2]), key=lambda c: c[2])]


# --- canonical values --------------------------------------------------------

def canonical_value(value: Any) -> Any:
    """Normalize one SQLite value so equal states hash equally (3 == 3.0, 0.1+0.2 == 0.3)."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"$float": repr(value)}
        rounded = round(value, 6)
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, (bytes, memoryview)):
        return {"$blob": bytes(value).hex()}
    return value


def _rank(value: Any) -> tuple[int, Any]:
    # SQLite's own cross-type order (NULL < numbers < text < blob), so mixed columns still sort.
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, dict):
        return (3, json.dumps(value, sort_keys=True))
    return (4, repr(value))


def _canonical_rows(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(sorted column names, pk columns, rows as canonical dicts sorted by key then by content)."""
    cols = _columns(conn, table)
    names = sorted(c[0] for c in cols)
    pk = _pk(cols)
    select = ", ".join(_q(n) for n in names)
    rows = [dict(zip(names, map(canonical_value, r)))
            for r in conn.execute(f"SELECT {select} FROM {_q(table)}")] if names else []
    rows.sort(key=lambda r: ([_rank(r[k]) for k in pk], [_rank(r[n]) for n in names]))
    return names, pk, rows


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# The C encoder built once (what `_dumps` builds on every call); same output, a quarter of the cost per row.
_c_encoder = json.encoder.c_make_encoder and json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _no_default, json.encoder.encode_basestring, None, ":", ",", False, False, False)


def _encode(row: Any) -> str:
    return "".join(_c_encoder(row, 0)) if _c_encoder else _dumps(row)
_FLOATISH = (float, bytes, memoryview)


DumpPlan = tuple[bytes, str, list[int], bool]  # header line, SELECT ('' without columns), key positions, keyed


def _dump_plan(conn: sqlite3.Connection, table: str) -> DumpPlan:
    """How `_table_dump` reads a table: the same for every state with the same schema."""
    cols = _columns(conn, table)
    names = sorted(c[0] for c in cols)
    head = _dumps({"table": table, "columns": names}).encode() + b"\n"
    if not names:
        return head, "", [], False
    pk = _pk(cols)
    keyed = bool(pk) and conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
    order = " ORDER BY " + ", ".join(f"{_q(c)} COLLATE BINARY" for c in pk) if keyed else ""
    select = f"SELECT {', '.join(_q(n) for n in names)} FROM {_q(table)}{order}"
    return head, select, [names.index(k) for k in pk], keyed


_LINES_KEPT = 200_000  # rows' dump lines remembered across states (see `row_line`); more: start afresh


def row_line(lines: dict[tuple, str], row: tuple) -> str:
    """A row's line of the canonical dump, remembered in `lines` (equal rows, equal lines)."""
    if (line := lines.get(row)) is None:
        line = lines[row] = _encode(tuple(map(canonical_value, row)))
    return line


def _table_dump(conn: sqlite3.Connection, table: str, lines: dict[tuple, str] | None = None,
                plan: DumpPlan | None = None) -> bytes:
    """One table's share of the canonical dump: a header line, then one JSON array per row in key order.

    Rows come back from SQLite already in primary-key order; that order is the canonical one whenever
    every key value is an integer or a UTF-8 string and keys are unique (BINARY collation compares
    UTF-8 bytes, i.e. code points, and puts numbers before text, as `_rank` does). Anything else
    (float or NULL keys, duplicates, no key, UTF-16 files) is sorted here exactly as before. `lines` keeps
    each row's line (equal rows, equal lines): a table dumped again encodes only the rows that changed.
    """
    head, select, where, keyed = plan or _dump_plan(conn, table)
    if not select:
        return head
    raw = conn.execute(select).fetchall()
    if not raw:
        return head
    columns = list(zip(*raw))
    keys = [tuple(map(canonical_value, c)) if any(t in _FLOATISH for t in set(map(type, c))) else c
            for c in (columns[i] for i in where)]
    ordered = keyed and all(set(map(type, k)) <= {int, str} for k in keys) and len(set(zip(*keys))) == len(raw)
    if ordered and lines is not None:
        if len(lines) > _LINES_KEPT:
            lines.clear()
        got = list(map(lines.get, raw))
        if None in got:
            got = [g or row_line(lines, r) for g, r in zip(got, raw)]
        return head + ("\n".join(got) + "\n").encode()
    for i, col in enumerate(columns):  # only columns holding floats or blobs need normalizing
        if any(t in _FLOATISH for t in set(map(type, col))):
            columns[i] = tuple(map(canonical_value, col))
    rows = list(zip(*columns))
    if not ordered:
        rows.sort(key=lambda r: ([_rank(r[i]) for i in where], [_rank(v) for v in r]))
    return head + ("\n".join(map(_encode, rows)) + "\n").encode()


# --- public functions --------------------------------------------------------

def state_hash(path: str | Path) -> str:
    """SHA-256 of a canonical dump: tables and columns sorted by name, rows by key, numbers normalized."""
    digest = hashlib.sha256()
    with _connect(path) as conn:
        for table in _tables(conn):
            digest.update(_table_dump(conn, table))
    return digest.hexdigest()


def state_diff(a_path: str | Path, b_path: str | Path) -> list[RowChange]:
    """Rows added, removed or changed from state a to state b (values compared canonically)."""
    from skiller.servers.diff import rows_diff  # deferred: the diff builds on this module's readers
    return rows_diff(a_path, b_path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return repr(value)
    return value


def dump_json(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows (declared column order, sorted by primary key), for exports and humans."""
    out: dict[str, list[dict[str, Any]]] = {}
    with _connect(path) as conn:
        utf8 = conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
        for table in _tables(conn):
            cols = _columns(conn, table)
            names = [c[0] for c in cols]
            pk = _pk(cols) or names
            # As in `_table_dump`: SQLite's key order is the canonical one for unique int/str keys.
            order = " ORDER BY " + ", ".join(f"{_q(c)} COLLATE BINARY" for c in pk) if utf8 and _pk(cols) else ""
            raw = conn.execute(f"SELECT * FROM {_q(table)}{order}").fetchall()
            where = [names.index(k) for k in pk]
            keys = [tuple(r[i] for i in where) for r in raw]
            if not (order and all(type(v) in (int, str) for key in keys for v in key) and len(set(keys)) == len(keys)):
                if order:  # ties keep storage order, exactly as before the fast path
                    raw = conn.execute(f"SELECT * FROM {_q(table)}").fetchall()
                raw.sort(key=lambda r: ([_rank(canonical_value(_jsonable(r[i]))) for i in where],
                                        [_rank(canonical_value(_jsonable(v))) for v in r]))
            plain = [i for i, c in enumerate(zip(*raw)) if not any(t in _FLOATISH for t in set(map(type, c)))]
            if len(plain) == len(names):
                out[table] = [dict(zip(names, r)) for r in raw]
            else:
                out[table] = [dict(zip(names, map(_jsonable, r))) for r in raw]
    return out


def integrity_report(path: str | Path) -> IntegrityReport:
    """Foreign-key violations, tables without a primary key, empty tables, repeated person ids."""
    with _connect(path) as conn:
        tables = _tables(conn)
        fk_lists = {t: {r[0]: (r[3], r[2]) for r in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (t,))}
                    for t in tables}
        violations: list[FKViolation] = []
        for table, rowid, parent, fkid in conn.execute("PRAGMA foreign_key_check"):
            column, _ = fk_lists.get(table, {}).get(fkid, ("?", parent))
            value = None
            if rowid is not None and column != "?":
                hit = conn.execute(f"SELECT {_q(column)} FROM {_q(table)} WHERE rowid=?", (rowid,)).fetchone()
                value = _jsonable(hit[0]) if hit else None
            violations.append(FKViolation(table=table, rowid=rowid, column=column, parent=parent, value=value))
        violations.sort(key=lambda v: (v.table, v.rowid or 0, v.column))
        no_pk, empty, nulls = [], [], []
        dupes: dict[str, list[str]] = {}
        for table in tables:
            cols = _columns(conn, table)
            pk = _pk(cols)
            if not pk:
                no_pk.append(table)
            if conn.execute(f"SELECT 1 FROM {_q(table)} LIMIT 1").fetchone() is None:
                empty.append(table)
            if pk and conn.execute(f"SELECT 1 FROM {_q(table)} WHERE "
                                   + " OR ".join(f"{_q(c)} IS NULL" for c in pk) + " LIMIT 1").fetchone():
                nulls.append(table)
            # person ids must be unique in `person` and in every role table keyed by person_id
            if table == "person" or pk == ["person_id"]:
                if "person_id" in {c[0] for c in cols}:
                    rep = [str(r[0]) for r in conn.execute(
                        f"SELECT person_id FROM {_q(table)} WHERE person_id IS NOT NULL "
                        "GROUP BY person_id HAVING COUNT(*) > 1 ORDER BY person_id")]
                    if rep:
                        dupes[table] = rep
    return IntegrityReport(fk_violations=violations, tables_without_pk=no_pk, empty_tables=empty,
                           duplicate_person_ids=dupes, null_primary_keys=nulls)


def summarize(path: str | Path) -> DatabaseSummary:
    """Per table: row count, per-column type/nulls/distinct/min/max (values for small sets), sample ids."""
    tables: list[TableSummary] = []
    with _connect(path) as conn:
        for table in _tables(conn):
            cols = _columns(conn, table)
            pk = _pk(cols)
            qt = _q(table)
            count = conn.execute(f"SELECT COUNT(*) FROM {qt}").fetchone()[0]
            columns: list[ColumnSummary] = []
            for name, decl, _ in cols:
                qc = _q(name)
                nulls, distinct, lo, hi = conn.execute(
                    f"SELECT SUM({qc} IS NULL), COUNT(DISTINCT {qc}), MIN({qc}), MAX({qc}) FROM {qt}").fetchone()
                values = None
                if distinct <= SMALL_SET:
                    values = sorted((canonical_value(v) for (v,) in conn.execute(
                        f"SELECT DISTINCT {qc} FROM {qt} WHERE {qc} IS NOT NULL")), key=_rank)
                columns.append(ColumnSummary(name=name, type=decl, nulls=nulls or 0, distinct=distinct,
                                             min=canonical_value(lo), max=canonical_value(hi), values=values))
            samples: list[Any] = []
            if pk:
                order = ", ".join(_q(c) for c in pk)
                for r in conn.execute(f"SELECT {order} FROM {qt} ORDER BY {order} LIMIT ?", (SAMPLE_IDS,)):
                    samples.append(canonical_value(r[0]) if len(r) == 1 else [canonical_value(v) for v in r])
            tables.append(TableSummary(name=table, rows=count, primary_key=pk, columns=columns, sample_ids=samples))
    return DatabaseSummary(tables=tables)
