"""Read-only SQL over a database snapshot, bounded in time: how task steps select instances."""
from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

MAX_STEPS = 5_000_000  # SQLite VM steps before a query is interrupted


class QueryError(Exception):
    """A selection query failed (bad SQL, not read-only, too slow)."""


_SNAPSHOTS: OrderedDict[str, Path] = OrderedDict()  # content digest -> its file, most recently used last
_KEEP = 32
_HELD: dict[str, int] = {}  # digests of files callers are reading now (a step may await inside `with`)
_DIR: tempfile.TemporaryDirectory | None = None


@contextmanager
def snapshot(content: bytes) -> Iterator[Path]:
    """A file holding `content`, to open read-only. Files are kept per content (most recently used
    first) and shared between callers: the task steps of one environment read the same database
    hundreds of times, and writing a temp folder each time cost more than the queries."""
    global _DIR
    key = hashlib.sha256(content).hexdigest()
    path = _SNAPSHOTS.get(key)
    if path is None or not path.is_file():
        if _DIR is None:
            _DIR = tempfile.TemporaryDirectory(prefix="skiller-snapshots-")  # removed at exit
        path = Path(_DIR.name) / f"{key}.sqlite"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
        _SNAPSHOTS[key] = path
    _SNAPSHOTS.move_to_end(key)
    _HELD[key] = _HELD.get(key, 0) + 1
    try:
        yield path
    finally:
        _HELD[key] -= 1
        if not _HELD[key]:
            del _HELD[key]
        for old in [k for k in _SNAPSHOTS if k not in _HELD][:max(0, len(_SNAPSHOTS) - _KEEP)]:
            _SNAPSHOTS.pop(old).unlink(missing_ok=True)  # never a file a caller still reads


def select(path: Path, sql: str, limit: int = 50) -> list[dict[str, Any]]:
    """Rows of a read-only query (the connection itself is read-only)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    steps = [0]

    def budget() -> int:
        steps[0] += 1
        return 1 if steps[0] > MAX_STEPS // 1000 else 0

    conn.set_progress_handler(budget, 1000)
    try:
        cur = conn.execute(sql)
        cols = [d[0] for d in cur.description or ()]
        return [dict(zip(cols, row)) for row in cur.fetchmany(limit)]
    except sqlite3.Error as exc:
        raise QueryError(f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
