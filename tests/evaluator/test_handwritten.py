"""The evaluator agrees with hand-scored transcripts (handwritten.yaml) on every component and the reward."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from skiller.evaluator import EvaluationResult, RuleJudge, evaluate, pass_hat_k
from skiller.llm.interface import Provider
from skiller.llm.scripted import Fault, ScriptedProvider
from tests.evaluator.builders import make_task, make_transcript, run_calls

DATA = yaml.safe_load(Path(__file__).with_name("handwritten.yaml").read_text())
CASES = DATA["cases"]


def _judge(spec: Any) -> Provider:
    if spec in (None, "rule"):
        return RuleJudge()
    answer = Fault(spec["fault"]) if "fault" in spec else spec["scripted"]
    return ScriptedProvider().push("eval.nl_assertion", answer)


def test_the_set_is_large_and_covers_every_component_both_ways():
    assert len(CASES) >= 20 and len({c["id"] for c in CASES}) == len(CASES)
    seen = {(name, verdict) for c in CASES for name, verdict in c["expect"]["components"].items()}
    for name in ["DB", "ACTION", "COMMUNICATE", "NL_ASSERTION", "OUTPUT"]:
        assert {(name, "pass"), (name, "fail")} <= seen, name
    terminations = {c.get("termination", "agent_stop") for c in CASES}
    assert {"max_turns", "too_many_errors", "infrastructure_error"} <= terminations
    assert any("fault" in (c.get("judge") or {}) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_evaluator_agrees_with_the_hand_scored_case(env, case):
    spec = DATA["tasks"][case["task"]]
    task = make_task(env, case["task"], spec["actions"], basis=spec["basis"], kind=spec["kind"],
                     communicate=spec.get("communicate"), nl=spec.get("nl"))
    records = run_calls(env, case["calls"])
    transcript = make_transcript(task, records, case["said"], user_said=case.get("user_said"),
                                 termination=case.get("termination", "agent_stop"))
    result = asyncio.run(evaluate(task, transcript, env, _judge(case.get("judge"))))
    got = {c.name: "pass" if c.passed else "fail" for c in result.components}
    details = {c.name: c.detail for c in result.components}
    assert got == case["expect"]["components"], details
    assert result.reward == case["expect"]["reward"]
    assert result.infrastructure_error is case["expect"].get("excluded", False)


def test_pass_hat_k_over_the_set_counts_only_non_excluded_trials(env):
    """Treat each task's cases as its trials: hand-computed pass^1 from the expected rewards."""
    expected: dict[str, list[int]] = {}
    for case in CASES:
        if not case["expect"].get("excluded", False):
            expected.setdefault(case["task"], []).append(case["expect"]["reward"])
    want = sum(sum(r) / len(r) for r in expected.values()) / len(expected)
    results = [EvaluationResult(task_id=c["task"], transcript_id=c["id"], trial=i, environment="Library",
                                agent="hand", reward=c["expect"]["reward"], components=[],
                                termination=c.get("termination", "agent_stop"),
                                infrastructure_error=c["expect"].get("excluded", False))
               for i, c in enumerate(CASES)]
    assert pass_hat_k(results, 1) == pytest.approx(want)
