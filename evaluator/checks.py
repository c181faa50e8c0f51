"""The evaluation components (DB, ACTION, COMMUNICATE, NL_ASSERTION, OUTPUT): one check each, one verdict each."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from skiller.evaluator.judge import Verdicts, describe_verdicts, judge_request
from skiller.evaluator.matching import args_match, assistant_text, compared_keys, max_matching, mentions, outputs_equal
from skiller.servers.database import RowChange, state_diff
from skiller.servers.environment import Environment
from skiller.servers.episode import ToolCallRecord, Transcript
from skiller.servers.task import GoldenAction, RewardBasis, Task
from skiller.llm.interface import LLMError, Provider

_MAX_DIFF_LINES = 6


class ComponentResult(BaseModel):
    """The verdict of one component; `detail` says why in one line."""

    model_config = ConfigDict(frozen=True)
    name: RewardBasis
    passed: bool
    detail: str


class EvaluationSetupError(ValueError):
    """The evaluator was given inputs that do not belong together (wrong environment, wrong task)."""


def _call_text(name: str, arguments: dict[str, Any], keys: list[str] | None = None) -> str:
    shown = arguments if keys is None else {k: arguments.get(k) for k in keys}
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items())) + ")"


def _succeeded(transcript: Transcript) -> list[ToolCallRecord]:
    return [c for c in transcript.tool_calls if c.ok and c.arguments is not None]


def _assistant_actions(task: Task) -> list[GoldenAction]:
    return [a for a in task.golden_actions if a.requestor == "assistant"]


# --- DB -------------------------------------------------------------------------------------------

def _write_modes(env: Environment) -> dict[str, str]:
    return {t.name: t.mode for t in env.tools}


def _replay(env: Environment, calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Run calls on the environment in order; return one line per call that failed."""
    problems = []
    for index, (name, arguments) in enumerate(calls, 1):
        result = env.call(name, arguments)
        if not result.ok:
            problems.append(f"#{index} {name} failed on replay: {result.error}")
    return problems


def _describe_change(change: RowChange) -> str:
    if change.kind == "added":
        return f"extra {change.table} row {change.key}"
    if change.kind == "removed":
        return f"missing {change.table} row {change.key}"
    before, after = change.before or {}, change.after or {}
    cols = ", ".join(f"{c} {before.get(c)!r}->{after.get(c)!r}" for c in sorted(set(before) | set(after)))
    return f"{change.table} {change.key}: {cols}"


def _diff_against_gold(task: Task, env: Environment, modes: dict[str, str]) -> str:
    """Diff the environment's current (predicted) state with the state the golden writes produce."""
    with tempfile.TemporaryDirectory(prefix="skiller-eval-") as tmp:
        predicted = Path(tmp) / "predicted.sqlite"
        shutil.copyfile(env.db_path, predicted)
        env.reset()
        gold_writes = [(a.name, a.arguments) for a in task.golden_actions if modes.get(a.name, a.mode) == "write"]
        failed = _replay(env, gold_writes)
        if failed or env.state_hash() != task.gold_state_hash:
            return "no diff: the golden writes do not reproduce the gold state" + (f" ({failed[0]})" if failed else "")
        changes = state_diff(env.db_path, predicted)
    lines = [_describe_change(c) for c in changes[:_MAX_DIFF_LINES]]
    if len(changes) > _MAX_DIFF_LINES:
        lines.append(f"+{len(changes) - _MAX_DIFF_LINES} more")
    return "gold->got: " + "; ".join(lines) if lines else "no row differs"


def check_db(task: Task, transcript: Transcript, env: Environment) -> ComponentResult:
    """DB: replay the transcript's successful write calls, in order, on a fresh copy of the environment's
    database and compare the state hash with the gold one. Any extra, missing or deleting write fails.

    Writes are told from reads by the tool modes `env` declares; failed calls are skipped (the runtime
    rolled them back). The hash alone decides; a recorded success that fails on replay is reported in the
    detail. `env` must run the task's environment; its state afterwards is unspecified.
    """
    modes = _write_modes(env)
    env.reset()
    if (initial := env.state_hash()) != task.initial_state_hash:
        raise EvaluationSetupError(f"task {task.id}: environment starts at state {initial[:12]}, "
                                   f"the task expects {task.initial_state_hash[:12]}")
    writes = [(c.name, c.arguments or {}) for c in _succeeded(transcript) if modes.get(c.name) == "write"]
    diverged = _replay(env, writes)
    predicted = env.state_hash()
    if predicted == task.gold_state_hash:
        return ComponentResult(name="DB", passed=True, detail=f"gold state reached with {len(writes)} write(s)")
    detail = f"state {predicted[:12]} is not the gold {task.gold_state_hash[:12]} after {len(writes)} write(s)"
    if diverged:
        detail += f"; replay diverged: {diverged[0]}"
    return ComponentResult(name="DB", passed=False, detail=f"{detail}; {_diff_against_gold(task, env, modes)}")


