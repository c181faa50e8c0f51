"""Mutation test: an oracle transcript scores 1.0, and each single corruption of it scores 0."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from skiller.evaluator import EvaluationResult, evaluate
from tests.evaluator.builders import make_task, make_transcript, run_calls
from tests.evaluator.library_tasks import SWAP

BASIS = ["DB", "ACTION", "COMMUNICATE", "NL_ASSERTION", "OUTPUT"]
SAID = ["Loan LN-0001 is returned. Your new loan LN-0005 is due on 2026-03-16."]
NL = ["The assistant called return_book", "The assistant told the user LN-0005"]
WRONG = {"P-001": "P-002", "LN-0001": "LN-0003", "BK-005": "BK-003"}  # a plausible wrong value per argument
ORACLE = [{"name": a["name"], "arguments": a["arguments"]} for a in SWAP]
WRITES = [i for i, a in enumerate(SWAP) if a["name"] != "get_member"]
EXTRA_WRITES = [
    {"name": "borrow_book", "arguments": {"person_id": "P-001", "book_id": "BK-003"}},
    {"name": "return_book", "arguments": {"loan_id": "LN-0002"}},
    {"name": "return_book", "arguments": {"loan_id": "LN-0005"}},  # undoes the golden borrow
]


@pytest.fixture
def swap(env):
    golden = [{**a, "expected": None} for a in SWAP]
    golden[2]["expected"] = {"loan_id": "LN-0005", "person_id": "P-001", "book_id": "BK-005",
                             "loan_date": "2026-03-02", "due_date": "2026-03-16", "return_date": None,
                             "status": "active", "fee": 0.0}
    return make_task(env, "swap", golden, basis=BASIS, communicate=["LN-0005", "2026-03-16"], nl=NL)


def _score(env, task, calls: list[dict[str, Any]]) -> EvaluationResult:
    transcript = make_transcript(task, run_calls(env, calls), SAID)
    return asyncio.run(evaluate(task, transcript, env))


def _failed(result: EvaluationResult) -> set[str]:
    return {c.name for c in result.components if not c.passed}


def test_the_oracle_transcript_scores_one(env, swap):
    result = _score(env, swap, ORACLE)
    assert result.reward == 1.0, [c for c in result.components if not c.passed]
    assert [c.name for c in result.components] == BASIS


def test_an_extra_read_is_harmless(env, swap):
    assert _score(env, swap, [*ORACLE, {"name": "search_books", "arguments": {"query": "Knuth"}}]).reward == 1.0


@pytest.mark.parametrize(("index", "key"), [(i, k) for i, a in enumerate(SWAP) for k in a["arguments"]])
def test_corrupting_one_golden_argument_scores_zero(env, swap, index, key):
    calls = [dict(c, arguments=dict(c["arguments"])) for c in ORACLE]
    calls[index]["arguments"][key] = WRONG[calls[index]["arguments"][key]]
    result = _score(env, swap, calls)
    assert result.reward == 0.0 and "ACTION" in _failed(result)
    if index in WRITES:
        assert "DB" in _failed(result)


@pytest.mark.parametrize("index", WRITES)
def test_dropping_one_write_scores_zero(env, swap, index):
    result = _score(env, swap, [c for i, c in enumerate(ORACLE) if i != index])
    assert result.reward == 0.0 and {"DB", "ACTION"} <= _failed(result)


@pytest.mark.parametrize("extra", EXTRA_WRITES, ids=lambda c: f"{c['name']}-{'-'.join(c['arguments'].values())}")
def test_adding_a_wrong_extra_write_scores_zero(env, swap, extra):
    records = run_calls(env, [*ORACLE, extra])
    assert records[-1].ok, records[-1].error  # the extra write really happened
    result = asyncio.run(evaluate(swap, make_transcript(swap, records, SAID), env))
    assert result.reward == 0.0 and _failed(result) == {"DB"}
