"""skiller.world.builtin.taskchains: chained templates validate by execution through the real s14-s17 steps, roll out
with the oracle and the builtin user to reward 1.0, and a do-nothing agent scores 0 on them."""
from __future__ import annotations

import asyncio

import pytest

from skiller.evaluator.reward import evaluate
from skiller.rollout import BuiltinUser, NoopAgent, OracleAgent, run_episode
from skiller.contract.environment import ModuleSource
from skiller.servers.environment import Environment
from skiller.servers.task import Task
from skiller.world.catalog import get_domain
from skiller.world.builtin import taskchains as chains
from skiller.world.builtin.codegen import checks, implementation_module
from skiller.world.builtin.phrasing import REFUSAL_REASONS
from skiller.world.builtin.tasks import _Builder, _rng, templates_for
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX
from tests.world.builtin.test_tasks import SEED, database, pipeline, policy

NAMES = ["Hospital", "SelfStorage"]


def _kinds(name: str) -> dict[str, str]:
    return {t.name: t.kind for t in get_domain(name).tools}


def _roll(task: Task, name: str, agent) -> float:
    code = implementation_module(get_domain(name), CLOCK)
    with Environment.start([ModuleSource(server=name, code=code)], database(name), sandbox=SANDBOX) as env:
        transcript = asyncio.run(run_episode(task, env, agent, BuiltinUser(task), system_prompt=policy(name).markdown))
        return asyncio.run(evaluate(task, transcript, env)).reward


def test_every_chain_kind_is_written_for_a_domain_that_has_the_tools() -> None:
    d = get_domain("Hospital")
    b = _Builder(d, _rng(SEED, "chains"), CLOCK)
    tool = {t.name: t for t in d.tools}
    book, cancel, pay, move, check_in = (tool[n] for n in ("book_appointment", "cancel_appointment", "pay_appointment",
                                                           "reschedule_appointment", "check_in_appointment"))
    replaced = chains.replace(b, cancel, book)
    assert [c[0] for c in replaced.calls] == ["get_patient_profile", "get_appointment", "cancel_appointment",
                                              "get_doctor", "book_appointment"]
    assert replaced.calls[-1][1]["doctor_id"] == "<out2.doctor_id>"  # the old record's provider, passed on
    two = chains.book_two(b, book)
    assert sum(c[0] == "book_appointment" for c in two.calls) == 2 and len(two.communicate) == 2
    assert chains.act_twice(b, move, pay) is None, "a rescheduled (still scheduled) visit cannot be paid yet"
    storage = get_domain("SelfStorage")
    stored = {t.name: t for t in storage.tools}
    for first in ("change_storage_months", "pay_storage_rent"):  # an act, then the record given up: for nothing
        assert chains.act_twice(_Builder(storage, _rng(SEED, "chains"), CLOCK), stored[first],
                                stored["cancel_storage_reservation"]) is None, first
    twice = chains.act_twice(b, check_in, pay)
    assert [c[0] for c in twice.calls][-2:] == ["check_in_appointment", "pay_appointment"]
    assert twice.communicate == ["<out4.amount_paid>"]  # the computed figure is told back
    date_rule = next(c for c in checks(d, book) if c.subject == "arg" and c.kind == "date_range")
    mixed = chains.compliant_and_refused(b, pay, book, date_rule)
    assert mixed.kind == "refusal" and mixed.forbidden[0] == "book_appointment" and mixed.rule == date_rule.label
    assert any(c[0] == "pay_appointment" for c in mixed.calls)  # a write the rules allow comes first


@pytest.mark.parametrize("name", NAMES)
def test_chained_tasks_validate_and_the_oracle_scores_one_and_noop_zero(name: str) -> None:
    kinds = _kinds(name)
    outcome = pipeline(name)
    writes = {n for n, k in kinds.items() if k in ("create", "set_status", "update", "pay")}
    long = [t for t in outcome.tasks if len(t.golden_actions) >= 4]
    double = [t for t in long if sum(a.name in writes for a in t.golden_actions) >= 2]
    mixed = [t for t in outcome.tasks if t.kind == "refusal" and any(a.mode == "write" for a in t.golden_actions)]
    assert len(long) >= 6 and len(double) >= 4, (len(long), len(double))
    assert all("DB" in t.evaluation_criteria.reward_basis for t in [*double, *mixed])
    for task in [*double, *mixed][:6]:
        assert _roll(task, name, OracleAgent(task)) == 1.0, task.description
        assert _roll(task, name, NoopAgent()) == 0.0, task.description


