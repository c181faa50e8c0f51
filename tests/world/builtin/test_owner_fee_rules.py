"""Ownership (a person acts only on their own record) and computed fees (percent of an amount, bounded):
enforced by the compiled module, caught by its generated tests, stated in the policy, targeted by tasks."""
from __future__ import annotations

import json

import pytest

from skiller.world.catalog import get_domain
from skiller.world.builtin.codegen import checks, implementation_module, tool_parameters
from skiller.world.builtin.policygen import policy_markdown
from skiller.world.builtin.tasks import templates_for
from skiller.world.builtin.testgen import implementation_tests
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX, built_db


def _db(name: str) -> bytes:
    return built_db(name, seed=11)


def _run_tests(name: str, impl: str, db: bytes):
    return SANDBOX.run_pytest({"impl.py": impl, "test_impl.py": implementation_tests(get_domain(name), CLOCK),
                               "db.sqlite": db}, "test_impl.py")


def test_an_owned_tool_takes_the_acting_person_and_checks_ownership_first() -> None:
    domain = get_domain("MovingServices")
    tool = next(t for t in domain.tools if t.name == "cancel_move")
    params = tool_parameters(domain, tool)
    assert {"move_id", "person_id"} <= set(params["required"])
    assert checks(domain, tool)[0].kind == "owner"  # before any status or date is disclosed
    policy = policy_markdown(domain)
    assert "`person_id` is the confirmed person's own id" in policy and "[MOV-11]" in policy


@pytest.mark.parametrize(("name", "rule", "needle"), [
    ("MovingServices", "MOV-11", 'if row["person_id"] != a["person_id"]:'),
    ("PetInsurance", "PIN-12", 'if _fee(a["claimed_amount"], 4) > 60:'),
])
def test_the_generated_tests_catch_a_module_without_the_rule(name: str, rule: str, needle: str) -> None:
    source = implementation_module(get_domain(name), CLOCK)
    assert source.count(needle) == 1
    db = _db(name)
    kept = _run_tests(name, source, db)
    assert kept.ok and kept.failed == 0, kept.stdout[-3000:]
    start = source.rindex("\n", 0, source.index(needle)) + 1
    end = source.index("\n", source.index(f'_violation("{rule}"', start)) + 1
    mutant = _run_tests(name, source[:start] + source[end:], db)
    assert mutant.failed >= 1 and f"_enforces_{rule.replace('-', '_')}" in mutant.stdout, mutant.stdout[-3000:]


def test_the_fee_is_computed_returned_and_checked_by_the_generated_tests() -> None:
    """A module charging the wrong percentage fails the permitted case: the test computes the fee itself."""
    source = implementation_module(get_domain("PetInsurance"), CLOCK)
    assert '"fee": _fee(a["claimed_amount"], 4)}' in source
    wrong = source.replace('"fee": _fee(a["claimed_amount"], 4)}', '"fee": _fee(a["claimed_amount"], 5)}')
    result = _run_tests("PetInsurance", wrong, _db("PetInsurance"))
    assert result.failed >= 1 and "test_file_pet_claim_creates_the_pet_claim" in result.stdout, result.stdout[-3000:]
    assert "Charges a fee of 4% of the given `claimed_amount`" in policy_markdown(get_domain("PetInsurance"))


def test_the_module_refuses_someone_elses_record_and_charges_the_fee(tmp_path) -> None:
    """On the real generated databases: the owner cancels, another person is refused; a claim of $1,000
    returns a fee of $40, one of $2,000 (fee $80 above the $60 cap) is refused."""
    probe = '''
import json, sqlite3, impl
db = sqlite3.connect("db.sqlite", isolation_level=None)
out = {}
if impl.SERVER == "MovingServices":
    move, owner = db.execute("SELECT move_id, person_id FROM move WHERE status = 'booked' AND move_date >= ? "
                             "ORDER BY move_id", (impl._days(3),)).fetchone()
    other = db.execute("SELECT person_id FROM moving_customer WHERE person_id <> ? ORDER BY 1", (owner,)).fetchone()[0]
    try:
        impl.call_tool(db, "cancel_move", {"move_id": move, "person_id": other})
    except impl.ToolError as exc:
        out["other"] = str(exc)
    out["owner"] = impl.call_tool(db, "cancel_move", {"move_id": move, "person_id": owner})["status"]
else:
    person = db.execute("SELECT m.person_id FROM pet_policyholder m WHERE m.pets_owned <= 3 AND NOT EXISTS (SELECT 1 "
                        "FROM pet_policy x WHERE x.person_id = m.person_id AND x.status = 'lapsed') AND (SELECT "
                        "COUNT(*) FROM pet_claim c WHERE c.person_id = m.person_id AND c.status = 'submitted') < 3 "
                        "ORDER BY 1").fetchone()[0]
    plan = db.execute("SELECT pet_plan_id FROM pet_plan ORDER BY 1").fetchone()[0]
    args = {"person_id": person, "pet_plan_id": plan, "visit_ref": "VVS-0001", "treatment_date": impl._days(-5)}
    out["fee"] = impl.call_tool(db, "file_pet_claim", {**args, "claimed_amount": 1000.0})["fee"]
    try:
        impl.call_tool(db, "file_pet_claim", {**args, "claimed_amount": 2000.0})
    except impl.ToolError as exc:
        out["big"] = str(exc)
print(json.dumps(out))
'''
    seen = {}
    for name in ("MovingServices", "PetInsurance"):
        ran = SANDBOX.run_python({"impl.py": implementation_module(get_domain(name), CLOCK), "probe.py": probe,
                                  "db.sqlite": _db(name)}, "probe.py", [])
        assert ran.ok, ran.stderr[-3000:]
        seen |= json.loads(ran.stdout.strip().splitlines()[-1])
    assert "MOV-11" in seen["other"] and seen["owner"] == "cancelled"
    assert seen["fee"] == 40.0 and "PIN-12" in seen["big"]


def test_tasks_target_ownership_and_fees_both_ways() -> None:
    moving = templates_for(get_domain("MovingServices"), 60, seed=3)
    refusal = next(t for t in moving if t["violated_rule"] == "MOV-11")
    assert refusal["forbidden"]["arguments"]["person_id"] == "<person.person_id>"
    assert [s["slot"] for s in refusal["selectors"]] == ["rec", "person"]
    assert "<rec.person_id>" in refusal["selectors"][1]["sql"]  # somebody else than the owner
    cancel = next(t for t in moving if t["kind"] != "refusal" and any(c["tool"] == "cancel_move" for c in t["trajectory"]))
    assert next(c for c in cancel["trajectory"] if c["tool"] == "cancel_move")["arguments"]["person_id"] == "<rec.person_id>"
    pets = templates_for(get_domain("PetInsurance"), 60, seed=3)
    claim = next(t for t in pets if t["kind"] != "refusal" and t["trajectory"][-1]["tool"] == "file_pet_claim")
    assert any(c.endswith(".fee>") for c in claim["communicate"]) and "fee" in claim["instruction"]
    assert any(t["violated_rule"] == "PIN-12" for t in pets)
