"""skiller.evaluator.reward: the product over the basis, the premature-termination gate and infrastructure errors."""
from __future__ import annotations

import asyncio

import pytest

from skiller.evaluator import EvaluationSetupError, evaluate
from skiller.llm.scripted import ScriptedProvider
from tests.evaluator.builders import make_task, make_transcript, run_calls
from tests.evaluator.library_tasks import BORROW

ORACLE = [{"name": a["name"], "arguments": a["arguments"]} for a in BORROW]
SAID = ["Done: loan LN-0005 is due 2026-03-16."]


def _task(env, basis, **kw):
    return make_task(env, "borrow", BORROW, basis=basis, communicate=["LN-0005"], **kw)


def test_reward_is_the_product_of_the_basis_components_in_basis_order(env):
    task = _task(env, ["COMMUNICATE", "DB", "ACTION"])
    transcript = make_transcript(task, run_calls(env, ORACLE), SAID)
    result = asyncio.run(evaluate(task, transcript, env))
    assert result.reward == 1.0 and [c.name for c in result.components] == ["COMMUNICATE", "DB", "ACTION"]
    silent = asyncio.run(evaluate(task, transcript.model_copy(update={"messages": transcript.messages[:-1]}), env))
    assert silent.reward == 0.0 and [c.passed for c in silent.components] == [False, True, True]


def test_only_basis_components_run(env):
    task = _task(env, ["ACTION"])
    result = asyncio.run(evaluate(task, make_transcript(task, run_calls(env, ORACLE), []), env))
    assert result.reward == 1.0 and [c.name for c in result.components] == ["ACTION"]


@pytest.mark.parametrize("termination", ["max_turns", "too_many_errors", "agent_error", "user_error"])
def test_premature_termination_scores_zero_without_running_the_judge(env, termination):
    task = _task(env, ["DB", "NL_ASSERTION"], nl=["The assistant called borrow_book"])
    transcript = make_transcript(task, run_calls(env, ORACLE), SAID, termination=termination, error="boom")
    judge = ScriptedProvider()
    result = asyncio.run(evaluate(task, transcript, env, judge))
    assert result.reward == 0.0 and result.components == [] and not result.infrastructure_error
    assert result.reason == f"premature termination ({termination}): boom" and judge.calls == []


def test_an_infrastructure_error_is_marked_for_exclusion(env):
    task = _task(env, ["DB"])
    transcript = make_transcript(task, [], [], termination="infrastructure_error", error="provider down")
    result = asyncio.run(evaluate(task, transcript, env))
    assert result.infrastructure_error and result.reward == 0.0 and "provider down" in result.reason


def test_the_default_judge_is_the_rule_judge(env):
    task = _task(env, ["NL_ASSERTION"], nl=["The assistant called borrow_book"])
    result = asyncio.run(evaluate(task, make_transcript(task, run_calls(env, ORACLE), SAID), env))
    assert result.reward == 1.0 and "borrow_book was called 1 time(s)" in result.components[0].detail


def test_a_transcript_of_another_task_or_an_empty_basis_is_refused(env):
    task = _task(env, ["DB"])
    other = make_transcript(task, [], []).model_copy(update={"task_id": "other"})
    with pytest.raises(EvaluationSetupError, match="is for task other"):
        asyncio.run(evaluate(task, other, env))
    with pytest.raises(EvaluationSetupError, match="empty reward basis"):
        asyncio.run(evaluate(_task(env, []), make_transcript(task, [], []), env))
