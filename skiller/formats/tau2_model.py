"""τ²-bench export, database half: an environment's SQLite file as `db.json` plus its pydantic data model."""
from __future__ import annotations

import json
import keyword
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from skiller.formats.common import ExportError, pascal, py_literal
from skiller.servers.query import snapshot

# Names a generated module imports or BaseModel defines: a column or table with such a name gets a
# safe field name and keeps its own as the alias.
_TAKEN = {"Any", "BaseModel", "ConfigDict", "DB", "Dict", "Field", "Optional", "Union"}
# τ²-bench's DB methods: a table must not shadow them.
_DB_METHODS = frozenset({"load", "dump", "get_hash", "get_json_schema", "get_statistics"})


class Column(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    declared: str
    notnull: bool
    primary: bool


class Table(BaseModel):
    """One table as exported: columns, primary key, and rows (storage order) keyed like db.json."""

    model_config = ConfigDict(frozen=True)
    name: str
    columns: list[Column]
    primary_key: list[str]
    rows: dict[str, dict[str, Any]]


class Database(BaseModel):
    model_config = ConfigDict(frozen=True)
    tables: list[Table]
    schema_sql: list[tuple[str, str]]  # (type, statement) in creation order

    def data(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {t.name: t.rows for t in self.tables}


def row_key(row: dict[str, Any], primary_key: list[str], index: int) -> str:
    """Must equal `row_key` in the shipped runtime: the primary key value(s), or the row's position."""
    if not primary_key:
        return str(index)
    return "|".join(str(row[column]) for column in primary_key)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value(table: str, column: str, value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        raise ExportError(f"{table}.{column} holds a BLOB; db.json cannot carry binary values")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExportError(f"{table}.{column} holds {value!r}; db.json cannot carry it")
    return value


def read_database(content: bytes) -> Database:
    """Tables, columns and rows of a SQLite file (opened read-only; rows in storage order)."""
    with snapshot(content) as path:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA trusted_schema=OFF")
            schema = [(kind, sql) for kind, sql in conn.execute(
                "SELECT type, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY rowid")]
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY name")]
            tables = [_table(conn, name) for name in names]
        finally:
            conn.close()
    return Database(tables=tables, schema_sql=schema)


def _table(conn: sqlite3.Connection, name: str) -> Table:
    info = list(conn.execute("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", (name,)))
    columns = [Column(name=c, declared=t or "", notnull=bool(nn), primary=bool(pk)) for c, t, nn, pk in info]
    primary_key = [c for c, _, _, pk in sorted((r for r in info if r[3]), key=lambda r: r[3])]
    try:
        cursor = conn.execute(f"SELECT * FROM {_q(name)} ORDER BY rowid")
    except sqlite3.OperationalError:  # WITHOUT ROWID
        cursor = conn.execute(f"SELECT * FROM {_q(name)}")
    cols = [d[0] for d in cursor.description]
    rows: dict[str, dict[str, Any]] = {}
    for index, values in enumerate(cursor):
        row = {c: _value(name, c, v) for c, v in zip(cols, values)}
        key = row_key(row, primary_key, index)
        if key in rows:
            raise ExportError(f"table {name} has two rows under key {key!r}; db.json needs unique keys")
        rows[key] = row
    return Table(name=name, columns=columns, primary_key=primary_key, rows=rows)


# --- the data model module ---------------------------------------------------------------------

def _affinity(declared: str) -> str:
    """SQLite's column affinity rules, as the Python type the column normally holds."""
    d = declared.upper()
    if "INT" in d:
        return "int"
    if any(k in d for k in ("CHAR", "CLOB", "TEXT")):
        return "str"
    if "BLOB" in d or not d:
        return "Any"
    if any(k in d for k in ("REAL", "FLOA", "DOUB")):
        return "float"
    return "Union[int, float]"


def _annotation(table: Table, column: Column) -> str:
    base = _affinity(column.declared)
    seen = {type(r[column.name]).__name__ for r in table.rows.values() if r[column.name] is not None}
    fits = {"int": {"int"}, "str": {"str"}, "float": {"int", "float"}, "Union[int, float]": {"int", "float"}}
    if base != "Any" and not seen <= fits[base]:  # SQLite kept values the declared type would not
        order = ["int", "float", "str"]
        kinds = sorted(seen | set(fits[base]), key=order.index)
        base = kinds[0] if len(kinds) == 1 else f"Union[{', '.join(kinds)}]"
    nullable = not column.notnull and (not column.primary
                                       or any(r[column.name] is None for r in table.rows.values()))
    return f"Optional[{base}]" if nullable and base != "Any" else base


def field_names(names: list[str], reserved: frozenset[str] = frozenset()) -> dict[str, str]:
    """A safe Python field name for each SQL name (the SQL name stays the alias when they differ)."""
    out: dict[str, str] = {}
    for name in names:
        safe = re.sub(r"\W", "_", name, flags=re.ASCII)
        if not safe or safe[0].isdigit() or safe.startswith("_") or safe.startswith("model_"):
            safe = "f_" + safe.lstrip("_")
        if keyword.iskeyword(safe) or hasattr(BaseModel, safe) or safe in _TAKEN or safe in reserved:
            safe += "_"
        while safe in out.values():
            safe += "_"
        out[name] = safe
    return out


def _field(name: str, alias_of: dict[str, str], annotation: str, default: str | None, description: str) -> str:
    args = [] if default is None else [f"default={default}"]
    if alias_of[name] != name:
        args.append(f"alias={py_literal(name)}")
    args.append(f"description={py_literal(description)}")
    return f"    {alias_of[name]}: {annotation} = Field({', '.join(args)})"


def _class_names(tables: list[Table], db_class: str) -> dict[str, str]:
    out: dict[str, str] = {}
    taken = _TAKEN | {db_class}
    for t in tables:
        name = pascal(t.name) or "Table"
        while name in taken or name in out.values() or not name.isidentifier():
            name = (name if name.isidentifier() else "T" + re.sub(r"\W", "", name, flags=re.ASCII)) + "Row"
        out[t.name] = name
    return out


def data_model_module(environment: str, db_class: str, database: Database) -> str:
    """Source of `data_model.py`: one row model per table and the database model (a τ²-bench `DB`)."""
    classes = _class_names(database.tables, db_class)
    table_fields = field_names([t.name for t in database.tables], _DB_METHODS)
    lines = [
        f'"""Data model of the {environment} environment, exported by Skiller: one pydantic model per',
        'SQLite table, and the database (`db.json`) as every table\'s rows keyed by primary key."""',
        "from typing import Any, Dict, Optional, Union",
        "",
        "from pydantic import BaseModel, ConfigDict, Field",
        "",
        "try:",
        "    from tau2.environment.db import DB",
        "except ImportError:  # τ²-bench is not installed: a stand-in with the same surface",
        "    from ._tau2_compat import DB",
        "",
        "from .utils import DB_PATH",
        "",
        "# The SQLite schema the implementation modules run on: (type, statement) in creation order.",
        f"SQLITE_SCHEMA = {py_literal([tuple(entry) for entry in database.schema_sql])}",
        "# Primary-key columns per table; a row's key in db.json is their values joined by '|'.",
        f"PRIMARY_KEYS = {py_literal({t.name: t.primary_key for t in database.tables})}",
        "",
    ]
    for t in database.tables:
        cols = field_names([c.name for c in t.columns])
        key = ", ".join(t.primary_key) or "row position"
        lines += ["", f"class {classes[t.name]}(BaseModel):",
                  f'    """A row of `{t.name}` (key: {key})."""', "",
                  "    model_config = ConfigDict(extra=\"forbid\", populate_by_name=True)"]
        for c in t.columns:
            annotation = _annotation(t, c)
            optional = annotation.startswith("Optional[")
            lines.append(_field(c.name, cols, annotation, "None" if optional else None,
                                f"{c.declared or 'untyped'} column {c.name}" + (" (primary key)" if c.primary else "")))
        lines.append("")
    lines += ["", f"class {db_class}(DB):",
              f'    """The {environment} database: every table\'s rows by key."""', "",
              "    model_config = ConfigDict(extra=\"forbid\", populate_by_name=True)"]
    for t in database.tables:
        lines.append(_field(t.name, table_fields, f"Dict[str, {classes[t.name]}]", None,
                            f"rows of {t.name} by {', '.join(t.primary_key) or 'position'}"))
    lines += ["", "", f"def get_db() -> {db_class}:", f"    return {db_class}.load(DB_PATH)", ""]
    return "\n".join(lines)


def db_json(database: Database) -> bytes:
    return (json.dumps(database.data(), indent=2, ensure_ascii=False) + "\n").encode()
