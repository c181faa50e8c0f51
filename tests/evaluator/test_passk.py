"""skiller.evaluator.passk: pass^k against hand-computed values, the summary table and results.jsonl."""
from __future__ import annotations

import json

import pytest

from skiller.evaluator import ALL, EvaluationResult, format_summary, pass_hat_k, read_results, summary_table, write_results


def _r(task: str, trial: int, reward: float, env: str = "Library", infra: bool = False) -> EvaluationResult:
    return EvaluationResult(task_id=task, transcript_id=f"{task}-{trial}", trial=trial, environment=env,
                            agent="oracle", reward=reward, components=[],
                            termination="infrastructure_error" if infra else "user_stop", infrastructure_error=infra)


def _trials(task: str, outcomes: str, env: str = "Library") -> list[EvaluationResult]:
    """'1' success, '0' failure, 'x' infrastructure error."""
    return [_r(task, i, float(o == "1"), env, infra=o == "x") for i, o in enumerate(outcomes)]


def test_four_trials_two_successes():
    results = _trials("t", "1010")
    assert pass_hat_k(results, 1) == pytest.approx(0.5)
    assert pass_hat_k(results, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_hat_k(results, 3) == 0.0 and pass_hat_k(results, 4) == 0.0


def test_pass_hat_k_is_the_mean_over_tasks():
    results = _trials("a", "1111") + _trials("b", "1100") + _trials("c", "0000")
    assert pass_hat_k(results, 1) == pytest.approx((1 + 0.5 + 0) / 3)
    assert pass_hat_k(results, 2) == pytest.approx((1 + 1 / 6 + 0) / 3)
    assert pass_hat_k(_trials("d", "1110"), 3) == pytest.approx(1 / 4)  # C(3,3)/C(4,3)


def test_infrastructure_errors_are_not_trials():
    results = _trials("t", "1x1x0")  # n = 3, c = 2
    assert pass_hat_k(results, 1) == pytest.approx(2 / 3)
    assert pass_hat_k(results, 2) == pytest.approx(1 / 3)  # C(2,2)/C(3,2)
    with pytest.raises(ValueError, match="none of the tasks has 4 counted trials"):
        pass_hat_k(results, 4)


def test_tasks_with_fewer_than_k_trials_are_skipped_not_scored_zero():
    results = _trials("long", "1111") + _trials("short", "00")
    assert pass_hat_k(results, 2) == pytest.approx(0.5)
    assert pass_hat_k(results, 3) == 1.0
    with pytest.raises(ValueError):
        pass_hat_k(results, 0)


def test_a_reward_counts_as_success_only_when_it_is_one():
    assert pass_hat_k([_r("t", 0, 0.999), _r("t", 1, 1.0)], 1) == pytest.approx(0.5)


def test_summary_table_has_a_row_per_environment_and_an_all_row():
    results = (_trials("a", "1100") + _trials("b", "11x") + _trials("f", "10", env="Library_Shop"))
    rows = summary_table(results, max_k=3)
    assert [r.environment for r in rows] == ["Library", "Library_Shop", ALL]
    lib, shop, every = rows
    assert (lib.tasks, lib.trials, lib.excluded) == (2, 6, 1)
    assert lib.avg_reward == pytest.approx(4 / 6)
    assert lib.pass_hat[0] == pytest.approx((0.5 + 1) / 2)
    assert lib.pass_hat[1] == pytest.approx((1 / 6 + 1) / 2)
    assert lib.pass_hat[2] == pytest.approx(0.0) and lib.skipped == [0, 0, 1]
    assert shop.pass_hat == [pytest.approx(0.5), 0.0, None] and shop.skipped == [0, 0, 1]
    assert (every.tasks, every.trials, every.excluded) == (3, 8, 1)
    assert every.pass_hat[0] == pytest.approx((0.5 + 1 + 0.5) / 3)
    text = format_summary(rows)
    assert text.splitlines()[0].split() == ["environment", "tasks", "trials", "excluded", "avg", "pass^1", "pass^2",
                                            "pass^3"]
    assert text.splitlines()[2].split()[-1] == "-"


def test_results_jsonl_is_deterministic_and_round_trips(tmp_path):
    results = _trials("b", "10") + _trials("a", "1x")
    first = write_results(results, tmp_path / "one.jsonl").read_bytes()
    second = write_results(list(reversed(results)), tmp_path).read_bytes()
    assert (tmp_path / "results.jsonl").exists() and first == second
    lines = first.decode().splitlines()
    assert [json.loads(line)["transcript_id"] for line in lines] == ["a-0", "a-1", "b-0", "b-1"]
    assert list(json.loads(lines[0])) == sorted(json.loads(lines[0]))
    assert read_results(tmp_path / "results.jsonl") == sorted(results, key=lambda r: r.transcript_id)
