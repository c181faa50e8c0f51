"""The fast state hash: the same digest as the canonical dump's definition, and per-table reuse never misses a change."""
from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from skiller.servers import StateHasher, state_hash
from tests.fixtures import write_library_db


def reference_hash(path: Path) -> str:
    """The canonical dump as specified (tables and columns by name, rows by key then content, numbers
    normalized), written plainly: the digest every stored task's gold hash was made with."""
    def value(v):
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                return {"$float": repr(v)}
            r = round(v, 6)
            return int(r) if r.is_integer() else r
        return {"$blob": bytes(v).hex()} if isinstance(v, bytes) else v

    def rank(v):
        if v is None:
            return (0, 0)
        if isinstance(v, (int, float)):
            return (1, v)
        if isinstance(v, str):
            return (2, v)
        return (3, json.dumps(v, sort_keys=True)) if isinstance(v, dict) else (4, repr(v))

    def dumps(o):
        return json.dumps(o, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    digest = hashlib.sha256()
    conn = sqlite3.connect(path)
    tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                    if not r[0].startswith("sqlite_"))
    for table in tables:
        info = list(conn.execute("SELECT * FROM pragma_table_info(?)", (table,)))
        names = sorted(r[1] for r in info)
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        rows = [dict(zip(names, map(value, r)))
                for r in conn.execute(f"SELECT {', '.join(chr(34) + n + chr(34) for n in names)} FROM \"{table}\"")]
        rows.sort(key=lambda r: ([rank(r[k]) for k in pk], [rank(r[n]) for n in names]))
        digest.update(dumps({"table": table, "columns": names}).encode() + b"\n")
        for r in rows:
            digest.update(dumps([r[n] for n in names]).encode() + b"\n")
    conn.close()
    return digest.hexdigest()


AWKWARD = """
CREATE TABLE keyed (k TEXT PRIMARY KEY COLLATE NOCASE, v REAL, b BLOB);
CREATE TABLE mixed (k PRIMARY KEY, v);
CREATE TABLE pair (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (b, a));
CREATE TABLE loose (x, y);
CREATE TABLE empty (e TEXT PRIMARY KEY);
"""


def test_the_fast_dump_gives_the_specified_digest_on_awkward_tables(tmp_path):
    path = tmp_path / "awkward.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(AWKWARD)
    # NOCASE keys (SQL order would differ), floats needing rounding, NaN/inf, blobs, mixed key types,
    # NULL keys, duplicate rows, non-ASCII text, a composite key declared in another order.
    conn.executemany("INSERT INTO keyed VALUES (?,?,?)", [("b", 0.1 + 0.2, b"\x00\xff"), ("B2", 3.0, None),
                                                          ("a", float("inf"), b""), ("é", -0.0, None), ("Z", 1e-9, None)])
    conn.executemany("INSERT INTO mixed VALUES (?,?)", [(3, "x"), ("2", 1), (1.5, None), (None, "n"), (b"k", 2.5),
                                                        (None, "m"), (2, float("nan"))])
    conn.executemany("INSERT INTO pair VALUES (?,?,?)", [(2, "b", "x"), (1, "b", "y"), (3, "a", "z"), (1, "ß", "w")])
    conn.executemany("INSERT INTO loose VALUES (?,?)", [(1, "a"), (1, "a"), (None, 2), ("z", 0.5)])
    conn.commit()
    conn.close()
    assert state_hash(path) == reference_hash(path)
    assert StateHasher().digest(path) == reference_hash(path)


def test_the_fast_dump_gives_the_specified_digest_on_the_library_database(tmp_path):
    path = write_library_db(tmp_path / "library.sqlite")
    assert state_hash(path) == reference_hash(path)


def _mutate(conn: sqlite3.Connection, rng: random.Random, tables: list[str]) -> None:
    table = rng.choice(tables)
    cols = [r[1] for r in conn.execute(f'SELECT * FROM pragma_table_info("{table}")')]
    roll = rng.random()
    if roll < 0.5:  # sometimes a value long enough to spill onto overflow pages
        value = rng.choice(["x" * rng.randint(1, 12_000), 2.5, 7, None, "é"])
        conn.execute(f'UPDATE OR IGNORE "{table}" SET "{rng.choice(cols[1:])}" = ? WHERE rowid = '
                     f'(SELECT rowid FROM "{table}" ORDER BY random() LIMIT 1)', (value,))
    elif roll < 0.65:
        conn.execute(f'DELETE FROM "{table}" WHERE rowid = (SELECT max(rowid) FROM "{table}")')
    elif roll < 0.75:
        conn.execute("INSERT INTO loose SELECT x, y FROM loose LIMIT 3")
    elif roll < 0.9:  # many rows at once: pages split and move
        conn.execute(f'UPDATE OR IGNORE "{table}" SET "{cols[-1]}" = ? WHERE rowid % 3 = 0', ("y" * rng.randint(1, 300),))
    else:
        conn.execute(f"CREATE TABLE IF NOT EXISTS extra_{rng.randint(0, 3)} (i INTEGER PRIMARY KEY, t TEXT)")


