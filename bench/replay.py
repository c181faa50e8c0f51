"""Replay benchmark: fold a log of >=100k events and print events folded per second.

Figures are the best of a few repeats, in wall time and in this process's CPU time: on a shared
machine the CPU figure is the one that stays put while other work competes for the cores.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

from skiller.events import LLMCalled, MachineCreated, TestsRan, Transitioned, fold
from skiller.store import Artifact, Store


def build_log(store: Store, events: int) -> None:
    """A realistic mix: machines created, transitions with artifacts, LLM calls, test runs."""
    batch: list = []
    n = 0
    machine = 0
    while n < events:
        stream = f"task:Domain{machine % 40}/{machine:05d}"
        art = Artifact.of_text("template", "TaskTemplate", f"template {machine}")
        batch += [MachineCreated(stream=stream, kind="task", initial="templated", artifacts={"template": art.sha256}),
                  LLMCalled(stream=stream, provider="builtin", model="builtin-text", purpose="s15.replan",
                            request_hash=f"{machine:064x}", input_tokens=120, output_tokens=80),
                  Transitioned(stream=stream, trigger="select_instances", source="templated", dest="instances_selected",
                               payload={"attempts": 1}, artifacts={"instance": art.sha256}),
                  TestsRan(stream=stream, step="s16", attempt=0, passed=3, failed=0, ok=True, output=""),
                  Transitioned(stream=stream, trigger="validate", source="instances_selected", dest="validated",
                               payload={"calls": 3})]
        n += 5
        machine += 1
        if len(batch) >= 5000:
            store.append(batch, [art])
            batch = []
    if batch:
        store.append(batch)


def best(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Fastest (wall seconds, CPU seconds) over `repeats` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "skiller.db"
        store = Store(path)
        started = time.perf_counter()
        build_log(store, args.events)
        written = time.perf_counter() - started
        rows = list(store.rows())

        def command_fold() -> None:  # what every command does: open the log read-only and fold it
            reader = Store(path, readonly="shared")
            reader.projection()
            reader.close()

        figures = {"fold (in memory)": best(lambda: fold(rows), args.repeats),
                   "fold (every column read from SQLite)": best(lambda: fold(store.rows()), args.repeats),
                   "projection (a command's fold from SQLite)": best(command_fold, args.repeats)}
        proj = fold(rows)
        store.close()
    n = len(rows)
    print(f"events: {n:,}  machines: {len(proj.machines):,}")
    print(f"append: {n / written:,.0f} events/s (batched transactions, each chained)")
    for name, (wall, cpu) in figures.items():
        print(f"{name}: {n / wall:,.0f} events/s wall, {n / cpu:,.0f} events/s CPU")


if __name__ == "__main__":
    main()
