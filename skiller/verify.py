"""`skiller replay --verify`: re-fold the log, check every artifact, re-run deterministic checks."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import structlog

from skiller.audit import audit_log, prepare
from skiller.events import Projection
from skiller.servers.task import EnvironmentBundle
from skiller.steps.s05_tool_lists import ToolList
from skiller.steps.s09_implementation import Implementation, contract_tests
from skiller.steps.s16_validation import ValidatedTask, open_environment
from skiller.store import Store

log = structlog.get_logger()

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
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def replay(store: Store) -> tuple[Projection, float]:
    started = time.perf_counter()
    proj = store.projection()
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
    """Without `deep`: the fold every command uses, and the artifact hashes. With it: the log audit
    (file, chain, events; see `skiller.audit`) first, then every registered check on what it folded."""
    if not deep:
        proj, seconds = replay(store)
        report = Report(events=proj.events, seconds=seconds)
    else:
        prepare()
        started = time.perf_counter()
        drifts, proj = audit_log(store)
        seconds = time.perf_counter() - started
        if drifts:
            report = Report(events=proj.events, seconds=seconds, checked=["log"], problems=[str(d) for d in drifts])
            if any(d.kind == "corrupt" and not d.seq for d in drifts):
                return report  # nothing more can be read reliably
        else:  # the figure printed is the plain fold's speed, not the audit's
            report = Report(events=proj.events, seconds=replay(store)[1], checked=["log"])
    for name, fn in CHECKS if deep else CHECKS[:1]:
        try:
            report.problems.extend(fn(store, proj, sandbox))
        except Exception as exc:  # a check meeting a damaged log reports it; the audit goes on
            log.exception("verify.check_failed", check=name)
            report.problems.append(f"{name}: check could not run ({type(exc).__name__}: {_first_line(exc)})")
        report.checked.append(name)
    return report


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


@check("implementations")
def implementation_tests(store: Store, proj: Projection, sandbox: Any) -> list[str]:
    """Re-run every implemented domain's tests (theirs and our contract tests) in the sandbox."""
    problems = []
    for m in sorted(proj.of_kind("domain"), key=lambda m: m.stream):
        if m.state not in ("implemented", "templated"):
            continue
        impl = Implementation.model_validate_json(store.artifact(m.artifacts["implementation"]))
        tools = ToolList.model_validate_json(store.artifact(m.artifacts["tool_list"]))
        clock = proj.config["clock"] if proj.config else None
        files = {"impl.py": impl.module, "test_impl.py": impl.tests, "db.sqlite": store.artifact(m.artifacts["database"]),
                 "test_contract.py": contract_tests(tools, str(clock))}
        result = sandbox.run_pytest(files, ["test_contract.py", "test_impl.py"])
        if result.exit_code != 0 or result.failed or result.errors:
            problems.append(f"{m.stream}: tests no longer pass ({result.summary or result.killed})")
    return problems


@check("golden trajectories")
def golden_trajectories(store: Store, proj: Projection, sandbox: Any) -> list[str]:
    """Re-execute every validated golden trajectory on a fresh database; it must reach its recorded hash."""
    problems = []
    by_parent: dict[str, list] = {}
    for m in proj.of_kind("task"):
        if "validated" in m.artifacts and m.state != "rejected":
            by_parent.setdefault(m.inputs["parent"], []).append(m)
    for parent, tasks in sorted(by_parent.items()):
        holder = proj.machines[parent]
        bundle = EnvironmentBundle.model_validate_json(store.artifact(holder.artifacts["environment"]))
        with open_environment(bundle, store.artifact(holder.artifacts["database"]), sandbox) as env:
            for m in sorted(tasks, key=lambda m: m.stream):
                v = ValidatedTask.model_validate_json(store.artifact(m.artifacts["validated"]))
                env.reset()
                for action in v.actions:
                    result = env.call(action.name, action.arguments)
                    if not result.ok or result.value != action.expected:
                        problems.append(f"{m.stream}: {action.name} now gives {result.error or 'a different output'}")
                        break
                else:
                    if env.state_hash() != v.gold_state_hash:
                        problems.append(f"{m.stream}: golden trajectory ends in a different state")
    return problems
