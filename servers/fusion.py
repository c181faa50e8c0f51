"""Database fusion: one SQLite file where each member's tables live under its namespace and `person` is shared."""
from __future__ import annotations

import re
import sqlite3
import tempfile
from pathlib import Path

from servers.contract import table_name

SHARED = "person"


class FusionError(Exception):
    """Members cannot be fused (their shared rows disagree, or a table name would collide)."""


def namespace_of(server: str) -> str:
    """`HealthInsurance` -> `health_insurance_`: the table and tool-name prefix inside a fusion."""
    return table_name(server) + "_"


def rename_tables(sql: str, tables: list[str], namespace: str) -> str:
    """Prefix every whole-word mention of a member table (never the shared `person`)."""
    names = sorted((t for t in tables if t != SHARED), key=len, reverse=True)
    if not names:
        return sql
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    return pattern.sub(lambda m: namespace + m.group(1), sql)


def _tables(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    return [r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def fuse_databases(members: list[tuple[str, bytes]]) -> bytes:
    """members: (namespace, database bytes) in a fixed order; returns the fused database's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (_, content) in enumerate(members):
            path = Path(tmp) / f"m{i}.sqlite"
            path.write_bytes(content)
            paths.append(path)
        fused = Path(tmp) / "fused.sqlite"
        conn = sqlite3.connect(fused, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = OFF")  # rows arrive parents-last per member; checked at the end
        people: list | None = None
        for i, ((namespace, _), path) in enumerate(zip(members, paths)):
            conn.execute(f"ATTACH DATABASE '{path}' AS m{i}")
            tables = _tables(conn, f"m{i}")
            schema = dict(conn.execute(
                f"SELECT name, sql FROM m{i}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
            rows = conn.execute(f"SELECT * FROM m{i}.{SHARED} ORDER BY person_id").fetchall() if SHARED in tables else []
            if people is None:
                people = rows
                conn.execute(schema[SHARED])
                conn.execute(f"INSERT INTO main.{SHARED} SELECT * FROM m{i}.{SHARED} ORDER BY rowid")
            elif rows != people:
                raise FusionError(f"member {namespace.rstrip('_')} has different person rows; fused people must be one set")
            existing = set(_tables(conn))
            for table in tables:
                if table == SHARED:
                    continue
                target = namespace + table
                if target in existing:
                    raise FusionError(f"table {target} would be defined twice")
                conn.execute(rename_tables(schema[table], tables, namespace))
                conn.execute(f"INSERT INTO main.{target} SELECT * FROM m{i}.{table} ORDER BY rowid")
            for (sql,) in conn.execute(f"SELECT sql FROM m{i}.sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                       "ORDER BY name").fetchall():
                conn.execute(rename_tables(sql, tables, namespace).replace("INDEX ", f"INDEX {namespace}", 1))
            conn.execute(f"DETACH DATABASE m{i}")
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise FusionError(f"fused database breaks {len(problems)} foreign keys (first: {problems[0]})")
        conn.execute("VACUUM")
        conn.close()
        return fused.read_bytes()
