"""Rules on who asks (profile attributes, tiers) and across records: compiled, tested and enforced."""
from __future__ import annotations


import pytest

from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.tiers import attribute_share
from skiller.world.builtin.codegen import checks, implementation_module
from skiller.world.builtin.dbgen import database_program
from skiller.world.builtin.policygen import parse_rules, policy_markdown
from skiller.world.builtin.testgen import implementation_tests
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX

# one domain per new rule kind: member_attr + no_outstanding (PowerUtility), tier_limit on create and update (PetBoarding)
DOMAINS = ["PowerUtility", "PetBoarding", "HealthInsurance"]


@pytest.mark.parametrize("name", DOMAINS)
def test_domains_with_tier_rules_generate_data_and_pass_their_own_tests(name: str, tmp_path) -> None:
    domain = get_domain(name)
    built = SANDBOX.run_python({"gen_db.py": database_program(domain, load_catalog())}, "gen_db.py",
                               ["--seed", "3", "--rows", "40", "--people", "30", "--clock", CLOCK, "--out", "db.sqlite"],
                               collect=["db.sqlite"])
    assert built.ok, built.stderr[-3000:]
    tests = implementation_tests(domain, CLOCK)
    for rule in domain.rules:
        assert f"_enforces_{rule.id.replace('-', '_')}" in tests, rule.id
    result = SANDBOX.run_pytest({"impl.py": implementation_module(domain, CLOCK), "test_impl.py": tests,
                                 "db.sqlite": built.outputs["db.sqlite"]}, "test_impl.py")
    assert result.ok and result.failed == 0 and result.errors == 0, result.stdout[-4000:]
    assert sorted(r["id"] for r in parse_rules(policy_markdown(domain))) == sorted(r.id for r in domain.rules)


def test_a_tier_limit_depends_on_the_persons_tier() -> None:
    """PetBoarding BRD-9: basic clients book at most 7 nights, club members 12: 10 nights is refused
    for a basic client and accepted for a club member, on the real generated database."""
    domain = get_domain("PetBoarding")
    built = SANDBOX.run_python({"gen_db.py": database_program(domain, load_catalog())}, "gen_db.py",
                               ["--seed", "5", "--rows", "40", "--people", "30", "--clock", CLOCK, "--out", "db.sqlite"],
                               collect=["db.sqlite"])
    assert built.ok, built.stderr[-3000:]
    tool = next(t for t in domain.tools if t.name == "book_boarding_stay")
    tiers = [c.when for c in checks(domain, tool) if c.label == "BRD-9"]
    assert tiers == [("member_level", "basic"), ("member_level", "club")]  # tightest first
    probe = '''
import json, sqlite3, impl
db = sqlite3.connect("db.sqlite", isolation_level=None)
def person(level):
    sql = ("SELECT m.person_id FROM boarding_client m WHERE m.member_level = ? AND (SELECT COUNT(*) FROM boarding_stay s "
           "WHERE s.person_id = m.person_id AND s.status IN ('booked', 'checked_in')) < 3 ORDER BY 1")
    return db.execute(sql, (level,)).fetchone()[0]
suite = db.execute("SELECT boarding_suite_id FROM boarding_suite WHERE available = 1 ORDER BY 1").fetchone()[0]
args = {"boarding_suite_id": suite, "pet_name": "Luna", "check_in_date": impl._days(10), "nights": 10,
        "vaccination_visit_ref": "VIS-0001"}
out = {}
for level in ("basic", "club"):
    try:
        out[level] = impl.call_tool(db, "book_boarding_stay", {**args, "person_id": person(level)})["nights"]
    except impl.ToolError as exc:
        out[level] = str(exc)
print(json.dumps(out))
'''
    ran = SANDBOX.run_python({"impl.py": implementation_module(domain, CLOCK), "probe.py": probe,
                              "db.sqlite": built.outputs["db.sqlite"]}, "probe.py", [])
    assert ran.ok, ran.stderr[-3000:]
    assert '"club": 10' in ran.stdout and "BRD-9" in ran.stdout, ran.stdout


def test_a_quarter_of_the_default_runs_rules_depend_on_who_asks_or_an_amount() -> None:
    names = ["HealthInsurance", "Hospital", "MovingServices", "PetBoarding", "PetInsurance", "Pharmacy",
             "PowerUtility", "PropertyRental", "SelfStorage", "VetClinic"]
    hits, total = attribute_share([get_domain(n) for n in names])
    assert hits / total >= 0.25, (hits, total)
