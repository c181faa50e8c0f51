"""Runs the scheduler for a CLI command: records the run, wires the LLM client, shows progress."""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from events import MachineView, Projection, RunStarted
from servers import EnvironmentPool
from skiller.llm.client import LLMClient
from skiller.workspace import Workspace, dump_config
from statemachine import STATES, Scheduler

Allow = Callable[[MachineView, Projection], bool]


ROLLOUT_STATES = {"instantiated", "rolled_out", "evaluated"}  # where a task waits for rollouts and scores


def stop_after(config) -> Allow:
    """`scheduler.stop_after`: how far `skiller run` takes each domain; rollouts only if `rollout.in_run`."""
    limit = config.scheduler.stop_after
    domain_states = STATES["domain"]

    def allow(m: MachineView, p: Projection) -> bool:
        if m.kind == "world":
            return limit == "all" or m.state != "blueprinted"
        if limit == "all":
            return m.kind != "task" or m.state not in ROLLOUT_STATES or config.rollout.in_run
        if m.kind == "domain":
            return domain_states.index(m.state) < domain_states.index(limit)
        return False
    return allow


def tasks_in(states: set[str], domain: str | None = None) -> Allow:
    """`skiller rollout` / `skiller evaluate`: only task machines in these states (of one domain)."""
    def allow(m: MachineView, p: Projection) -> bool:
        return m.kind == "task" and m.state in states and (domain is None or m.inputs.get("domain") == domain)
    return allow


def only_domain(name: str, to: str | None) -> Allow:
    """`skiller advance --domain NAME [--to STATE]`: that domain and what it needs, nothing else."""
    stream = f"domain:{name}"
    order = STATES["domain"]

    def allow(m: MachineView, p: Projection) -> bool:
        if m.stream == "world":
            return stream not in p.machines
        if m.stream == stream:
            return to is None or order.index(m.state) < order.index(to)
        return False
    return allow


def advance(ws: Workspace, command: str, allow: Allow, console: Console | None = None) -> Projection:
    proj = ws.store.projection()
    run_id = f"run-{proj.runs + 1:04d}"
    ws.store.append([RunStarted(stream="run", command=command, config=dump_config(ws.config))], run_id=run_id)
    client = LLMClient(ws.provider(), ws.store)
    console = console or Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task("advancing", total=None)

        def on_progress(p: Projection) -> None:
            states: Counter[str] = Counter()
            for (kind, _, state), n in p.census.items():  # O(states) per commit, not O(machines)
                if kind != "world":
                    states[state] += n
            done = sum(n for s, n in states.items() if s in ("implemented", "templated", "evaluated", "failed"))
            bar.update(task, total=max(1, len(p.machines) - 1), completed=done,
                       description=" ".join(f"{s}:{n}" for s, n in sorted(states.items()))[:80] or "world")

        sandbox = ws.sandbox()
        with EnvironmentPool(sandbox) as environments:
            scheduler = Scheduler(store=ws.store, config=ws.config, llm=client, sandbox=sandbox, run_id=run_id,
                                  chat=ws.chat_provider(), environments=environments,
                                  max_parallel=ws.config.scheduler.max_parallel_steps, allow=allow,
                                  on_progress=on_progress)
            return asyncio.run(scheduler.run())
