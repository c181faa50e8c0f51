"""Read-only SQL over a database snapshot, bounded in time: how task steps select instances."""
from __future__ import annotations

import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

MAX_STEPS = 5_000_000  # SQLite VM steps before a query is interrupted


class QueryError(Exception):
    """A selection query failed (bad SQL, not read-only, too slow)."""


@contextmanager
def snapshot(content: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite"
        path.write_bytes(content)
        yield path


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
