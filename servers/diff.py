"""The row-level difference between two states of a database, for humans (`database.state_diff`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from skiller.servers.database import RowChange, _canonical_rows, _connect, _dumps, _rank, _table_dump, _tables

__all__ = ["rows_diff"]


def _row_key(row: dict[str, Any], pk: list[str], names: list[str]) -> Any:
    cols = pk or names
    key = [row[c] for c in cols]
    return key[0] if len(key) == 1 else key


def _keyed(rows: list[dict[str, Any]], pk: list[str], names: list[str]) -> dict[str, tuple[Any, dict[str, Any]]]:
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for row in rows:
        key = _row_key(row, pk, names)
        ident = _dumps(key)
        while ident in out:  # duplicate keys (no PK, or NULL PKs): keep every copy distinct
            ident += "+"
        out[ident] = (key, row)
    return out


def rows_diff(a_path: str | Path, b_path: str | Path) -> list[RowChange]:
    """Rows added, removed or changed from state a to state b (values compared canonically): see
    `database.state_diff`."""
    with _connect(a_path) as a, _connect(b_path) as b:
        tables_a, tables_b = set(_tables(a)), set(_tables(b))
        changes: list[RowChange] = []
        for table in sorted(tables_a | tables_b):
            if table in tables_a and table in tables_b and _table_dump(a, table) == _table_dump(b, table):
                continue  # the same canonical rows: nothing to list (and far cheaper to tell than to diff)
            na, pka, rows_a = _canonical_rows(a, table) if table in tables_a else ([], [], [])
            nb, pkb, rows_b = _canonical_rows(b, table) if table in tables_b else ([], [], [])
            pk, names = (pka or pkb), sorted(set(na) | set(nb))
            ka, kb = _keyed(rows_a, pk, names), _keyed(rows_b, pk, names)
            found: list[RowChange] = []
            for ident in ka.keys() - kb.keys():
                found.append(RowChange(table=table, key=ka[ident][0], kind="removed", before=ka[ident][1]))
            for ident in kb.keys() - ka.keys():
                found.append(RowChange(table=table, key=kb[ident][0], kind="added", after=kb[ident][1]))
            missing = object()
            for ident in ka.keys() & kb.keys():
                ra, rb = ka[ident][1], kb[ident][1]
                cols = [n for n in names if ra.get(n, missing) != rb.get(n, missing)]
                if cols:
                    found.append(RowChange(table=table, key=ka[ident][0], kind="changed",
                                           before={c: ra.get(c) for c in cols},
                                           after={c: rb.get(c) for c in cols}))
            kinds = {"removed": 0, "changed": 1, "added": 2}
            found.sort(key=lambda ch: (_rank_key(ch.key), kinds[ch.kind]))
            changes.extend(found)
    return changes


def _rank_key(key: Any) -> list[tuple[int, Any]]:
    return [_rank(k) for k in key] if isinstance(key, list) else [_rank(key)]