@pytest.mark.parametrize("seed", range(4))
def test_per_table_hash_equals_the_full_hash_after_random_writes_and_resets(tmp_path, seed):
    initial = write_library_db(tmp_path / "initial.sqlite")
    conn0 = sqlite3.connect(initial)
    conn0.executescript("CREATE TABLE loose (x, y); INSERT INTO loose VALUES (1, 'a'), (2, 'b');")
    conn0.close()
    live = tmp_path / "live.sqlite"
    shutil.copy(initial, live)
    rng = random.Random(seed)
    hasher = StateHasher()
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    seen = set()
    for _ in range(120):
        if rng.random() < 0.15:  # a reset: the worker swaps in a fresh copy of the initial file
            conn.close()
            shutil.copy(initial, live)
            conn = sqlite3.connect(live, isolation_level=None)
            conn.execute("PRAGMA foreign_keys=OFF")
        else:
            for _ in range(rng.randint(1, 3)):
                _mutate(conn, rng, tables)
        got = hasher.digest(live)
        assert got == state_hash(live)
        seen.add(got)
    assert len(seen) > 50  # the writes really changed the state


def test_a_change_on_an_overflow_page_alone_is_seen(tmp_path):
    path = tmp_path / "big.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE doc (doc_id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO doc VALUES (1, ?)", ("a" * 20_000,))
    hasher = StateHasher()
    before = hasher.digest(path)
    # Same length, same first bytes: the leaf cell keeps its local part; only overflow content differs.
    conn.execute("UPDATE doc SET body = ? WHERE doc_id = 1", ("a" * 19_999 + "b",))
    after = hasher.digest(path)
    assert after != before and after == state_hash(path)


ROWS_SCHEMA = """
CREATE TABLE item (item_id TEXT PRIMARY KEY, price REAL, qty INTEGER, note TEXT, raw BLOB);
CREATE TABLE visit (visit_id INTEGER PRIMARY KEY, item_id TEXT, day TEXT, paid REAL);
CREATE TABLE pair (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (b, a));
CREATE TABLE odd (rowid_like TEXT PRIMARY KEY, "oid" TEXT);
"""


def _row_write(conn: sqlite3.Connection, rng: random.Random, n: int) -> None:
    roll = rng.random()
    key = f"IT-{rng.randint(0, 400):04d}"
    value = rng.choice([2.0, 0.1 + 0.2, -7, 10 ** 15, -(2 ** 63), None, "é✓", b"\x00\x01", 3.5e-7, 0, 1, 255, 70000])
    if roll < 0.35:
        conn.execute("INSERT OR REPLACE INTO item VALUES (?,?,?,?,?)", (key, value if not isinstance(value, (str, bytes))
                     else 1.5, rng.randint(-3, 3), f"n{n}" * rng.randint(0, 40), value if isinstance(value, bytes) else None))
    elif roll < 0.55:
        conn.execute("UPDATE item SET price = ?, note = ? WHERE item_id = ?", (value, "x" * rng.randint(0, 200), key))
    elif roll < 0.7:
        conn.execute("DELETE FROM item WHERE item_id = ?", (key,))
    elif roll < 0.85:
        conn.execute("INSERT INTO visit (item_id, day, paid) VALUES (?,?,?)", (key, f"2026-0{rng.randint(1, 9)}-1{n % 10}",
                                                                               rng.choice([12.0, 12.25, None])))
    elif roll < 0.95:
        conn.execute("UPDATE visit SET paid = paid + 1 WHERE visit_id % ? = 0", (rng.randint(2, 9),))
    else:
        conn.execute("INSERT OR REPLACE INTO pair VALUES (?,?,?)", (rng.randint(0, 50), rng.choice("abé"), f"v{n}"))


@pytest.mark.parametrize("seed", range(3))
def test_rows_kept_one_by_one_give_the_full_hash_through_inserts_splits_and_deletes(tmp_path, seed):
    initial = tmp_path / "initial.sqlite"
    conn = sqlite3.connect(initial, isolation_level=None)
    conn.executescript(ROWS_SCHEMA)
    rng = random.Random(seed)
    for n in range(250):
        _row_write(conn, rng, n)
    conn.execute("INSERT INTO odd VALUES ('a', 'b')")
    conn.close()
    live = tmp_path / "live.sqlite"
    shutil.copy(initial, live)
    hasher = StateHasher()
    assert hasher.digest(live) == state_hash(live) == reference_hash(live)
    conn = sqlite3.connect(live, isolation_level=None)
    seen = set()
    for n in range(300):
        if rng.random() < 0.05:
            conn.close()
            shutil.copy(initial, live)
            conn = sqlite3.connect(live, isolation_level=None)
        for _ in range(rng.randint(1, 4)):
            _row_write(conn, rng, n)
        got = hasher.digest(live)
        assert got == state_hash(live), n
        seen.add(got)
    assert len(seen) > 200
    kept = hasher._last.rows  # noqa: SLF001 - the fast path must really have been taken
    assert kept["item"] is not None and kept["item"].layout is not None
    assert kept["visit"] is not None and kept["visit"].layout is not None and kept["visit"].layout.alias == 0
    assert kept["odd"] is None  # a column named like the rowid: read whole


def test_a_column_added_later_is_read_with_its_default(tmp_path):
    path = tmp_path / "grown.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (t_id TEXT PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(f"k{i:03d}", "x" * 30) for i in range(200)])
    hasher = StateHasher()
    hasher.digest(path)
    conn.execute("ALTER TABLE t ADD COLUMN extra TEXT DEFAULT 'd'")
    assert hasher.digest(path) == state_hash(path)
    conn.execute("UPDATE t SET v = 'y' WHERE t_id = 'k007'")  # old records lack `extra`: SQLite supplies 'd'
    assert hasher.digest(path) == state_hash(path) == reference_hash(path)
    conn.execute("UPDATE t SET extra = 'e' WHERE t_id = 'k150'")
    assert hasher.digest(path) == state_hash(path) == reference_hash(path)
