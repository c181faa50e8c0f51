"""Per-person balances (issue 11): a catalog balance a create uses up and a cancelling write gives back, checked
by the catalog, enforced and written by the compiled module in the sandboxed worker, covered by its generated
tests, settled coherently in the generated data and targeted by tasks both ways."""
from __future__ import annotations

import json
import sqlite3

import pytest

from skiller.contract.environment import ModuleSource, table_name
from skiller.servers.coherence import coherence_report
from skiller.servers.environment import Environment
from skiller.world.builtin.codegen import checks, implementation_module
from skiller.world.builtin.dbgen import database_invariants
from skiller.world.builtin.policygen import policy_markdown
from skiller.world.builtin.tasks import templates_for
from skiller.world.builtin.testgen import implementation_tests
from skiller.world.catalog import get_domain
from skiller.world.catalog.check import check_domain
from skiller.world.catalog.model import CatalogDomain
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX, built_db


def _db(name: str) -> bytes:
    return built_db(name, seed=11)


def _bad(data: dict, where: str, value) -> list[str]:
    keys = where.split(".")
    target = data
    for k in keys[:-1]:
        target = target[int(k)] if k.isdigit() else target[k]
    target[keys[-1]] = value
    return check_domain(CatalogDomain.model_validate(data))


@pytest.mark.parametrize(("where", "value", "problem"), [
    ("balances.0.limit", "benefit_left", "two numeric profile attributes"),
    ("balances.0.released", ["submitted", "approved", "denied", "withdrawn"], "some, not all, statuses"),
    ("balances.0.amount", "visit_ref", "must be a numeric attribute"),
    ("balances.0.record", "Clinic", "is not a record"),
])
def test_the_catalog_check_rejects_a_balance_its_tools_could_not_keep(where: str, value, problem: str) -> None:
    problems = _bad(get_domain("PetInsurance").model_dump(), where, value)
    assert any("balances: balance benefit_left" in p and problem in p for p in problems), problems


def test_the_catalog_check_rejects_a_missing_guard_a_drifting_update_and_a_stray_rule() -> None:
    data = get_domain("PetInsurance").model_dump()
    data["rules"] = [r for r in data["rules"] if r["kind"] != "balance_covers"]
    problems = check_domain(CatalogDomain.model_validate(data))
    assert any("file_pet_claim needs exactly one balance_covers rule on benefit_left, has 0" in p for p in problems)
    data = get_domain("PetInsurance").model_dump()
    data["tools"].append({"name": "change_claim_amount", "kind": "update", "entity": "PetClaim", "fields": ["claimed_amount"],
                          "from_statuses": ["submitted"], "description": "Correct a claim."})
    data["tools"].append({"name": "reopen_pet_claim", "kind": "set_status", "entity": "PetClaim",
                          "from_statuses": ["withdrawn"], "to": "submitted", "description": "Reopen a claim."})
    data["rules"].append({"id": "PIN-90", "tool": "enroll_pet", "kind": "balance_covers", "attribute": "benefit_left",
                          "field": "claimed_amount", "statement": "Enrolment is paid from the benefit left."})
    problems = check_domain(CatalogDomain.model_validate(data))
    assert any("change_claim_amount may not change the consumed claimed_amount" in p for p in problems), problems
    assert any("reopen_pet_claim must move only a PetClaim that holds its amount" in p for p in problems), problems
    assert any("PIN-90" in p and "guards a create of PetClaim, not create enroll_pet" in p for p in problems), problems
    assert not check_domain(get_domain("PetInsurance")) and not check_domain(get_domain("VetClinic"))


@pytest.mark.parametrize("name", ["PetInsurance", "VetClinic"])
def test_generated_balances_are_coherent_and_the_integrity_check_counts_a_broken_one(name: str, tmp_path) -> None:
    domain = get_domain(name)
    balance = domain.balances[0]
    path = tmp_path / "db.sqlite"
    path.write_bytes(_db(name))
    invariants = database_invariants(domain)
    report = coherence_report(path, invariants, CLOCK)
    assert report.ok and report.checked["balance"] == 30 and not report.violations.get("balance"), report
    role = table_name(domain.role)
    db = sqlite3.connect(path)
    rows = db.execute(f"SELECT {balance.attribute}, {balance.limit} FROM {role}").fetchall()
    assert all(left >= 0 and limit >= left for left, limit in rows)
    assert any(left == 0 for left, _ in rows) and sum(left > 0 for left, _ in rows) >= 10  # both outcomes exist
    db.execute(f"UPDATE {role} SET {balance.attribute} = {balance.attribute} + 1 WHERE rowid <= 2")
    db.commit()
    db.close()
    broken = coherence_report(path, invariants, CLOCK)
    assert broken.violations["balance"] == 2 and not broken.ok and "balance" in broken.problems()[0]
    assert json.loads(invariants.model_dump_json())["balances"][0]["balance_column"] == balance.attribute
    assert "balances" not in database_invariants(get_domain("Hospital")).model_dump()  # others keep their bytes


_ELIGIBLE = ("m.pets_owned <= 3 AND NOT EXISTS (SELECT 1 FROM pet_policy x WHERE x.person_id = m.person_id AND "
             "x.status = 'lapsed') AND (SELECT COUNT(*) FROM pet_claim c WHERE c.person_id = m.person_id AND "
             "c.status = 'submitted') < 3")


