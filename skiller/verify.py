"""`skiller replay --verify`: re-fold the log, check every artifact, re-run deterministic checks."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from events import Projection, fold
from store import Store

Check = Callable[[Store, Projection, Any], list[str]]  # (store, projection, sandbox) -> problems
CHECKS: list[tuple[str, Check]] = []


def check(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS.append((name, fn))
        return fn
    return register


@dataclass
class Report:
    events: int = 0
    seconds: float = 0.0
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def replay(store: Store) -> tuple[Projection, float]:
    started = time.perf_counter()
    proj = fold(store.rows())
    return proj, time.perf_counter() - started


@check("artifacts")
def artifact_hashes(store: Store, proj: Projection, sandbox: Any) -> list[str]:
    problems = []
    for sha, content in store.artifact_shas():
        if hashlib.sha256(content).hexdigest() != sha:
            problems.append(f"artifact {sha[:12]} content does not match its hash")
    for m in proj.machines.values():
        for name, sha in m.artifacts.items():
            try:
                store.artifact(sha)
            except KeyError:
                problems.append(f"{m.stream}: artifact '{name}' ({sha[:12]}) is missing")
    return problems


def verify(store: Store, sandbox: Any, deep: bool = True) -> Report:
    proj, seconds = replay(store)
    report = Report(events=proj.events, seconds=seconds)
    live = store.projection()
    for stream, m in live.machines.items():
        if proj.machines.get(stream) is None or proj.machines[stream].state != m.state:
            report.problems.append(f"{stream}: replayed state differs from the live fold")
    for name, fn in CHECKS if deep else CHECKS[:1]:
        problems = fn(store, proj, sandbox)
        report.checked[name] = report.checked.get(name, 0) + 1
        report.problems.extend(problems)
    return report
