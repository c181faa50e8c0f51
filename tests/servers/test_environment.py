"""skiller.servers.environment: calls through the sandboxed worker, transactions, reset, fusion and runaway tools."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from skiller.servers import Environment, EnvironmentLoadError, ModuleSource, state_hash
from tests.fixtures import library_db_bytes, library_module_source


def _loans(env: Environment, table: str = "loan") -> list[tuple]:
    conn = sqlite3.connect(env.db_path)
    try:
        return conn.execute(f"SELECT loan_id, person_id, book_id, status FROM {table} ORDER BY loan_id").fetchall()
    finally:
        conn.close()


def test_tools_are_listed_with_mode_and_schema(env):
    specs = {t.name: t for t in env.tools}
    assert list(specs) == ["get_member", "search_books", "borrow_book", "return_book"]
    assert specs["get_member"].mode == "read" and specs["borrow_book"].mode == "write"
    assert specs["borrow_book"].parameters["required"] == ["person_id", "book_id"]
    assert specs["borrow_book"].openai()["function"]["name"] == "borrow_book"


def test_read_call_returns_the_member(env):
    result = env.call("get_member", {"person_id": "P-001"})
    assert result.ok and result.error is None
    assert result.value["name"] == "Ada Lovelace" and result.value["active_loans"] == 1


def test_write_call_changes_the_state_hash_and_the_database(env):
    before = env.state_hash()
    result = env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"})
    assert result.ok and result.value["loan_id"] == "LN-0005" and result.value["due_date"] == "2026-03-16"
    assert env.state_hash() != before
    assert ("LN-0005", "P-001", "BK-005", "active") in _loans(env)
    assert env.call("get_member", {"person_id": "P-001"}).value["active_loans"] == 2


@pytest.mark.parametrize(("name", "arguments", "error"), [
    ("borrow_book", {"person_id": "P-001", "book_id": "BK-005", "when": "now"}, "unknown parameter 'when'"),
    ("borrow_book", {"person_id": "P-001"}, "missing required parameter 'book_id'"),
    ("borrow_book", {"person_id": 1, "book_id": "BK-005"}, "parameter 'person_id' must be string, got integer"),
    ("search_books", {"query": "a", "limit": "ten"}, "parameter 'limit' must be integer, got string"),
    ("search_books", {"query": "a", "limit": 500}, "maximum 50"),
    ("borrow_book", {"person_id": "P-999", "book_id": "BK-005"}, "Member not found: P-999"),
    ("borrow_book", {"person_id": "P-001", "book_id": "BK-404"}, "Book not found: BK-404"),
    ("borrow_book", {"person_id": "P-002", "book_id": "BK-005"}, "Policy violation [LIB-1]"),
    ("return_book", {"loan_id": "LN-0004"}, "Loan LN-0004 is not active (status: returned)"),
    ("no_such_tool", {}, "unknown tool: no_such_tool"),
    ("borrow_book", ["P-001", "BK-005"], "arguments must be a JSON object"),
])
def test_bad_calls_return_one_line_errors_and_leave_the_state_unchanged(env, name, arguments, error):
    before = env.state_hash()
    result = env.call(name, arguments)
    assert not result.ok and result.value is None
    assert error in result.error and "\n" not in result.error
    assert env.state_hash() == before
    assert env.alive


def test_integral_float_is_accepted_for_an_integer_parameter(env):
    result = env.call("search_books", {"query": "the", "limit": 1.0})
    assert result.ok and [b["book_id"] for b in result.value] == ["BK-001"]


def test_return_book_closes_an_active_loan(env):
    result = env.call("return_book", {"loan_id": "LN-0001"})
    assert result.ok and result.value["status"] == "returned" and result.value["fee"] == 0
    assert env.call("return_book", {"loan_id": "LN-0001"}).error.startswith("Loan LN-0001 is not active")


@pytest.mark.parametrize(("tool", "error"), [
    ("borrow_then_crash", "internal error in borrow_then_crash: RuntimeError: disk on fire"),
    ("borrow_then_refuse", "changed my mind"),
    ("borrow_commit_then_crash", "internal error in borrow_commit_then_crash: RuntimeError: after commit"),
    ("borrow_then_commit_by_sql", "internal error in borrow_then_commit_by_sql: DatabaseError: not authorized"),
    ("borrow_returning_bytes", "result is not JSON"),
])
def test_a_failing_call_rolls_back_its_partial_writes(rogue_env, tool, error):
    before = rogue_env.state_hash()
    result = rogue_env.call(tool, {"person_id": "P-001", "book_id": "BK-005"})
    assert not result.ok and error in result.error
    assert rogue_env.state_hash() == before
    assert len(_loans(rogue_env)) == 4
    assert rogue_env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).ok  # still usable


def test_a_read_tool_that_writes_is_refused_and_rolled_back(rogue_env):
    before = rogue_env.state_hash()
    result = rogue_env.call("read_that_writes", {})
    assert not result.ok and "a read tool changed the database" in result.error
    assert rogue_env.state_hash() == before


def test_printing_tools_do_not_disturb_the_protocol(rogue_env):
    assert rogue_env.call("chatty", {}).value == {"said": "hello"}
    assert rogue_env.call("get_member", {"person_id": "P-003"}).value["status"] == "suspended"


def test_reset_restores_the_initial_hash(env):
    initial = env.state_hash()
    assert env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).ok
    assert env.call("return_book", {"loan_id": "LN-0002"}).ok
    assert env.state_hash() != initial
    env.reset()
    assert env.state_hash() == initial
    assert env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).value["loan_id"] == "LN-0005"


def test_fused_environment_runs_two_namespaced_copies_in_one_db(sandbox):
    code = library_module_source()
    modules = [ModuleSource(server="Library", code=code, namespace="north_", prefix="north_"),
               ModuleSource(server="Library", code=code, namespace="south_", prefix="south_")]
    with Environment.start(modules, library_db_bytes(["north_", "south_"]), sandbox) as fused:
        names = [t.name for t in fused.tools]
        assert names[:2] == ["north_get_member", "north_search_books"] and "south_return_book" in names
        assert len(names) == 8
        assert fused.call("north_borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).ok
        assert [r[0] for r in _loans(fused, "north_loan")][-1] == "LN-0005"
        assert [r[0] for r in _loans(fused, "south_loan")][-1] == "LN-0004"
        assert fused.call("north_get_member", {"person_id": "P-001"}).value["active_loans"] == 2
        assert fused.call("south_get_member", {"person_id": "P-001"}).value["active_loans"] == 1
        assert fused.call("get_member", {"person_id": "P-001"}).error == "unknown tool: get_member"


def test_a_tool_that_loops_forever_is_killed_and_reported(rogue_env):
    before = rogue_env.state_hash()
    started = time.monotonic()
    result = rogue_env.call("spin", {})
    assert time.monotonic() - started < 5
    assert not result.ok and "spin exceeded the 1 s wall-clock limit; worker killed" in result.error
    assert not rogue_env.alive
    after = rogue_env.call("get_member", {"person_id": "P-001"})
    assert not after.ok and "environment is not running" in after.error
    assert rogue_env.state_hash() == before
    rogue_env.reset()  # a dead worker is replaced
    assert rogue_env.alive and rogue_env.call("get_member", {"person_id": "P-001"}).ok


def test_a_huge_allocation_is_reported_as_a_tool_error(rogue_env):
    result = rogue_env.call("hog", {})
    assert not result.ok and "MemoryError" in result.error
    assert rogue_env.call("get_member", {"person_id": "P-001"}).ok  # the memory limit did not kill the worker


def test_a_worker_killed_mid_call_is_reported_and_reset_recovers(rogue_env):
    result = rogue_env.call("die", {})
    assert not result.ok and "environment worker died during die (killed by SIGKILL" in result.error
    assert not rogue_env.alive
    rogue_env.reset()
    assert rogue_env.call("search_books", {"query": "Knuth"}).value[0]["book_id"] == "BK-005"


def test_a_module_that_does_not_load_raises_a_load_error(sandbox, library):
    broken = ModuleSource(server="Broken", code="def oops(:\n")
    with pytest.raises(EnvironmentLoadError, match="Broken: cannot load m1_broken.py: SyntaxError"):
        Environment.start([library, broken], library_db_bytes(), sandbox)
    no_tools = ModuleSource(server="Empty", code="class ToolError(Exception):\n    pass\nTOOLS = {}\n")
    with pytest.raises(EnvironmentLoadError, match="non-empty TOOLS"):
        Environment.start([no_tools], library_db_bytes(), sandbox)


def test_the_initial_database_bytes_are_never_modified(sandbox, library, tmp_path):
    db = library_db_bytes()
    with Environment.start([library], db, sandbox) as env:
        initial = env.state_hash()
        env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"})
    (tmp_path / "initial.db").write_bytes(db)
    assert state_hash(tmp_path / "initial.db") == initial


def test_close_stops_the_worker_and_removes_the_temp_dir(sandbox, library):
    env = Environment.start([library], library_db_bytes(), sandbox)
    workdir = env.db_path.parent
    env.close()
    env.close()
    assert not env.alive and not workdir.exists()
    assert "environment is not running" in env.call("get_member", {"person_id": "P-001"}).error


def test_concurrent_calls_from_threads_are_serialized(env):
    errors: list[str] = []

    def borrow_and_return(book: str) -> None:
        for _ in range(20):
            loan = env.call("borrow_book", {"person_id": "P-001", "book_id": book})
            if not loan.ok:
                errors.append(loan.error)
                continue
            back = env.call("return_book", {"loan_id": loan.value["loan_id"]})
            if not back.ok:
                errors.append(back.error)

    threads = [threading.Thread(target=borrow_and_return, args=(b,)) for b in ("BK-004", "BK-005")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if "Policy violation" not in e]
    assert env.call("get_member", {"person_id": "P-001"}).value["active_loans"] == 1


def test_trivial_reads_are_fast(env):
    started = time.perf_counter()
    for _ in range(1000):
        env.call("get_member", {"person_id": "P-001"})
    assert time.perf_counter() - started < 5  # measured ~0.1 s; a generous bound against regressions
