"""Rollout and evaluation benchmark: oracle episodes and evaluations per second on one warm environment
(builtin user), and the state hash of the domain's database (cold, unchanged, after one write).

Rates are given per wall second and per CPU second (this process plus its sandboxed worker), since
wall time on a shared machine says more about the neighbours than about Skiller.

Measured (ChargingNetwork, 24 tasks, 120 KB database; load average 5.6-6.6 from other jobs on 2 cores;
the code before and after issue 13's rollout work run back to back, twice each):
- before: 133-145 oracle episodes per CPU-s (89-97 per wall s), 291-323 evaluations per CPU-s; state
  hash 3.8 ms cold, 0.02 ms unchanged or reset, 2.4-2.7 ms after a one-row write;
- after: 285-298 episodes per CPU-s (200 per wall s), 533-546 evaluations per CPU-s; state hash
  3.8-4.0 ms cold, 0.02 ms unchanged or reset, 1.4 ms after a one-row write (1.1 ms in a quieter
  moment). Per episode about 2.5 ms in this process (the oracle and the builtin user, now reading
  each message once) and 0.7 ms in the worker, whose reset now costs a few blocks written back by
  this process instead of a reopened copy. Calls are awaited on the event loop, not in a thread.
Then the per-episode work (same bench; the code before and after run back to back, three times each,
at load average 3.2-3.6 and again at 6.6-7.2 from other jobs on 2 cores):
- before: 223-268 episodes per CPU-s (98-210 per wall s), 470-643 evaluations per CPU-s;
- after: 302-495 episodes per CPU-s (158-487 per wall s), 458-724 evaluations per CPU-s (the same,
  within the noise). Warm (every task run once before measuring): 446-518 episodes per CPU-s, about
  1.3-1.45 ms per episode in this process (was 2.7-2.95) and 0.67-0.79 ms in the worker (was
  0.79-1.13). What a task alone decides is planned once for all its episodes and trials, a result's
  sentence is said once per result text, texts are read once (a conversation line by line), a reset
  rides on the episode's first call (one round trip less) and a reply is awaited in poll(2) while
  the event loop has nothing else to do.
Then the state hash after a write (servers/tablerows.py: rows kept one by one by their cells, a changed
cell decoded from its record, SQLite opened only for what cannot be decoded; same digests): at load
average 4-5, 0.49-0.85 ms after a one-row write in this bench (was 1.03-1.29 back to back; 1.6-2.0
before the in-memory read), 0.33 ms min and 0.43 ms median per digest over 1,500 writes (was 0.85 /
0.99). Cold 3.8-6.4 ms (the whole file read once, then kept), 0.02 ms unchanged or reset.
Still short of issue 13's 1,000 episodes/s: the worker's share is mostly the generated tools' own SQL
(a new id scans its table), and the oracle and the builtin user still spend about a millisecond of
Python over an episode's ~14 turns.
Then (a session later, same bench, a helper's builds running alongside): 417-458 episodes per CPU-s (245 in a
run that met their start), 529-885 evaluations per CPU-s, 0.39-0.71 ms per digest after a one-row write.
py-spy over this process: the oracle 35%, the builtin user 19%, calls and reset 25% (of which 7 points
waiting in poll), pydantic models 5%, JSON 12% (all inside those). The worker spends 0.55-0.75 ms per
episode (3.4 calls and a reset); replaying the same requests in-process costs 0.35 ms: the rest is the
pipe and SQLite's per-transaction locking (strace: ~15 system calls per call). A new id computed by SQL
instead of a Python scan made no difference at this table size. Keeping the undo journal in memory saves
six system calls per write call but lets a tool that replaced its database file write into the unlinked
file unnoticed: reverted.
Then (quiet machine): 503-521 episodes per CPU-s, 970-1,373 evaluations per CPU-s, 0.30-0.45 ms per digest
after a one-row write. The "replayed rollouts" line sets the floor: the agent's and the user's turns replayed
from a recorded transcript (zero cost), the tools still called in the sandboxed worker, gives 733-755 episodes
per CPU-s. So even a free agent and user stay under 1,000/s while every call crosses the sandbox (about 0.8 ms
per episode in the worker: 3.4 calls and a reset; a journal file created and removed per write; TMPDIR on
/dev/shm gained only 10-20%).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import structlog

from skiller.evaluator import RuleJudge, evaluate
from skiller.rollout import BuiltinUser, OracleAgent, run_episode
from skiller.servers import Environment, StateHasher, state_hash
from skiller.servers.task import EnvironmentBundle, Task
from skiller.cli import main as skiller
from skiller.store import Store


def cpu(env: Environment) -> float:
    """CPU seconds of this process and of the environment's worker."""
    own = time.process_time()
    try:
        fields = Path(f"/proc/{env._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()  # noqa: SLF001
        return own + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError):
        return own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="passes over the domain's tasks")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        skiller(["init", str(root)])
        skiller(["run", "-w", str(root), "--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1",
                 "--set", "rollout.in_run=false", "--set", "fusion.enabled=false"])
        store = Store(root / "skiller.db")
        proj = store.projection()
        domain = next(m for m in proj.of_kind("domain"))
        bundle = EnvironmentBundle.model_validate_json(store.artifact(domain.artifacts["environment"]))
        tasks = [Task.model_validate_json(store.artifact(m.artifacts["task"])) for m in proj.of_kind("task")
                 if "task" in m.artifacts]
        database = store.artifact(domain.artifacts["database"])
        asyncio.run(measure(bundle, database, tasks, args.rounds))
        hashing(database, Path(tmp))