# --- ACTION and OUTPUT ----------------------------------------------------------------------------

def check_action(task: Task, transcript: Transcript) -> ComponentResult:
    """ACTION: every golden action the assistant should make is matched by a distinct successful call with
    the same name and equal compared arguments (see `matching.args_match`); order and extra calls are free.
    A call the environment rejected did not perform the action, so it matches nothing."""
    golden, calls = _assistant_actions(task), _succeeded(transcript)
    if not golden:
        return ComponentResult(name="ACTION", passed=True, detail="no golden assistant action to match")
    matched = max_matching(golden, calls, lambda g, c: g.name == c.name and args_match(g, c.arguments or {}))
    missing = [g for i, g in enumerate(golden) if i not in matched]
    if not missing:
        return ComponentResult(name="ACTION", passed=True, detail=f"all {len(golden)} golden action(s) matched")
    lines = []
    for g in missing:
        same_name = sum(1 for c in calls if c.name == g.name)
        hint = f" ({same_name} successful {g.name} call(s) with other arguments)" if same_name else ""
        lines.append(f"{g.action_id} {_call_text(g.name, g.arguments, compared_keys(g))}{hint}")
    return ComponentResult(name="ACTION", passed=False,
                           detail=f"{len(missing)} of {len(golden)} unmatched: " + "; ".join(lines))


def check_output(task: Task, transcript: Transcript) -> ComponentResult:
    """OUTPUT: every golden action with an `expected` value has a distinct successful call with the same
    name and compared arguments whose output equals it exactly (`matching.outputs_equal`)."""
    golden = [a for a in _assistant_actions(task) if a.expected is not None]
    if not golden:
        return ComponentResult(name="OUTPUT", passed=True, detail="no golden action has an expected output")
    calls = _succeeded(transcript)
    matched = max_matching(golden, calls, lambda g, c: g.name == c.name and args_match(g, c.arguments or {})
                           and outputs_equal(c.output, g.expected))
    missing = [g for i, g in enumerate(golden) if i not in matched]
    if not missing:
        return ComponentResult(name="OUTPUT", passed=True, detail=f"all {len(golden)} expected output(s) seen")
    lines = []
    for g in missing:
        other = sum(1 for c in calls if c.name == g.name and args_match(g, c.arguments or {}))
        hint = f" ({other} matching call(s) returned something else)" if other else ""
        lines.append(f"{g.action_id} {_call_text(g.name, g.arguments, compared_keys(g))}{hint}")
    return ComponentResult(name="OUTPUT", passed=False,
                           detail=f"{len(missing)} expected output(s) never returned: " + "; ".join(lines))


# --- COMMUNICATE ----------------------------------------------------------------------------------

def check_communicate(task: Task, transcript: Transcript) -> ComponentResult:
    """COMMUNICATE: each string appears in the assistant's messages (case-insensitive; thousands commas
    and trailing decimal zeros ignored, so "1,250.00" matches "1250"; see `matching.mentions`)."""
    wanted = task.evaluation_criteria.communicate_info
    if not wanted:
        return ComponentResult(name="COMMUNICATE", passed=True, detail="nothing to communicate")
    said = assistant_text(transcript)
    missing = [w for w in wanted if not mentions(said, w)]
    if missing:
        return ComponentResult(name="COMMUNICATE", passed=False,
                               detail="not told: " + "; ".join(repr(m) for m in missing))
    return ComponentResult(name="COMMUNICATE", passed=True, detail=f"all {len(wanted)} item(s) told")


# --- NL_ASSERTION ---------------------------------------------------------------------------------

def _unmet(detail: str) -> ComponentResult:
    return ComponentResult(name="NL_ASSERTION", passed=False, detail=detail)


async def check_nl_assertions(task: Task, transcript: Transcript, judge: Provider) -> ComponentResult:
    """NL_ASSERTION: ask `judge` for one verdict per assertion; all must be met. A judge error, a malformed
    answer, a wrong number of verdicts or a verdict without justification fails: it never passes."""
    assertions = task.evaluation_criteria.nl_assertions
    if not assertions:
        return ComponentResult(name="NL_ASSERTION", passed=True, detail="no assertions (vacuously met)")
    try:
        response = await judge.complete(judge_request(transcript, assertions))
    except LLMError as exc:
        return _unmet(f"judge failed: {exc}")
    output = response.output
    if not isinstance(output, Verdicts):
        return _unmet(f"judge answered {type(output).__name__}, not Verdicts")
    if len(output.verdicts) != len(assertions):
        return _unmet(f"judge gave {len(output.verdicts)} verdict(s) for {len(assertions)} assertion(s)")
    unjustified = [i for i, v in enumerate(output.verdicts, 1) if not v.justification.strip()]
    if unjustified:
        return _unmet(f"verdict(s) {unjustified} have no justification")
    return ComponentResult(name="NL_ASSERTION", passed=all(v.met for v in output.verdicts),
                           detail=describe_verdicts(output))
