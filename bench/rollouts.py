"""Rollout and evaluation benchmark: oracle episodes per second and evaluations per second (builtin user)."""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from evaluator import RuleJudge, evaluate
from rollout import BuiltinUser, OracleAgent, run_episode
from servers.environment import Environment
from servers.task import EnvironmentBundle, Task
from skiller.cli import main as skiller
from store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the domain's tasks")
    args = parser.parse_args()
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
        asyncio.run(measure(bundle, store.artifact(domain.artifacts["database"]), tasks, args.rounds))


async def measure(bundle: EnvironmentBundle, database: bytes, tasks: list[Task], rounds: int) -> None:
    with Environment.start(list(bundle.modules), database) as env:
        transcripts = []
        started = time.perf_counter()
        for r in range(rounds):
            for task in tasks:
                transcripts.append(await run_episode(task, env, OracleAgent(task), BuiltinUser(task, seed=r),
                                                     system_prompt=bundle.policy, trial=r))
        rollouts = len(transcripts) / (time.perf_counter() - started)
        by_id = {t.id: t for t in tasks}
        judge = RuleJudge()
        started = time.perf_counter()
        rewards = [(await evaluate(by_id[t.task_id], t, env, judge)).reward for t in transcripts]
        evaluations = len(transcripts) / (time.perf_counter() - started)
    print(f"domain: {bundle.name}; tasks: {len(tasks)}; episodes: {len(transcripts)}; mean reward {sum(rewards) / len(rewards):.2f}")
    print(f"oracle rollouts: {rollouts:,.1f} episodes/s")
    print(f"evaluations: {evaluations:,.1f} transcripts/s")


if __name__ == "__main__":
    main()
