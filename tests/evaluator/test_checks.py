"""skiller.evaluator.checks: each component passes the right transcript and fails the wrong one, with a useful detail."""
from __future__ import annotations

import asyncio

import pytest

from skiller.evaluator import (
    EvaluationSetupError,
    RuleJudge,
    Verdicts,
    check_action,
    check_communicate,
    check_db,
    check_nl_assertions,
    check_output,
    judge_request,
)
from skiller.evaluator.matching import args_match, max_matching, mentions, outputs_equal
from skiller.servers.task import GoldenAction
from skiller.llm.interface import request_key
from skiller.llm.scripted import Fault, ScriptedProvider
from tests.evaluator.builders import make_task, make_transcript, run_calls
from tests.evaluator.library_tasks import BORROW, READ_ADA

ORACLE = [{"name": a["name"], "arguments": a["arguments"]} for a in BORROW]
ASSERTIONS = ["The assistant did not call borrow_book", "The assistant called get_member",
              "The assistant told the user that the limit is 2 active loans."]


def _transcript(env, task, calls, said=(), **kw):
    return make_transcript(task, run_calls(env, calls), list(said), **kw)


# --- DB -------------------------------------------------------------------------------------------

def test_db_passes_when_the_replayed_writes_reach_the_gold_state(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"])
    result = check_db(task, _transcript(env, task, ORACLE), env)
    assert result.passed and result.name == "DB" and "1 write" in result.detail


def test_db_ignores_reads_and_failed_writes(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"])
    calls = [{"name": "borrow_book", "arguments": {"person_id": "P-003", "book_id": "BK-005"}},  # suspended
             {"name": "search_books", "arguments": {"query": "Turing"}}, *ORACLE]
    transcript = _transcript(env, task, calls)
    assert not transcript.tool_calls[0].ok
    assert check_db(task, transcript, env).passed


def test_db_fails_on_an_extra_write_and_names_the_extra_row(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"])
    extra = [{"name": "return_book", "arguments": {"loan_id": "LN-0003"}},  # Alan's, then a loan for him
             {"name": "borrow_book", "arguments": {"person_id": "P-002", "book_id": "BK-004"}}]
    result = check_db(task, _transcript(env, task, [*ORACLE, *extra]), env)
    assert not result.passed and "after 3 write(s)" in result.detail
    assert "extra loan row LN-0006" in result.detail and "loan LN-0003: " in result.detail
    assert "status 'active'->'returned'" in result.detail


def test_db_fails_on_a_missing_write_and_names_the_missing_row(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"])
    result = check_db(task, _transcript(env, task, ORACLE[:2]), env)
    assert not result.passed and "missing loan row LN-0005" in result.detail


def test_db_fails_when_a_later_write_undoes_an_extra_one(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"])
    undo = [{"name": "borrow_book", "arguments": {"person_id": "P-001", "book_id": "BK-004"}},
            {"name": "return_book", "arguments": {"loan_id": "LN-0005"}}]  # BK-004 is back, a loan row remains
    transcript = _transcript(env, task, [*undo, *ORACLE])
    assert all(c.ok for c in transcript.tool_calls)
    assert not check_db(task, transcript, env).passed


def test_db_does_not_replay_a_call_recorded_as_failed(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"])
    calls = [*ORACLE[:2], {**ORACLE[2], "ok": False}]
    assert not check_db(task, _transcript(env, task, calls), env).passed


def test_db_refuses_an_environment_that_does_not_start_at_the_task_state(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"]).model_copy(update={"initial_state_hash": "0" * 64})
    with pytest.raises(EvaluationSetupError, match="environment starts at state"):
        check_db(task, _transcript(env, task, ORACLE), env)


# --- ACTION ---------------------------------------------------------------------------------------

def test_action_passes_in_any_order_with_normalized_arguments(env):
    task = make_task(env, "borrow", BORROW, basis=["ACTION"])
    calls = [{"name": "search_books", "arguments": {"query": "  KNUTH ", "limit": 5}}, *ORACLE[2:], ORACLE[0]]
    result = check_action(task, _transcript(env, task, calls))
    assert result.passed, result.detail


def test_action_fails_on_a_different_argument_and_says_which_action(env):
    task = make_task(env, "borrow", BORROW, basis=["ACTION"])
    calls = [*ORACLE[:2], {"name": "borrow_book", "arguments": {"person_id": "P-001", "book_id": "BK-004"}}]
    result = check_action(task, _transcript(env, task, calls))
    assert not result.passed
    assert "borrow borrow_book(book_id='BK-005', person_id='P-001')" in result.detail
    assert "1 successful borrow_book call(s) with other arguments" in result.detail


def test_action_does_not_count_a_rejected_call(env):
    task = make_task(env, "borrow", BORROW, basis=["ACTION"])
    calls = [*ORACLE[:2], {**ORACLE[2], "ok": False}]
    assert not check_action(task, _transcript(env, task, calls)).passed


def test_action_matches_each_call_to_one_golden_action_at_most(env):
    twice = [BORROW[0], {**BORROW[0], "action_id": "member-again"}]
    task = make_task(env, "twice", twice, basis=["ACTION"], kind="read")
    assert not check_action(task, _transcript(env, task, ORACLE[:1])).passed
    assert check_action(task, _transcript(env, task, ORACLE[:1] * 2)).passed


def test_action_finds_the_full_assignment_a_greedy_pass_would_miss(env):
    golden = [{"action_id": "any", "name": "get_member", "arguments": {"person_id": "P-001"}, "compare_args": []},
              {"action_id": "alan", "name": "get_member", "arguments": {"person_id": "P-002"}}]
    task = make_task(env, "two-members", golden, basis=["ACTION"], kind="read")
    calls = [{"name": "get_member", "arguments": {"person_id": "P-002"}},
             {"name": "get_member", "arguments": {"person_id": "P-003"}}]
    assert check_action(task, _transcript(env, task, calls)).passed


def test_action_ignores_golden_actions_the_user_performs(env):
    golden = [*BORROW[:1], {**BORROW[1], "requestor": "user"}]
    task = make_task(env, "user-side", golden, basis=["ACTION"], kind="read")
    assert check_action(task, _transcript(env, task, ORACLE[:1])).passed


def test_argument_normalization_rules():
    action = GoldenAction(action_id="a", name="t", arguments={"s": " Ada ", "n": 2, "f": 1.004, "b": True,
                                                               "l": ["X", 1]})
    assert args_match(action, {"s": "ada", "n": 2.0, "f": 1.0, "b": True, "l": ["x", 1.0], "extra": 9})
    assert not args_match(action, {"s": "ada", "n": 2.0, "f": 1.0, "b": 1, "l": ["x", 1.0]})
    assert not args_match(action, {"s": "ada", "n": 2.0, "f": 1.01, "b": True, "l": ["x", 1.0]})
    assert not args_match(action, {"s": "ada", "n": "2", "f": 1.0, "b": True, "l": ["x", 1.0]})
    assert not args_match(action, {"n": 2, "f": 1.0, "b": True, "l": ["x", 1]})  # missing compared argument
    assert max_matching([1, 2], ["a"], lambda g, c: True) in ({0: 0}, {1: 0})


# --- COMMUNICATE ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("said", "needle", "found"), [
    ("Your balance is $1,250.00 today.", "1250.00", True),
    ("Your balance is 1250.00.", "1,250.00", True),
    ("Your balance is 1250.0", "1250", True),
    ("The fee is 1.50", "1.5", True),
    ("You are on the STANDARD tier.", "standard", True),
    ("Due on 2026-03-16.", "2026-03-16", True),
    ("The fee is 11.50", "1.50", False),
    ("The total is 12,500", "1250", False),
    ("The total is 1250.5", "1250", False),
    ("Version 1.10.2", "1.1", False),
    ("anything", "", False),
])
def test_communicate_matching_rules(said, needle, found):
    assert mentions(said, needle) is found


def test_communicate_reads_only_the_assistants_text(env):
    task = make_task(env, "quote", READ_ADA, basis=["COMMUNICATE"], communicate=["standard", "2024-01-15"],
                     kind="read")
    told = make_transcript(task, [], ["You are a Standard member", "since 2024-01-15."])
    assert check_communicate(task, told).passed
    user_only = make_transcript(task, [], ["Member since 2024-01-15."], user_said=["Am I standard?"])
    result = check_communicate(task, user_only)
    assert not result.passed and result.detail == "not told: 'standard'"


def test_communicate_reads_text_parts_of_list_content(env):
    task = make_task(env, "quote", READ_ADA, basis=["COMMUNICATE"], communicate=["standard"], kind="read")
    transcript = make_transcript(task, [], [])
    parts = transcript.model_copy(update={"messages": [*transcript.messages, {
        "role": "assistant", "content": [{"type": "text", "text": "Tier: standard"}]}]})
    assert check_communicate(task, parts).passed


# --- NL_ASSERTION ---------------------------------------------------------------------------------

def _refusal(env, calls, said):
    task = make_task(env, "refuse", [{"name": "get_member", "arguments": {"person_id": "P-002"}}],
                     basis=["NL_ASSERTION"], nl=ASSERTIONS, kind="refusal")
    return task, _transcript(env, task, calls, said)


def _judge(task, transcript, judge):
    return asyncio.run(check_nl_assertions(task, transcript, judge))


def test_rule_judge_meets_all_three_sentence_forms(env):
    task, transcript = _refusal(env, [{"name": "get_member", "arguments": {"person_id": "P-002"}}],
                                ["Sorry: the limit is 2 active loans per member."])
    result = _judge(task, transcript, RuleJudge())
    assert result.passed, result.detail


def test_rule_judge_counts_a_rejected_attempt_as_a_call(env):
    attempt = {"name": "borrow_book", "arguments": {"person_id": "P-002", "book_id": "BK-005"}}
    task, transcript = _refusal(env, [{"name": "get_member", "arguments": {"person_id": "P-002"}}, attempt],
                                ["The limit is 2 active loans."])
    result = _judge(task, transcript, RuleJudge())
    assert not result.passed and "borrow_book was called 1 time(s) (0 succeeded)" in result.detail


def test_rule_judge_cannot_judge_other_sentences(env):
    task = make_task(env, "polite", READ_ADA, basis=["NL_ASSERTION"], nl=["The assistant was polite"], kind="read")
    result = _judge(task, make_transcript(task, [], ["Hello, dear Ada!"]), RuleJudge())
    assert not result.passed and "cannot judge" in result.detail


@pytest.mark.parametrize(("answer", "why"), [
    ({"verdicts": []}, "judge gave 0 verdict(s) for 3"),
    ({"verdicts": [{"assertion": a, "met": True, "justification": "ok"} for a in ASSERTIONS[:2]]}, "2 verdict(s)"),
    ({"verdicts": [{"assertion": a, "met": "yes", "justification": "ok"} for a in ASSERTIONS]}, "malformed answer"),
    ({"verdicts": [{"assertion": a, "met": True, "justification": " "} for a in ASSERTIONS]}, "no justification"),
    ({}, "malformed answer"),
    (Fault("timeout"), "timeout"),
    ({"verdicts": [{"assertion": a, "met": i != 1, "justification": "seen"} for i, a in enumerate(ASSERTIONS)]},
     "UNMET: The assistant called get_member"),
])
def test_a_missing_malformed_or_negative_verdict_fails(env, answer, why):
    task, transcript = _refusal(env, [{"name": "get_member", "arguments": {"person_id": "P-002"}}],
                                ["The limit is 2 active loans."])
    result = _judge(task, transcript, ScriptedProvider().push("eval.nl_assertion", answer))
    assert not result.passed and why in result.detail


def test_a_well_formed_positive_verdict_passes_and_the_judge_sees_the_conversation(env):
    task, transcript = _refusal(env, [{"name": "get_member", "arguments": {"person_id": "P-002"}}], ["No."])
    judge = ScriptedProvider().push("eval.nl_assertion", {"verdicts": [
        {"assertion": a, "met": True, "justification": "seen"} for a in ASSERTIONS]})
    assert _judge(task, transcript, judge).passed
    prompt = judge.calls[0].messages[0].content
    assert 'assistant calls tool get_member({"person_id": "P-002"})' in prompt and "3. The assistant told" in prompt
    assert "You are a library assistant" not in prompt


# --- OUTPUT ---------------------------------------------------------------------------------------

def test_output_passes_when_the_call_returned_the_expected_value(env):
    task = make_task(env, "read", READ_ADA, basis=["OUTPUT"], kind="read")
    assert check_output(task, _transcript(env, task, [{"name": "get_member", "arguments": {"person_id": "P-001"}}]))\
        .passed


def test_output_fails_when_an_earlier_write_changed_what_the_call_returned(env):
    task = make_task(env, "read", READ_ADA, basis=["OUTPUT"], kind="read")
    calls = [ORACLE[2], {"name": "get_member", "arguments": {"person_id": "P-001"}}]  # active_loans becomes 2
    result = check_output(task, _transcript(env, task, calls))
    assert not result.passed and "member get_member(person_id='P-001')" in result.detail


def test_output_equality_is_strict_about_types():
    assert outputs_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not outputs_equal({"a": True}, {"a": 1})
    assert not outputs_equal({"a": "X"}, {"a": "x"})
    assert not outputs_equal({"a": 1}, {"a": 1, "b": None})
    assert not outputs_equal([1, 2], [2, 1])


def test_db_reports_a_successful_call_that_fails_on_replay(env):
    task = make_task(env, "borrow", BORROW, basis=["DB"])
    forged = {"name": "borrow_book", "arguments": {"person_id": "P-003", "book_id": "BK-005"}, "ok": True}
    result = check_db(task, _transcript(env, task, [forged]), env)
    assert not result.passed and "replay diverged: #1 borrow_book failed on replay: Member P-003 is suspended" \
        in result.detail


def test_the_judge_request_has_a_cache_key(env):
    _, transcript = _refusal(env, [{"name": "get_member", "arguments": {"person_id": "P-002"}}], ["No."])
    request = judge_request(transcript, ASSERTIONS)
    assert request.purpose == "eval.nl_assertion" and request.response_model is Verdicts
    assert request_key(request, "rule-judge", "rule-judge-1") == request_key(
        judge_request(transcript, ASSERTIONS), "rule-judge", "rule-judge-1")
