"""skiller.servers.pool: a warm worker, reset by swapping its database file, scores exactly as a fresh worker does."""
from __future__ import annotations

import asyncio

import pytest

from skiller.evaluator import evaluate
from skiller.servers import Environment, EnvironmentPool, ModuleSource
from skiller.servers.sandbox import Sandbox, SandboxLimits
from tests.evaluator.builders import make_task, make_transcript, run_calls
from tests.evaluator.library_tasks import BORROW
from tests.fixtures import library_db_bytes, library_module_source

ORACLE = [{"name": a["name"], "arguments": a["arguments"]} for a in BORROW]
EXTRA = [{"name": "return_book", "arguments": {"loan_id": "LN-0003"}},
         {"name": "borrow_book", "arguments": {"person_id": "P-002", "book_id": "BK-004"}}]
SAID = ["Done: loan LN-0005 is due 2026-03-16."]


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(cpu_seconds=60, memory_mb=512))


@pytest.fixture(scope="module")
def module() -> list[ModuleSource]:
    return [ModuleSource(server="Library", code=library_module_source())]


def test_warm_worker_evaluations_equal_fresh_worker_evaluations_even_after_a_write_episode(sandbox, module):
    db = library_db_bytes()
    with Environment.start(module, db, sandbox) as env:
        task = make_task(env, "borrow", BORROW, basis=["DB", "ACTION", "COMMUNICATE"], communicate=["LN-0005"])
        transcripts = [make_transcript(task, run_calls(env, calls), SAID, trial=i)
                       for i, calls in enumerate([ORACLE, [*ORACLE, *EXTRA], ORACLE[:2], ORACLE])]

    def fresh(transcript):
        with Environment.start(module, db, sandbox) as env:
            return asyncio.run(evaluate(task, transcript, env))

    expected = [fresh(t) for t in transcripts]
    assert [r.reward for r in expected] == [1.0, 0.0, 0.0, 1.0]
    with EnvironmentPool(sandbox) as pool:
        warm = []
        for transcript in transcripts:
            with pool.lease(module, db) as env:
                warm.append(asyncio.run(evaluate(task, transcript, env)))
                # The holder leaves its writes behind; the next lease must not see them.
                assert env.call(*EXTRA[0].values()).ok
        assert (pool.started, pool.reused) == (1, 3)
    assert warm == expected


def test_a_lease_starts_at_the_initial_state_and_concurrent_leases_get_distinct_workers(sandbox, module):
    db = library_db_bytes()
    with EnvironmentPool(sandbox) as pool:
        with pool.lease(module, db) as first:
            initial = first.state_hash()
            assert first.call("borrow_book", {"person_id": "P-001", "book_id": "BK-004"}).ok
            assert first.state_hash() != initial
            with pool.lease(module, db) as second:
                assert second is not first and second.state_hash() == initial
        with pool.lease(module, db) as again:
            assert again.state_hash() == initial
        assert pool.started == 2


def test_a_holder_that_raised_does_not_give_its_worker_back(sandbox, module):
    db = library_db_bytes()
    with EnvironmentPool(sandbox) as pool:
        with pytest.raises(RuntimeError):
            with pool.lease(module, db) as env:
                raise RuntimeError("step crashed mid-episode")
        assert not env.alive
        with pool.lease(module, db) as env2:
            assert env2 is not env and env2.alive
        assert pool.started == 2


def test_idle_workers_are_bounded_and_closed_with_the_pool(sandbox, module):
    with EnvironmentPool(sandbox, max_idle=1) as pool:
        with pool.lease(module, library_db_bytes()) as a:
            pass
        with pool.lease(module, library_db_bytes(("", "x_"))) as b:  # another database: another environment
            pass
        assert not a.alive and b.alive  # the least recently used idle worker was closed
    assert not b.alive


def test_brief_async_leases_wait_for_the_worker_starting_instead_of_starting_their_own(sandbox, module):
    db = library_db_bytes()

    async def main() -> tuple[list[bool], int, int]:
        with EnvironmentPool(sandbox) as pool:
            async def brief() -> bool:
                async with pool.alease(module, db, brief=True) as env:
                    return env.call("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}).ok

            async def held() -> int:  # holds its worker across an await: gets one of its own
                async with pool.alease(module, db) as env:
                    await asyncio.sleep(0.05)
                    return id(env)

            done = await asyncio.gather(*(brief() for _ in range(4)))
            ids = await asyncio.gather(held(), held())
            return done, pool.started, len(set(ids))

    done, started, distinct = asyncio.run(main())
    assert done == [True] * 4  # each brief holder found the initial state (LN-0005 free to borrow)
    assert started == 2 and distinct == 2  # one worker for the brief leases, one more for the second holder