def test_the_compiled_module_moves_the_balance_and_refuses_an_uncovered_claim_in_the_worker(tmp_path) -> None:
    """Through the real sandboxed worker: a claim the benefit covers lowers it by the amount (returned and
    stored), withdrawing it gives the amount back; a person with nothing left is refused by PIN-13, nothing changed."""
    content = _db("PetInsurance")
    path = tmp_path / "db.sqlite"
    path.write_bytes(content)
    conn = sqlite3.connect(path)
    rich, left = conn.execute(f"SELECT m.person_id, m.benefit_left FROM pet_policyholder m WHERE {_ELIGIBLE} "
                              "AND m.benefit_left >= 1500 ORDER BY 1").fetchone()
    broke = conn.execute(f"SELECT m.person_id FROM pet_policyholder m WHERE {_ELIGIBLE} AND m.benefit_left < 25 "
                         "ORDER BY 1").fetchone()[0]
    plan = conn.execute("SELECT pet_plan_id FROM pet_plan ORDER BY 1").fetchone()[0]
    conn.close()
    code = implementation_module(get_domain("PetInsurance"), CLOCK)
    args = {"pet_plan_id": plan, "visit_ref": "VVS-0001", "treatment_date": "2026-02-20", "claimed_amount": 1000.0}
    with Environment.start([ModuleSource(server="PetInsurance", code=code)], content, sandbox=SANDBOX) as env:
        refused = env.call("file_pet_claim", {**args, "person_id": broke})
        assert not refused.ok and "[PIN-13]" in refused.error, refused
        assert env.call("get_pet_policyholder_profile", {"person_id": broke}).value["benefit_left"] < 25
        claim = env.call("file_pet_claim", {**args, "person_id": rich})
        assert claim.ok, claim.error
        assert claim.value["benefit_left"] == round(left - 1000.0, 2) and claim.value["fee"] == 40.0
        stored = env.call("get_pet_policyholder_profile", {"person_id": rich}).value["benefit_left"]
        assert stored == claim.value["benefit_left"]
        back = env.call("withdraw_pet_claim", {"pet_claim_id": claim.value["pet_claim_id"]})
        assert back.ok and back.value["status"] == "withdrawn" and back.value["benefit_left"] == left, back
        assert env.call("get_pet_policyholder_profile", {"person_id": rich}).value["benefit_left"] == left


@pytest.mark.parametrize("name", ["PetInsurance", "VetClinic"])
def test_the_generated_tests_check_the_balance_and_catch_a_module_that_forgets_it(name: str, tmp_path) -> None:
    domain = get_domain(name)
    source = implementation_module(domain, CLOCK)
    db = _db(name)
    run = lambda impl: SANDBOX.run_pytest({"impl.py": impl, "test_impl.py": implementation_tests(domain, CLOCK),  # noqa: E731
                                           "db.sqlite": db}, "test_impl.py")
    kept = run(source)
    assert kept.ok and kept.failed == 0, kept.stdout[-3000:]
    rule = next(r for r in domain.rules if r.kind == "balance_covers")
    assert f"_violation({rule.id!r}".replace("'", '"') in source
    unguarded = source.replace(f'    _violation("{rule.id}"', "    pass  # ")
    caught = run(unguarded)
    assert caught.failed >= 1 and f"_enforces_{rule.id.replace('-', '_')}" in caught.stdout, caught.stdout[-3000:]
    unwritten = source.replace(f'{{"{domain.balances[0].attribute}": left}})', '{})')
    assert unwritten != source
    missed = run(unwritten)
    assert missed.failed >= 1, missed.stdout[-3000:]


def test_policy_and_tasks_state_and_target_the_balance_both_ways() -> None:
    pets = get_domain("PetInsurance")
    policy = policy_markdown(pets)
    assert "Uses up the given `claimed_amount` of the pet policyholder's `benefit_left`" in policy
    assert "Gives the pet claim's `claimed_amount` back to the pet policyholder's `benefit_left`" in policy
    assert '"kind": "balance_covers"' in policy and "[PIN-13]" in policy
    covers = next(c for c in checks(pets, next(t for t in pets.tools if t.name == "file_pet_claim")) if c.kind == "covers")
    assert (covers.lo, covers.hi) == (30.0, 1500.0)  # the generator's floor, the fee rule's ceiling
    templates = templates_for(pets, 60, seed=3)
    refusal = next(t for t in templates if t["violated_rule"] == "PIN-13")
    person = next(s["sql"] for s in refusal["selectors"] if s["slot"] == "person")
    assert "m.benefit_left < 30" in person and refusal["forbidden"]["tool"] == "file_pet_claim"
    claim = next(t for t in templates if t["kind"] == "write" and [c["tool"] for c in t["trajectory"]] ==
                 ["get_pet_policyholder_profile", "get_pet_plan", "file_pet_claim"])
    assert f"<out{len(claim['trajectory'])}.benefit_left>" in claim["communicate"]
    assert "benefit left this policy year" in claim["instruction"]
    assert "m.benefit_left >= 1500" in next(s["sql"] for s in claim["selectors"] if s["slot"] == "person")
    vet = templates_for(get_domain("VetClinic"), 60, seed=3)
    assert any(t["violated_rule"] == "VET-10" for t in vet)
