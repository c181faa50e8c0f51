"""Query snapshots: one file per database content, shared between readers, never removed under one."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from skiller.servers.query import select, snapshot


def _database(tmp_path: Path, value: int) -> bytes:
    path = tmp_path / f"db{value}.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_the_same_content_is_read_from_one_file_and_queries_see_it(tmp_path):
    content = _database(tmp_path, 1)
    with snapshot(content) as first:
        assert select(first, "SELECT v FROM t") == [{"v": 1}]
    with snapshot(content) as again:
        assert again == first and again.read_bytes() == content


def test_a_file_being_read_survives_many_other_snapshots(tmp_path):
    held = _database(tmp_path, 0)
    with snapshot(held) as path:
        others = []
        for value in range(1, 60):  # more contents than the snapshots kept
            with snapshot(_database(tmp_path, value)) as other:
                others.append(other)
                assert select(other, "SELECT v FROM t") == [{"v": value}]
        assert select(path, "SELECT v FROM t") == [{"v": 0}]
    assert sum(p.exists() for p in others) < len(others)  # the least recently used ones were removed
