"""Reset in place: the parent writes back the blocks calls changed, and nothing a call left behind survives it."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from skiller.servers import Environment, ModuleSource
from skiller.servers.sandbox import Sandbox
from tests.fixtures import library_db_bytes, library_module_source

EXTRA = '''

def scratch(db):
    db.execute("CREATE TEMP TABLE scratch (x INTEGER)")  # no IF NOT EXISTS: a second time in one connection fails
    return {"made": True}


def grow(db):
    for i in range(3000):
        db.execute("INSERT INTO " + _t("book") + " (book_id, title, author, copies_total, copies_available)"
                   " VALUES (?, ?, ?, 1, 1)",
                   (f"BK-9{i:04d}", "filler " * 20, "Nobody"))
    return {"added": 3000}


def replace_file(db):
    import shutil, os
    shutil.copyfile("db.sqlite", "copy.sqlite")
    os.replace("copy.sqlite", "db.sqlite")  # the connection keeps the old file; the path names a new one
    return {"replaced": True}


def break_connection(db):
    db.really_close()  # the worker's own handle: settling it on the next reset fails
    return {"closed": True}


_NONE = {"type": "object", "properties": {}}
for _fn in (scratch, grow, replace_file, break_connection):
    TOOLS[_fn.__name__] = {"fn": _fn, "mode": "write", "description": _fn.__name__, "parameters": _NONE}
'''


@pytest.fixture
def env(sandbox: Sandbox) -> Iterator[Environment]:
    module = ModuleSource(server="Library", code=library_module_source() + EXTRA)
    with Environment.start([module], library_db_bytes(), sandbox) as running:
        yield running


def test_reset_restores_the_initial_file_bytes_after_the_file_grew(env: Environment) -> None:
    initial_bytes, initial = env.db_path.read_bytes(), env.state_hash()
    assert env.call("grow", {}).ok and env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).ok
    assert len(env.db_path.read_bytes()) > len(initial_bytes)
    env.reset()
    assert env.db_path.read_bytes() == initial_bytes
    assert env.state_hash() == initial
    # The worker's connection sees the restored file, not the pages it cached before.
    assert env.call("search_books", {"query": "filler"}).value == []
    assert env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).value["loan_id"] == "LN-0005"


def test_temporary_tables_do_not_survive_a_reset(env: Environment) -> None:
    assert env.call("scratch", {}).ok
    assert "already exists" in (env.call("scratch", {}).error or "")
    env.reset()
    assert env.call("scratch", {}).ok


def test_a_worker_that_replaced_its_database_file_is_reset_onto_a_fresh_copy(env: Environment) -> None:
    initial = env.state_hash()
    assert env.call("replace_file", {}).ok
    assert not env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).ok  # SQLite saw the file move
    env.reset()
    assert env.state_hash() == initial
    assert env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).ok
    assert env.state_hash() != initial  # the worker writes the file the parent reads again
    env.reset()
    assert env.state_hash() == initial


def test_a_reset_the_worker_cannot_settle_is_done_on_a_fresh_worker_before_the_call(env: Environment) -> None:
    # The worker settles a reset with its next call; when it cannot, that call runs on a new worker.
    initial = env.state_hash()
    for use_loop in (False, True):
        assert "closed database" in (env.call("break_connection", {}).error or "")
        assert not env.call("search_books", {"query": "a"}).ok  # the worker lost its database
        pid = env._proc.pid  # noqa: SLF001
        if use_loop:
            asyncio.run(env.areset())
            result = asyncio.run(env.acall("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}))
        else:
            env.reset()
            result = env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"})
        assert result.ok and result.value["loan_id"] == "LN-0005"
        assert env._proc.pid != pid and env.alive  # noqa: SLF001
        env.reset()
        assert env.state_hash() == initial
