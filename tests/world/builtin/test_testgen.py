"""skiller.world.builtin.testgen: rule placements the catalog does not use yet still compile, test and pass."""
from __future__ import annotations

from typing import Any

import pytest

from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.model import CatalogDomain
from skiller.world.builtin.codegen import implementation_module
from skiller.world.builtin.dbgen import database_program
from skiller.world.builtin.policygen import parse_rules, policy_markdown
from skiller.world.builtin.testgen import implementation_tests
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX


def unusual_clinic() -> CatalogDomain:
    """Hospital plus every rule placement the compilers support: rules on the acted-on row
    (a stored amount range, a same-day window, a per-person limit when re-opening), a flag
    on the record's target for a pay tool, a lead time on a create argument, a multi-field
    update with a listed field, and a status change without from-statuses."""
    data: dict[str, Any] = get_domain("Hospital").model_dump()
    data["name"] = "UnusualClinic"
    data["tools"] += [
        {"name": "reopen_appointment", "kind": "set_status", "entity": "Appointment", "from_statuses": ["cancelled"],
         "to": "scheduled", "description": "Re-open a cancelled appointment."},
        {"name": "complete_appointment", "kind": "set_status", "entity": "Appointment", "to": "completed",
         "description": "Mark an appointment completed."},
        {"name": "edit_appointment", "kind": "update", "entity": "Appointment", "fields": ["scheduled_date", "reason"],
         "from_statuses": ["scheduled"], "description": "Change the day or the reason of an appointment."},
    ]
    data["rules"] += [
        {"id": "UNU-1", "tool": "reopen_appointment", "kind": "max_active", "entity": "Appointment",
         "statuses": ["scheduled"], "limit": 3, "statement": "Re-opening must not exceed 3 scheduled appointments."},
        {"id": "UNU-2", "tool": "pay_appointment", "kind": "value_range", "field": "amount_due", "max": 250,
         "statement": "Bills above $250 are paid at the desk, not here."},
        {"id": "UNU-3", "tool": "pay_appointment", "kind": "target_flag", "entity": "Doctor",
         "field": "accepting_patients", "equals": True, "statement": "Only bills of active doctors are paid here."},
        {"id": "UNU-4", "tool": "check_in_appointment", "kind": "date_window", "field": "scheduled_date",
         "min": 0, "max": 0, "statement": "Check-in is only possible on the day of the appointment."},
        {"id": "UNU-5", "tool": "book_appointment", "kind": "lead_time", "field": "scheduled_date", "min": 2,
         "statement": "Bookings need two days' notice."},
        {"id": "UNU-6", "tool": "edit_appointment", "kind": "date_window", "field": "scheduled_date",
         "min": 1, "max": 30, "statement": "Edited dates are 1 to 30 days ahead."},
    ]
    return CatalogDomain.model_validate(data)


def test_unusual_rule_placements_compile_generate_data_and_pass_their_tests() -> None:
    domain = unusual_clinic()
    program = database_program(domain, load_catalog())
    built = SANDBOX.run_python({"gen_db.py": program}, "gen_db.py",
                               ["--seed", "3", "--rows", "40", "--people", "30", "--clock", CLOCK, "--out", "db.sqlite"],
                               collect=["db.sqlite"])
    assert built.ok, built.stderr[-3000:]
    tests = implementation_tests(domain, CLOCK)
    for rule in domain.rules:
        assert f"_enforces_{rule.id.replace('-', '_')}(db)" in tests, rule.id
    result = SANDBOX.run_pytest({"impl.py": implementation_module(domain, CLOCK), "test_impl.py": tests,
                                 "db.sqlite": built.outputs["db.sqlite"]}, "test_impl.py")
    assert result.ok and result.failed == 0 and result.errors == 0, result.stdout[-4000:]
    assert sorted(r["id"] for r in parse_rules(policy_markdown(domain))) == sorted(r.id for r in domain.rules)


@pytest.mark.parametrize("domain", load_catalog()[:4], ids=lambda d: d.name)
def test_generated_tests_are_deterministic_text(domain: CatalogDomain) -> None:
    assert implementation_tests(domain, CLOCK) == implementation_tests(domain, CLOCK)
    assert implementation_tests(domain, "2027-01-15") != implementation_tests(domain, CLOCK)
