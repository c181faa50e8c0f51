"""Incremental state hash of a database that changes between calls: only tables whose pages changed are read again."""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skiller.servers import database, pages
from skiller.servers.tablerows import Columns, TableRows, read_rows

__all__ = ["StateHasher"]


@dataclass(frozen=True)
class _Snapshot:
    data: bytes  # the whole file
    digest: str
    tables: tuple[str, ...]  # sorted, as the canonical dump orders them
    roots: dict[str, int]  # root page of each table's b-tree
    dumps: dict[str, bytes]  # each table's share of the canonical dump
    prefixes: tuple[Any, ...]  # the digest's state after each table, in order (hashlib objects)
    plans: dict[str, database.DumpPlan]  # how each table is read (fixed by the schema)
    columns: dict[str, Columns]  # each table's columns as declared (fixed by the schema)
    rows: dict[str, TableRows | None]  # each table's rows by rowid and leaf page (None: read whole)
    owned: dict[str, frozenset[int] | None]  # pages of each table's b-tree (None: unknown, always re-read)
    schema: frozenset[int]  # pages of sqlite_master


class StateHasher:
    """`database.state_hash` of one file, kept per table.

    A table's dump is reused when none of the pages its b-tree owned in a known state changed (see
    `pages.btree_pages`); the others are re-read through SQLite. The parent reads the bytes itself,
    so an untrusted worker cannot make a change invisible. Keeps two known states: the first one
    hashed (the initial database every reset restores) and the last one. The file must not change
    while `digest` runs (the environment holds its lock).
    """

    def __init__(self) -> None:
        self._base: _Snapshot | None = None
        self._last: _Snapshot | None = None
        self._lines: dict[tuple, str] = {}  # the dump's line of every row seen (see database._table_dump)

    def digest(self, path: str | Path) -> str:
        if any(os.path.exists(f"{path}{suffix}") for suffix in ("-journal", "-wal")):
            return database.state_hash(path)  # a hot journal or a WAL: only SQLite knows the content
        path = Path(path)
        data = path.read_bytes()
        pair = (self._last,) if self._last is self._base else (self._last, self._base)
        known = [s for s in pair if s is not None]
        snap = next((s for s in known if s.data == data), None) or self._snapshot(path, data, known)
        self._base = self._base or snap
        self._last = snap
        return snap.digest

    def _snapshot(self, path: Path, data: bytes, known: list[_Snapshot]) -> _Snapshot:
        prior, changed = _closest(data, known)
        # A file in WAL mode (header bytes 18-19) keeps content outside it: read that through the file.
        wal = data[18:20] == b"\x02\x02"
        with contextlib.ExitStack() as stack:
            opened: list[sqlite3.Connection] = []

            def conn() -> sqlite3.Connection:  # opened only when a row must be read through SQLite
                if not opened:
                    opened.append(stack.enter_context(database._connect(path) if wal else database._connect_bytes(data)))
                return opened[0]

            if prior is None:  # an unchanged schema means the same tables at the same root pages
                tables = tuple(database._tables(conn()))
                roots = dict(conn().execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table'").fetchall())
                plans = {t: database._dump_plan(conn(), t) for t in tables}
                columns = {t: tuple(database._columns(conn(), t)) for t in tables}
            else:
                tables, roots, plans, columns = prior.tables, prior.roots, prior.plans, prior.columns
            dumps: dict[str, bytes] = {}
            owned: dict[str, frozenset[int] | None] = {}
            rows: dict[str, TableRows | None] = {}
            for table in tables:
                before = prior.owned.get(table) if prior is not None else None
                if prior is not None and before is not None and not before & changed:
                    dumps[table], owned[table], rows[table] = prior.dumps[table], before, prior.rows[table]
                    continue
                kept = read_rows(conn, data, table, roots.get(table), plans[table], columns[table], self._lines,
                                 prior.rows[table] if prior is not None else None, changed)
                if kept is not None:
                    dumps[table], rows[table] = kept
                    owned[table] = rows[table].pages
                    continue
                dumps[table], rows[table] = database._table_dump(conn(), table, self._lines, plans[table]), None
                owned[table] = _owned(data, roots.get(table))
        # The digest runs over the tables in order: resume it after the leading tables that were reused.
        same = 0
        if prior is not None:
            while same < len(tables) and dumps[tables[same]] is prior.dumps[tables[same]]:
                same += 1
        running = prior.prefixes[same - 1].copy() if same else hashlib.sha256()
        prefixes = list(prior.prefixes[:same]) if same else []
        for table in tables[same:]:
            running.update(dumps[table])
            prefixes.append(running.copy())
        schema = prior.schema if prior is not None else _owned(data, 1) or frozenset()  # its pages did not change
        return _Snapshot(data, running.hexdigest(), tables, roots, dumps, tuple(prefixes), plans, columns, rows, owned,
                         schema)


def _owned(data: bytes, root: object) -> frozenset[int] | None:
    if not isinstance(root, int):
        return None
    try:
        return pages.btree_pages(data, root)
    except pages.PageError:
        return None


def _closest(data: bytes, known: list[_Snapshot]) -> tuple[_Snapshot | None, set[int]]:
    """The known state with the fewest changed pages whose schema is unchanged, and those pages."""
    try:
        size = pages.page_size(data)
    except pages.PageError:
        return None, set()
    best: tuple[_Snapshot | None, set[int]] = (None, set())
    for snap in known:
        if not snap.schema or len(snap.data) < pages.HEADER or not pages.same_layout(snap.data, data):
            continue
        changed = pages.changed_pages(snap.data, data, size)
        if not changed & snap.schema and (best[0] is None or len(changed) < len(best[1])):
            best = (snap, changed)
    return best
