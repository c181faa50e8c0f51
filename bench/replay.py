"""Replay benchmark: fold a log of >=100k events and print events folded per second."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from events import LLMCalled, MachineCreated, TestsRan, Transitioned, fold
from store import Artifact, Store


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "skiller.db")
        started = time.perf_counter()
        build_log(store, args.events)
        written = time.perf_counter() - started
        rows = list(store.rows())
        started = time.perf_counter()
        proj = fold(rows)
        folded = time.perf_counter() - started
        started = time.perf_counter()
        fold(store.rows())
        with_io = time.perf_counter() - started
    print(f"events: {len(rows):,}  machines: {len(proj.machines):,}")
    print(f"append: {len(rows) / written:,.0f} events/s (batched transactions)")
    print(f"fold (in memory): {len(rows) / folded:,.0f} events/s")
    print(f"fold (reading SQLite): {len(rows) / with_io:,.0f} events/s")


if __name__ == "__main__":
    main()