async def measure(bundle: EnvironmentBundle, database: bytes, tasks: list[Task], rounds: int) -> None:
    with Environment.start(list(bundle.modules), database) as env:
        transcripts = []
        started, used = time.perf_counter(), cpu(env)
        for r in range(rounds):
            for task in tasks:
                transcripts.append(await run_episode(task, env, OracleAgent(task), BuiltinUser(task, seed=r),
                                                     system_prompt=bundle.policy, trial=r))
        wall, used = time.perf_counter() - started, cpu(env) - used
        print(f"domain: {bundle.name}; tasks: {len(tasks)}; episodes: {len(transcripts)}")
        print(f"oracle rollouts: {len(transcripts) / wall:,.0f} episodes/s wall, {len(transcripts) / used:,.0f} per CPU-s")
        by_id = {t.id: t for t in tasks}
        judge = RuleJudge()
        started, used = time.perf_counter(), cpu(env)
        rewards = [(await evaluate(by_id[t.task_id], t, env, judge)).reward for t in transcripts]
        wall, used = time.perf_counter() - started, cpu(env) - used
        print(f"evaluations: {len(transcripts) / wall:,.0f} transcripts/s wall, {len(transcripts) / used:,.0f} per CPU-s; "
              f"mean reward {sum(rewards) / len(rewards):.2f}")


def hashing(database: bytes, tmp: Path, n: int = 200) -> None:
    path = tmp / "state.sqlite"
    path.write_bytes(database)
    fresh = tmp / "fresh.sqlite"
    shutil.copy(path, fresh)
    started = time.process_time()
    for _ in range(20):
        state_hash(path)
    cold = (time.process_time() - started) / 20
    hasher = StateHasher()
    hasher.digest(path)
    started = time.process_time()
    for _ in range(n):
        hasher.digest(path)
    same = (time.process_time() - started) / n
    conn = sqlite3.connect(path, isolation_level=None)
    table = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != 'person'"))[-1]
    column = [r[1] for r in conn.execute(f'SELECT * FROM pragma_table_info("{table}")')][-1]
    spent = 0.0
    for i in range(n):  # a write tool's typical effect: one row of one table changes
        conn.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', (f"v{i}", i % 50 + 1))
        started = time.process_time()
        hasher.digest(path)
        spent += time.process_time() - started
    conn.close()
    print(f"state hash of the {len(database) // 1024} KB database (CPU): cold {cold * 1000:.2f} ms; "
          f"unchanged or reset {same * 1000:.3f} ms; after a one-row write to {table} {spent / n * 1000:.2f} ms")


if __name__ == "__main__":
    main()
