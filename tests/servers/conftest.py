"""Fixtures for the environment runtime: a shared sandbox, the Library module and misbehaving variants."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from skiller.servers import Environment, ModuleSource
from skiller.servers.sandbox import Sandbox, SandboxLimits
from tests.fixtures import library_db_bytes, library_module_source

# Extra tools appended to the Library module: each misbehaves in one way the runtime must contain.
MISBEHAVING = '''

def borrow_then_crash(db, person_id, book_id):
    borrow_book(db, person_id, book_id)
    raise RuntimeError("disk on fire")


def borrow_then_refuse(db, person_id, book_id):
    borrow_book(db, person_id, book_id)
    raise ToolError("changed my mind")


def borrow_commit_then_crash(db, person_id, book_id):
    with db:
        borrow_book(db, person_id, book_id)
    db.commit()
    raise RuntimeError("after commit")


def borrow_then_commit_by_sql(db, person_id, book_id):
    borrow_book(db, person_id, book_id)
    db.execute("COMMIT")
    return {"escaped": True}


def borrow_returning_bytes(db, person_id, book_id):
    borrow_book(db, person_id, book_id)
    return {"raw": b"not json"}


def read_that_writes(db):
    db.execute("DELETE FROM " + _t("loan"))
    return []


def chatty(db):
    print("noise on stdout " * 10000)
    return {"said": "hello"}


def spin(db):
    while True:
        pass


def hog(db):
    return len(bytearray(8 * 1024 ** 3))


def die(db):
    import os
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


_BORROW = TOOLS["borrow_book"]["parameters"]
_NONE = {"type": "object", "properties": {}}
for _fn, _mode, _params in [(borrow_then_crash, "write", _BORROW), (borrow_then_refuse, "write", _BORROW),
                            (borrow_commit_then_crash, "write", _BORROW),
                            (borrow_then_commit_by_sql, "write", _BORROW),
                            (borrow_returning_bytes, "write", _BORROW), (read_that_writes, "read", _NONE),
                            (chatty, "read", _NONE), (spin, "read", _NONE), (hog, "read", _NONE),
                            (die, "read", _NONE)]:
    TOOLS[_fn.__name__] = {"fn": _fn, "mode": _mode, "description": _fn.__name__, "parameters": _params}
'''


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(cpu_seconds=60, memory_mb=512))


@pytest.fixture
def library() -> ModuleSource:
    return ModuleSource(server="Library", code=library_module_source())


@pytest.fixture
def env(sandbox: Sandbox, library: ModuleSource) -> Iterator[Environment]:
    with Environment.start([library], library_db_bytes(), sandbox) as running:
        yield running


@pytest.fixture
def rogue_env(sandbox: Sandbox) -> Iterator[Environment]:
    module = ModuleSource(server="Library", code=library_module_source() + MISBEHAVING)
    with Environment.start([module], library_db_bytes(), sandbox, call_timeout=1.0) as running:
        yield running
