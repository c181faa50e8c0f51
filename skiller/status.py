"""What `skiller status` and the end of a run print: machines and tasks by state, LLM usage, failures by cause."""
from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from skiller.evaluator.quality import bigram_diversity
from skiller.events import Projection
from skiller.failures import causes, format_causes
from skiller.statemachine import STATES
from skiller.workspace import Workspace

# Piped output (logs, CI, tests) gets a wide console: long fused names must not wrap into unreadable cells.
# No emoji codes: `domain:Hospital: implemented` must not print a hospital pictogram.
console = Console(width=None if sys.stdout.isatty() else 160, emoji=False)
err = Console(stderr=True, emoji=False)


def failures(proj) -> list:
    return [m for m in proj.machines.values() if m.last_error or m.state == "failed"]


def _why(m) -> str:
    return m.last_error or m.payload.get("reason") or m.state


def print_summary(proj) -> None:
    states = Counter((m.kind, m.state) for m in proj.machines.values())
    console.print(", ".join(f"{k}:{s}={n}" for (k, s), n in sorted(states.items())))
    print_causes(failures(proj))


def print_causes(machines) -> None:
    """Failed machines grouped by cause, one line each (details are in the log)."""
    for line in format_causes(causes(Projection(machines={m.stream: m for m in machines}))):
        err.print(line, highlight=False, markup=False, soft_wrap=True)


def print_status(ws: Workspace) -> None:
    """Machines by state, tasks by environment, LLM usage, and every failure on one line."""
    proj = ws.store.projection()
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for m in proj.machines.values():
        by_kind[m.kind][m.state] += 1
    table = Table(title="machines by state")
    table.add_column("kind")
    table.add_column("state")
    table.add_column("count", justify="right")
    for kind in STATES:
        for state in STATES[kind]:
            if by_kind[kind][state]:
                table.add_row(kind, state, str(by_kind[kind][state]))
    console.print(table)
    _task_status(ws, proj)
    usage = Table(title="LLM calls")
    for col in ("provider/model", "calls", "cache hits", "tokens in", "tokens out"):
        usage.add_column(col, justify="left" if col == "provider/model" else "right")
    for model, u in sorted(proj.usage.items()):
        usage.add_row(model, str(u.calls), str(u.cache_hits), str(u.input_tokens), str(u.output_tokens))
    console.print(usage)
    for m in failures(proj):
        console.print(f"[red]{escape(m.stream)}[/red] {m.state}: {escape(_why(m))}", soft_wrap=True)


def _task_status(ws, proj) -> None:
    """Tasks per environment by state, rejection reasons by kind, and first-query diversity."""
    tasks = proj.of_kind("task")
    if not tasks:
        return
    by_env: dict[str, Counter] = defaultdict(Counter)
    reasons: Counter = Counter()
    queries: dict[str, list[str]] = defaultdict(list)
    for m in tasks:
        env = m.inputs.get("domain", "?")
        by_env[env][m.state] += 1
        if m.state == "rejected":
            reasons[m.payload.get("reason", "unknown")] += 1
        if "task" in m.artifacts:
            queries[env].append(json.loads(ws.store.artifact(m.artifacts["task"]))["first_query"])
    states = [s for s in STATES["task"] if any(c[s] for c in by_env.values())]
    table = Table(title="tasks by environment")
    for col in ["environment", *states, "distinct queries", "bigram diversity"]:
        table.add_column(col, justify="left" if col == "environment" else "right")
    for env in sorted(by_env):
        qs = queries.get(env, [])
        table.add_row(env, *(str(by_env[env][s]) for s in states), f"{len(set(qs))}/{len(qs)}",
                      f"{bigram_diversity(qs):.2f}" if qs else "-")
    console.print(table)
    if reasons:
        console.print("rejected by reason: " + ", ".join(f"{r}={n}" for r, n in reasons.most_common()))
