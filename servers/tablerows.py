"""A table's canonical dump kept row by row, so that after a write only the rows that changed are read.

A one-row write changes one leaf page of one table; reading that table's 300 rows back through SQLite
costs more than all the rest of a state hash. Here each row's cell (its bytes on the leaf page) and dump
line are kept by rowid: a row whose cell is unchanged, wherever it moved, is the same row, and a changed
cell is decoded from its record (checked against SQLite's reading of every row when the table was first
read whole; anything unexpected is read through SQLite). The result is byte for byte the ordered form of
`database._table_dump`; anything that form does not cover (no integer or text key, duplicate keys, rows
spilling onto overflow pages, a table without rowids) returns None and the caller reads the table whole.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable

from skiller.servers import database, pages

__all__ = ["Columns", "TableRows", "read_rows"]

Columns = tuple[tuple[str, str, int], ...]  # (name, declared type, position in the primary key or 0), declared order
_ROWID_NAMES = {"rowid", "oid", "_rowid_"}
_MAX_FETCH = 400  # more changed rows than this: one scan of the table is cheaper than a long IN list


@dataclass(frozen=True)
class _Layout:
    """Where each dumped column (sorted by name) sits in a row's record, and which column is the rowid."""

    positions: tuple[int, ...]
    alias: int | None  # the INTEGER PRIMARY KEY column: stored as NULL, read as the rowid

    def row(self, rowid: int, cell: bytes) -> tuple | None:
        try:
            values = pages.record_values(cell)
        except pages.PageError:
            return None
        if len(values) <= max(self.positions, default=-1):
            return None  # a row written before a column was added: SQLite fills in the default
        if self.alias is not None:
            if values[self.alias] is not None:
                return None
            values[self.alias] = rowid
        return tuple(values[p] for p in self.positions)


@dataclass(frozen=True)
class TableRows:
    leaves: pages.Leaves  # leaf page -> rowids on it
    cells: dict[int, bytes]  # rowid -> its cell
    rows: dict[int, tuple[tuple, str]]  # rowid -> (key values, dump line)
    order: tuple[int, ...]  # rowids in the dump's order: keys as SQLite's BINARY collation orders them
    pages: frozenset[int]  # every page of the table's b-tree
    layout: _Layout | None  # None: changed rows are read through SQLite


def read_rows(conn: Callable[[], sqlite3.Connection], data: bytes, table: str, root: object,
              plan: database.DumpPlan, columns: Columns, lines: dict[tuple, str], prior: TableRows | None,
              changed: set[int]) -> tuple[bytes, TableRows] | None:
    """The table's dump and its rows, reusing `prior` (the same table in a known state whose pages differ from
    `data` in `changed`); None when the table cannot be kept row by row. `conn()` opens SQLite on `data`."""
    head, select, where, keyed = plan
    names = tuple(sorted(c[0] for c in columns))
    if not keyed or not select or not isinstance(root, int) or _ROWID_NAMES & {n.lower() for n in names}:
        return None
    try:  # `now`: the cells of the leaves whose bytes changed (all of them without `prior`)
        leaves, owned, now = pages.table_leaves(data, root, prior.leaves if prior else None, changed)
    except pages.PageError:
        return None
    if len(lines) > database._LINES_KEPT:
        lines.clear()
    cells: dict[int, bytes] = {}
    rows: dict[int, tuple[tuple, str]] = {}
    found: dict[int, tuple] = {}
    fetch: list[int] = []
    layout = prior.layout if prior is not None else None
    if prior is not None:  # leaves taken from `prior` (their bytes did not change) hold the same rows
        for p, rowids in leaves.items():
            if prior.leaves.get(p) is rowids and p not in changed:
                cells.update((r, prior.cells[r]) for r in rowids)
                rows.update((r, prior.rows[r]) for r in rowids)
    for r, cell in now.items():
        cells[r] = cell
        if prior is not None and prior.cells.get(r) == cell:
            rows[r] = prior.rows[r]
            continue
        row = layout.row(r, cell) if layout is not None else None
        if row is None:
            fetch.append(r)
        else:
            found[r] = row
    total = sum(map(len, leaves.values()))
    if len(cells) != total:
        return None  # a rowid on two pages
    source = f"SELECT rowid, {', '.join(map(database._q, names))} FROM {database._q(table)}"
    if prior is None or len(fetch) > _MAX_FETCH:
        raw = conn().execute(source).fetchall()
        if prior is None:
            layout = _checked_layout(columns, names, where, raw, cells)
        rows, found = {}, {}
    elif fetch:
        raw = conn().execute(f"{source} WHERE rowid IN ({', '.join('?' * len(fetch))})", fetch).fetchall()
        if len(raw) != len(fetch):
            return None
    else:
        raw = []
    found.update((entry[0], entry[1:]) for entry in raw)
    key_of = itemgetter(*where) if len(where) > 1 else (lambda row, at=where[0]: (row[at],))
    added = {}
    for rowid, row in found.items():
        added[rowid] = (key_of(row), database.row_line(lines, row))
    if not {type(k) for key, _ in added.values() for k in key} <= {int, str}:
        return None
    same_keys = prior is not None and all(r in prior.rows and prior.rows[r][0] == v[0] for r, v in added.items())
    rows.update(added)
    # Every rowid once and all of them in the table, else SQLite's view is not ours.
    if len(rows) != total or (raw and conn().execute(f"SELECT count(*) FROM {database._q(table)}").fetchone()[0] != total):
        return None
    if same_keys and rows.keys() == prior.rows.keys():
        order = prior.order  # the same rows under the same keys: the order holds
    else:
        order = tuple(sorted(rows, key=lambda r: tuple((type(k) is str, k) for k in rows[r][0])))  # numbers first
        if any(rows[a][0] == rows[b][0] for a, b in zip(order, order[1:])):
            return None  # two rows with one key: the whole-table dump orders them by content
    dump = head + ("\n".join([rows[r][1] for r in order]) + "\n").encode() if order else head
    return dump, TableRows(leaves, cells, rows, order, owned, layout)


def _checked_layout(columns: Columns, names: tuple[str, ...], where: list[int], raw: list[Any],
                    cells: dict[int, bytes]) -> _Layout | None:
    """The record layout, if decoding every cell gives exactly what SQLite read (values and key types)."""
    declared = [c[0] for c in columns]
    keys = [c for c in columns if c[2]]
    alias = declared.index(keys[0][0]) if len(keys) == 1 and keys[0][1].upper() == "INTEGER" else None
    layout = _Layout(tuple(declared.index(n) for n in names), alias)
    for entry in raw:
        cell = cells.get(entry[0])
        row = layout.row(entry[0], cell) if cell is not None else None
        if row != entry[1:] or any(type(row[i]) is not type(entry[1 + i]) for i in where):
            return None
    return layout
