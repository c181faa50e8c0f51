"""Runs the scheduler for a CLI command: records the run, wires the LLM client, shows progress."""
from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from skiller.config_change import config_changes
from skiller.events import MachineView, Projection, RunStarted
from skiller.executors import open_executor
from skiller.llm.client import LLMClient
from skiller.names import canonical_domains
from skiller.servers import EnvironmentPool
from skiller.statemachine import STATES, Scheduler
from skiller.workspace import Workspace, dump_config

Allow = Callable[[MachineView, Projection], bool]


ROLLOUT_STATES = {"instantiated", "rolled_out", "evaluated"}  # where a task waits for rollouts and scores
PLAIN_PROGRESS_SECONDS = 10.0  # how often piped output (CI, logs) gets a progress line; env SKILLER_PROGRESS_SECONDS


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


def preflight(ws: Workspace) -> list[str]:
    """Checks before any work: named domains exist (spelled canonically from here on) and the config file
    did not change under the workspace. Returns the file keys changed explicitly with `--set`."""
    s01 = ws.config.steps.s01
    s01.domains = canonical_domains(s01.domains, ws.config.provider.name)
    return config_changes(ws)


def advance(ws: Workspace, command: str, allow: Allow, console: Console | None = None) -> Projection:
    changed = preflight(ws)
    proj = ws.store.projection()
    run_id = f"run-{proj.runs + 1:04d}"
    ws.store.append([RunStarted(stream="run", command=command, config=dump_config(ws.config),
                                overrides=list(ws.overrides), changed=changed,
                                file_config=dump_config(ws.file_config) if ws.file_config else {})], run_id=run_id)
    client = LLMClient(ws.provider(), ws.store, ws.config.output_caps.for_purpose)
    console = console or Console(stderr=True, emoji=False, markup=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task("advancing", total=None)

        every = float(os.environ.get("SKILLER_PROGRESS_SECONDS") or PLAIN_PROGRESS_SECONDS)
        plain = PlainProgress(console, every) if not console.is_terminal else None

        def on_progress(p: Projection) -> None:
            states: Counter[str] = Counter()
            for (kind, _, state), n in p.census.items():  # O(states) per commit, not O(machines)
                if kind != "world":
                    states[state] += n
            done = sum(n for (kind, _, s), n in p.census.items() if kind != "world" and _finished(kind, s))
            what = " ".join(f"{s}:{n}" for s, n in sorted(states.items())) or "world"
            bar.update(task, total=max(1, len(p.machines) - 1), completed=done, description=what[:80])
            if plain is not None:
                plain(done, max(1, len(p.machines) - 1), what)

        sandbox = ws.sandbox()
        with EnvironmentPool(sandbox) as environments:
            executor = open_executor(ws, client, sandbox, environments)
            try:
                scheduler = Scheduler(store=ws.store, config=ws.config, llm=client, sandbox=sandbox, run_id=run_id,
                                      chat=ws.chat_provider(), environments=environments, executor=executor,
                                      max_parallel=ws.config.scheduler.max_parallel_steps, allow=allow,
                                      on_progress=on_progress)
                proj = asyncio.run(scheduler.run())
            finally:
                executor.close()
        if plain is not None and plain.last is not None:
            plain.last = None  # a run long enough to report progress also reports where it stopped
            on_progress(proj)
        if scheduler.halted:
            console.print(f"stopped starting new work: {scheduler.halted} (committed work is kept; fix this and "
                          "run again to resume)", highlight=False, markup=False, soft_wrap=True)
        return proj


def _finished(kind: str, state: str) -> bool:
    """Whether a machine has nothing left to do in a full run (a templated task has all of it ahead)."""
    if state in ("failed", "rejected"):
        return True
    return state == ("evaluated" if kind == "task" else "templated")


class PlainProgress:
    """Progress for output that is not a terminal (pipes, CI logs): a plain line every `every`
    seconds, where a terminal gets rich's live bar. A command done sooner prints none."""

    def __init__(self, console: Console, every: float = PLAIN_PROGRESS_SECONDS) -> None:
        self.console, self.every = console, every
        self.started = time.monotonic()
        self.last: float | None = None

    def __call__(self, done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if now - (self.started if self.last is None else self.last) < self.every:
            return
        self.last = now
        self.console.print(f"[{now - self.started:6.0f}s] {done}/{total} machines done; {what}",
                           highlight=False, markup=False, soft_wrap=True)
