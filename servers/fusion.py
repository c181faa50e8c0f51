"""Database fusion: one SQLite file where each member's tables live under its namespace and `person` is shared."""
from __future__ import annotations

import pprint
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from skiller.contract.environment import ModuleSource, table_name
from skiller.contract.namespaces import SHARED, namespace_of, rename_tables


class FusionError(Exception):
    """Members cannot be fused (their shared rows disagree, or a table name would collide)."""


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
        # A scratch file: no on-disk journal, no fsync per statement (same bytes, several times faster).
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
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


BridgeKind = Literal["person", "source_status", "source_window", "not_above", "date_after"]


class BridgeRule(BaseModel):
    """A rule of a hand-over between members, in machine-checkable form (the merged policy's BRIDGE marker).

    person:        the same person in both members (policy text only: nothing to check at run time)
    source_status: the row named by `ref` has `source_field` (its status) in `statuses`
    source_window: the row named by `ref` has its date `source_field` within clock + [`min`, `max`] days
    not_above:     argument `field` is at most the named row's `source_field` (a claim <= the billed amount)
    date_after:    date argument `field` minus the named row's date `source_field` is within [`min`, `max`] days
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    source: str  # member handing over (server name)
    target: str  # member taking over
    statement: str
    kind: BridgeKind = "person"
    tool: str | None = None  # the target's tool (unprefixed) taking `ref`
    ref: str | None = None  # its argument naming a `record` row of `source`
    record: str | None = None  # e.g. "Appointment"
    statuses: list[str] = Field(default_factory=list)
    source_field: str | None = None
    field: str | None = None
    min: float | None = None
    max: float | None = None


class CrossReference(BaseModel):
    """An argument of a target member's tool that names a record of a source member (checked at run time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: str
    target: str
    record: str
    tool: str
    ref: str


_BRIDGE_CODE = '''

# ---------------------------------------------------------------- cross-domain references (fused environment)
# Appended to this member's module in a fusion: an argument naming another member's record must name an
# existing row of the same person, and the fusion's bridge rules must hold. Checked before the tool runs,
# inside the runtime's savepoint, so a rejected call changes nothing.
import datetime as _bridge_dt

_BRIDGE_CHECKS = __CHECKS__


def _bridge_row(db, table, key, value):
    cursor = db.execute(f'SELECT * FROM "{table}" WHERE "{key}" = ?', (value,))
    found = cursor.fetchone()
    return None if found is None else {c[0]: v for c, v in zip(cursor.description, found)}


def _bridge_days(value, base):
    return (_bridge_dt.date.fromisoformat(str(value)) - _bridge_dt.date.fromisoformat(base)).days


def _bridge_broken(rule, row, args):
    seen = row.get(rule["source_field"])
    if rule["kind"] == "source_status":
        return seen not in rule["statuses"]
    if seen is None:
        return True
    if rule["kind"] == "source_window":
        return not rule["min"] <= _bridge_days(seen, CLOCK) <= rule["max"]
    given = args.get(rule["field"])
    if given is None:
        return False
    if rule["kind"] == "not_above":
        return given > seen + 1e-9
    return not rule["min"] <= _bridge_days(given, str(seen)) <= rule["max"]


def _bridged(fn, checks):
    def call(db, **args):
        for ref in checks:
            value = args.get(ref["ref"])
            if value is None:
                continue
            row = _bridge_row(db, ref["table"], ref["key"], value)
            if row is None or ("person_id" in args and row.get("person_id") != args["person_id"]):
                owner = f" of person {args['person_id']}" if "person_id" in args else ""
                raise ToolError(f"{ref['label']} {value}{owner} not found in {ref['source']}")
            for rule in ref["rules"]:
                if _bridge_broken(rule, row, args):
                    raise ToolError(f"Policy violation [{rule['id']}]: {rule['statement']}")
        return fn(db, **args)
    call.__doc__ = fn.__doc__
    return call


for _bridge_tool, _bridge_refs in _BRIDGE_CHECKS.items():
    TOOLS[_bridge_tool]["fn"] = _bridged(TOOLS[_bridge_tool]["fn"], _bridge_refs)
'''


def bridge_checks(member: str, references: list[CrossReference], rules: list[BridgeRule]) -> dict[str, list[dict]]:
    """Per tool of `member`, the references it takes and the rules that govern each (plain JSON)."""
    checks: dict[str, list[dict]] = {}
    for ref in references:
        if ref.target != member:
            continue
        table = namespace_of(ref.source) + table_name(ref.record)
        governing = [{"id": r.id, "kind": r.kind, "statement": r.statement, "statuses": list(r.statuses),
                      "source_field": r.source_field or "status", "field": r.field, "min": r.min, "max": r.max}
                     for r in rules if r.kind != "person" and r.target == member and r.tool == ref.tool
                     and r.ref == ref.ref]
        label = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", ref.record)
        checks.setdefault(ref.tool, []).append({
            "ref": ref.ref, "source": ref.source, "table": table, "key": table_name(ref.record) + "_id",
            "label": label[:1].upper() + label[1:].lower(), "rules": governing})
    return checks


def with_bridges(module: ModuleSource, references: list[CrossReference], rules: list[BridgeRule]) -> ModuleSource:
    """The member module as a fusion runs it: unchanged, or with its cross-domain checks appended."""
    checks = bridge_checks(module.server, references, rules)
    if not checks:
        return module
    code = _BRIDGE_CODE.replace("__CHECKS__", pprint.pformat(checks, width=110, sort_dicts=True))
    return module.model_copy(update={"code": module.code.rstrip("\n") + "\n" + code})
