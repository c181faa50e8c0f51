"""skiller.servers.database: canonical state hash, diff, integrity report, summary and JSON dump."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from skiller.servers import dump_json, integrity_report, state_diff, state_hash, summarize
from tests.fixtures import write_library_db


def _db(path: Path, script: str) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.commit()
    conn.close()
    return path


def _exec(path: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


SCHEMA = "CREATE TABLE item (item_id TEXT PRIMARY KEY, price REAL, qty INTEGER, note TEXT);"


def test_hash_is_stable_under_row_insertion_order(tmp_path):
    a = _db(tmp_path / "a.db", SCHEMA + "INSERT INTO item VALUES ('A', 1.5, 2, 'x'), ('B', 3.25, 1, NULL);")
    b = _db(tmp_path / "b.db", SCHEMA + "INSERT INTO item VALUES ('B', 3.25, 1, NULL); "
                                        "INSERT INTO item VALUES ('A', 1.5, 2, 'x');")
    assert state_hash(a) == state_hash(b)


def test_hash_is_stable_under_float_formatting_and_column_order(tmp_path):
    a = _db(tmp_path / "a.db", SCHEMA + "INSERT INTO item VALUES ('A', 0.3, 2, 'x');")
    b = _db(tmp_path / "b.db", "CREATE TABLE item (note TEXT, qty INTEGER, price REAL, item_id TEXT PRIMARY KEY);")
    _exec(b, "INSERT INTO item VALUES ('x', 2.0, ?, 'A')", 0.1 + 0.2)
    assert state_hash(a) == state_hash(b)


def test_hash_ignores_sqlite_internal_tables(tmp_path):
    script = "CREATE TABLE t (t_id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT); INSERT INTO t (v) VALUES ('a');"
    a = _db(tmp_path / "a.db", script)
    b = _db(tmp_path / "b.db", script + "INSERT INTO t (v) VALUES ('b'); DELETE FROM t WHERE v = 'b';")
    assert state_hash(a) == state_hash(b)  # only sqlite_sequence differs


def test_hash_changes_on_any_value_change(tmp_path):
    original = write_library_db(tmp_path / "lib.db")
    base = state_hash(original)
    conn = sqlite3.connect(original)
    cells = [(table, column) for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
             for (column,) in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))]
    conn.close()
    seen = {base}
    for table, column in cells:
        copy = tmp_path / f"{table}-{column}.db"
        copy.write_bytes(original.read_bytes())
        _exec(copy, f"UPDATE {table} SET {column} = 'changed!' WHERE rowid = (SELECT MIN(rowid) FROM {table})")
        seen.add(state_hash(copy))
    assert len(seen) == len(cells) + 1


def test_hash_tells_a_number_from_its_text(tmp_path):
    untyped = "CREATE TABLE t (t_id TEXT PRIMARY KEY, v);"  # no affinity: SQLite keeps 3 and '3' apart
    a = _db(tmp_path / "a.db", untyped + "INSERT INTO t VALUES ('A', '3');")
    b = _db(tmp_path / "b.db", untyped + "INSERT INTO t VALUES ('A', 3);")
    assert state_hash(a) != state_hash(b)


def test_diff_lists_the_changed_added_and_removed_rows(tmp_path):
    a = write_library_db(tmp_path / "a.db")
    b = tmp_path / "b.db"
    b.write_bytes(a.read_bytes())
    _exec(b, "UPDATE loan SET status = 'returned', return_date = '2026-03-02' WHERE loan_id = 'LN-0001'")
    _exec(b, "INSERT INTO book VALUES ('BK-006', 'New', 'Someone', 2026, 1, 1)")
    _exec(b, "DELETE FROM loan WHERE loan_id = 'LN-0004'")
    changes = state_diff(a, b)
    assert [(c.table, c.key, c.kind) for c in changes] == [
        ("book", "BK-006", "added"), ("loan", "LN-0001", "changed"), ("loan", "LN-0004", "removed")]
    changed = changes[1]
    assert changed.before == {"return_date": None, "status": "active"}
    assert changed.after == {"return_date": "2026-03-02", "status": "returned"}
    assert changes[2].before["fee"] == 0.5


def test_diff_is_empty_for_equal_states(tmp_path):
    a = write_library_db(tmp_path / "a.db")
    assert state_diff(a, a) == []


def test_integrity_catches_a_foreign_key_violation(tmp_path):
    path = write_library_db(tmp_path / "lib.db")
    assert integrity_report(path).ok
    _exec(path, "INSERT INTO loan VALUES ('LN-0009', 'P-001', 'BK-404', '2026-03-01', '2026-03-15', NULL, "
                "'active', 0)")
    report = integrity_report(path)
    assert not report.ok
    assert [(v.table, v.column, v.parent, v.value) for v in report.fk_violations] == [
        ("loan", "book_id", "book", "BK-404")]
    assert "loan.book_id='BK-404'" in report.problems()[0]


def test_integrity_reports_missing_keys_empty_tables_and_repeated_people(tmp_path):
    path = _db(tmp_path / "bad.db", """
        CREATE TABLE person (person_id TEXT, first_name TEXT);
        INSERT INTO person VALUES ('P-1', 'A'), ('P-1', 'B'), ('P-2', 'C');
        CREATE TABLE note (note_id TEXT PRIMARY KEY, body TEXT);
    """)
    report = integrity_report(path)
    assert report.tables_without_pk == ["person"]
    assert report.empty_tables == ["note"]
    assert report.duplicate_person_ids == {"person": ["P-1"]}
    assert not report.ok


def test_summary_counts_rows_and_lists_small_value_sets_deterministically(tmp_path):
    path = write_library_db(tmp_path / "lib.db")
    summary = summarize(path)
    assert summary == summarize(path)
    tables = {t.name: t for t in summary.tables}
    assert [t.name for t in summary.tables] == ["book", "loan", "member", "person"]
    loan = tables["loan"]
    assert loan.rows == 4 and loan.primary_key == ["loan_id"]
    assert loan.sample_ids == ["LN-0001", "LN-0002", "LN-0003"]
    status = next(c for c in loan.columns if c.name == "status")
    assert status.values == ["active", "returned"] and status.distinct == 2
    fee = next(c for c in loan.columns if c.name == "fee")
    assert (fee.type, fee.min, fee.max) == ("REAL", 0, 0.5)


def test_dump_json_returns_rows_sorted_by_key(tmp_path):
    path = write_library_db(tmp_path / "lib.db")
    _exec(path, "INSERT INTO book VALUES ('BK-000', 'First', 'Someone', 2000, 1, 1)")
    dump = dump_json(path)
    assert list(dump) == ["book", "loan", "member", "person"]
    assert [r["book_id"] for r in dump["book"]][:2] == ["BK-000", "BK-001"]
    assert dump["loan"][3] == {"loan_id": "LN-0004", "person_id": "P-001", "book_id": "BK-004",
                               "loan_date": "2026-01-05", "due_date": "2026-01-19", "return_date": "2026-01-21",
                               "status": "returned", "fee": 0.5}


def test_missing_file_is_an_error_not_an_empty_database(tmp_path):
    with pytest.raises(FileNotFoundError):
        state_hash(tmp_path / "nope.db")