def test_a_domain_batch_mixes_many_patterns_none_dominant_and_writes_twice_often() -> None:
    patterns: dict[str, int] = {}
    total = double = 0
    for name in ["Hospital", "SelfStorage", "PropertyRental", "PowerUtility", "PetBoarding", "Pharmacy"]:
        kinds = _kinds(name)
        for t in templates_for(get_domain(name), 24, 0):
            key = t["kind"] + ": " + " ".join(kinds[c["tool"]] for c in t["trajectory"])
            patterns[key] = patterns.get(key, 0) + 1
            total += 1
            double += sum(kinds[c["tool"]] in ("create", "set_status", "update", "pay") for c in t["trajectory"]) >= 2
    assert len(patterns) >= 40, len(patterns)
    assert max(patterns.values()) / total <= 0.05, max(patterns.items(), key=lambda kv: kv[1])
    assert double / total >= 0.25, double / total  # issue 11 must-hold 1 (the default run: 32%)


def test_chains_respect_a_limit_of_one_and_every_tier() -> None:
    d = get_domain("MotorVehicles")  # at most one booked road test per person
    b = _Builder(d, _rng(SEED, "limits"), CLOCK)
    tool = {t.name: t for t in d.tools}
    book, cancel = tool["book_road_test"], tool["cancel_road_test"]
    assert chains.book_two(b, book) is None, "no one may hold two new bookings under a limit of one"
    replaced = chains.replace(b, cancel, book)
    sql = replaced.selectors[0][1]
    assert "o.road_test_id <> r.road_test_id) < 1" in sql, "the cancelled test no longer counts"
    rooms = get_domain("MovingServices")
    b = _Builder(rooms, _rng(SEED, "tiers"), CLOCK)
    change = next(t for t in rooms.tools if t.name == "change_room_count")
    assert all(chains.act_twice(b, change, next(t for t in rooms.tools if t.name == "confirm_move")).calls[2][1]["rooms"]
               <= 5 for _ in range(20)), "a compliant value passes the tightest tier"


def test_a_refusal_reason_fits_the_kind_of_rule_it_breaks() -> None:
    for name in ["Hospital", "PowerUtility", "PetBoarding"]:
        d = get_domain(name)
        kinds = {r.id: r.kind for r in d.rules}
        for t in templates_for(d, 24, SEED):
            if t["kind"] != "refusal":
                continue
            kind = kinds[t["violated_rule"]]
            fitting = [r.split("{")[0] for r in REFUSAL_REASONS[kind]]
            assert any(t["reason_for_call"].startswith(f) for f in fitting), (kind, t["reason_for_call"])
            assert "short notice" not in t["reason_for_call"] or kind == "lead_time", t["reason_for_call"]


@pytest.mark.parametrize("name", ["HealthInsurance", "PetInsurance", "PowerUtility"])
def test_a_refusal_under_a_rule_on_the_customer_s_open_records_reads_those_records_last(name: str) -> None:
    # the refusal cites what the read showed ('your claim CLM-0300 is under review'): that read must be in the
    # trajectory, and be the records the rule counts, not the kind of record being asked for
    d = get_domain(name)
    rule = next(r for r in d.rules if r.kind == "no_outstanding")
    create = next(t for t in d.tools if t.name == rule.tool)
    counted = next(t.name for t in d.tools if t.kind == "list_records" and t.entity == rule.entity)
    b = _Builder(d, _rng(SEED, "counted"), CLOCK)
    bad = next(c for c in checks(d, create) if c.label == rule.id)
    built = [t for t in (b.create(create, bad), chains.refused_same_provider(b, create, bad)) if t is not None]
    assert built
    for t in built:
        assert t.calls[-1] == (counted, {"person_id": t.calls[0][1]["person_id"]}), t.calls
