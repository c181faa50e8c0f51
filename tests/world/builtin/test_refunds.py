"""Refunds prorated by date (issue 11): a refund_schedule rule on a cancel, checked by the catalog, computed and
written by the compiled module in the sandboxed worker tier by tier, covered by its generated tests, settled
coherently in the generated data, stated in the policy and targeted by tasks in different tiers."""
from __future__ import annotations

import datetime
import re
import sqlite3

import pytest

from skiller.contract.environment import ModuleSource
from skiller.contract.policy import REFUND_COLUMN, refund_percent
from skiller.servers.coherence import coherence_report
from skiller.servers.environment import Environment
from skiller.world.builtin.codegen import implementation_module, owned
from skiller.world.builtin.dbgen import database_invariants, database_program
from skiller.world.builtin.policygen import policy_markdown
from skiller.world.builtin.tasks import templates_for
from skiller.world.builtin.testgen import implementation_tests
from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.check import check_domain
from skiller.world.catalog.model import CatalogDomain
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX

# (domain, cancel tool, record table, key, date column, tiers)
CASES = [("PetBoarding", "cancel_boarding_stay", "boarding_stay", "boarding_stay_id", "check_in_date",
          {"14": 100.0, "2": 50.0, "0": 0.0}),
         ("MovingServices", "cancel_move", "move", "move_id", "move_date", {"21": 100.0, "7": 60.0, "3": 25.0})]


def _db(name: str) -> bytes:
    built = SANDBOX.run_python({"gen_db.py": database_program(get_domain(name), load_catalog())}, "gen_db.py",
                               ["--seed", "11", "--rows", "40", "--people", "30", "--clock", CLOCK, "--out", "db.sqlite"],
                               collect=["db.sqlite"])
    assert built.ok, built.stderr[-3000:]
    return built.outputs["db.sqlite"]


def _with_rule(name: str, **changes) -> list[str]:
    data = get_domain(name).model_dump()
    rule = next(r for r in data["rules"] if r["kind"] == "refund_schedule")
    rule.update(changes)
    return check_domain(CatalogDomain.model_validate(data))


def test_refund_percent_picks_the_tier_with_the_most_days_not_above() -> None:
    tiers = {"14": 100, "2": 50, "0": 0}
    assert [refund_percent(tiers, d) for d in (30, 14, 13, 2, 1, 0, -1)] == [100, 100, 50, 50, 0, 0, None]


@pytest.mark.parametrize(("changes", "problem"), [
    ({"limits": {"14": 100}}, "must map at least 2 whole days"),
    ({"limits": {"14": 100, "two": 50}}, "must map at least 2 whole days"),
    ({"limits": {"14": 50, "2": 100, "0": 0}}, "must lie in [0, 100] and grow with the days ahead"),
    ({"limits": {"14": 100, "2": 150, "0": 0}}, "must lie in [0, 100] and grow with the days ahead"),
    ({"limits": {"90": 100, "2": 50, "0": 0}}, "offsets must fall below 0 days and reach 90 days"),
    ({"field": "nights"}, "must be a date attribute of BoardingStay"),
    ({"attribute": "pet_name"}, "must be the numeric amount of BoardingStay"),
    ({"statement": "Cancelled stays are refunded by a schedule: 14 days ahead in full, 2 days ahead half."},
     "statement must state every tier (missing 100, 50)"),
    ({"tool": "check_in_pet"}, "check_in_pet"),
    ({"tool": "book_boarding_stay"}, "guards a cancel (set_status of a record), not create"),
])
def test_the_catalog_check_rejects_a_bad_schedule_in_one_line(changes: dict, problem: str) -> None:
    problems = _with_rule("PetBoarding", **changes)
    assert any("rule BRD-7" in p and problem in p for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_the_catalog_check_rejects_a_refund_column_nothing_writes_and_a_stacked_lead_time() -> None:
    data = get_domain("PetBoarding").model_dump()
    data["rules"] = [r for r in data["rules"] if r["kind"] != "refund_schedule"]
    problems = check_domain(CatalogDomain.model_validate(data))
    assert any("BoardingStay.refund_amount is written by no refund_schedule rule" in p for p in problems), problems
    data = get_domain("MovingServices").model_dump()
    data["rules"].append({"id": "MOV-90", "tool": "cancel_move", "kind": "lead_time", "entity": "Move",
                          "field": "move_date", "min": 3, "statement": "A move is cancelled at least 3 days ahead."})
    problems = check_domain(CatalogDomain.model_validate(data))
    assert any("rule MOV-7" in p and "has a lead_time rule too" in p for p in problems), problems
    assert not check_domain(get_domain("PetBoarding")) and not check_domain(get_domain("MovingServices"))


@pytest.mark.parametrize(("name", "tool", "table", "key", "date", "tiers"), CASES)
def test_generated_refunds_are_coherent_and_the_integrity_check_counts_a_broken_one(
        name, tool, table, key, date, tiers, tmp_path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(_db(name))
    invariants = database_invariants(get_domain(name))
    report = coherence_report(path, invariants, CLOCK)
    assert report.ok and report.checked["refund"] >= 40 and not report.violations.get("refund"), report
    db = sqlite3.connect(path)
    rows = db.execute(f"SELECT status, {date}, amount_due, {REFUND_COLUMN}, payment_status FROM {table}").fetchall()
    cancelled = [r for r in rows if r[0] == "cancelled"]
    assert cancelled and all(r[3] is not None for r in cancelled if r[1] is not None)
    assert all(r[3] is None for r in rows if r[0] != "cancelled")
    assert {r[4] for r in cancelled} == {"paid", "unpaid"}  # both kinds of cancelled bookings exist
    day0 = datetime.date.fromisoformat(CLOCK)
    for status, day, amount, refund, paid in cancelled:  # re-derived here from the tiers, not from the generator
        days = max((datetime.date.fromisoformat(day) - day0).days, min(int(k) for k in tiers))
        # only what was paid comes back
        assert refund == (round(amount * refund_percent(tiers, days) / 100, 2) if paid == "paid" else 0.0)
    db.execute(f"UPDATE {table} SET {REFUND_COLUMN} = 1.5 WHERE status <> 'cancelled' AND rowid IN "
               f"(SELECT rowid FROM {table} WHERE status <> 'cancelled' ORDER BY rowid LIMIT 2)")
    db.commit()
    db.close()
    broken = coherence_report(path, invariants, CLOCK)
    assert broken.violations["refund"] == 2 and "refund" in broken.problems()[0]
    assert "refunds" not in database_invariants(get_domain("Hospital")).model_dump()  # others keep their bytes


@pytest.mark.parametrize(("name", "tool", "table", "key", "date", "tiers"), CASES)
def test_the_compiled_cancel_refunds_per_tier_in_the_worker_and_refuses_below_every_tier(
        name, tool, table, key, date, tiers, tmp_path) -> None:
    """Through the real sandboxed worker: a cancel in each tier returns and stores amount x the tier's percent;
    a booking dated below the lowest tier is refused by the rule, nothing changed."""
    content = _db(name)
    path = tmp_path / "db.sqlite"
    path.write_bytes(content)
    conn = sqlite3.connect(path)
    day0 = datetime.date.fromisoformat(CLOCK)
    open_rows = conn.execute(f"SELECT {key}, person_id, {date}, amount_due, payment_status FROM {table} "
                             f"WHERE status = 'booked' AND {date} IS NOT NULL ORDER BY 1").fetchall()
    unpaid = conn.execute(f"SELECT {key}, person_id FROM {table} WHERE status = 'booked' AND payment_status = 'unpaid' "
                          f"AND {date} >= ? ORDER BY 1", ((day0 + datetime.timedelta(days=30)).isoformat(),)).fetchone()
    conn.close()
    by_tier: dict[float | None, tuple] = {}
    for row in open_rows:  # a paid booking in each tier (only what was paid comes back), any below every tier
        pct = refund_percent(tiers, (datetime.date.fromisoformat(row[2]) - day0).days)
        if pct is None or row[4] == "paid":
            by_tier.setdefault(pct, row)
    assert set(by_tier) >= {float(p) for p in tiers.values()} | {None}, sorted(by_tier, key=str)  # every tier, and below
    code = implementation_module(get_domain(name), CLOCK)
    rule = next(r for r in get_domain(name).rules if r.kind == "refund_schedule")
    who = (lambda row: {"person_id": row[1]}) if owned(get_domain(name), next(  # noqa: E731 - the owner acts
        t for t in get_domain(name).tools if t.name == tool)) else (lambda row: {})
    with Environment.start([ModuleSource(server=name, code=code)], content, sandbox=SANDBOX) as env:
        too_late = by_tier[None]
        refused = env.call(tool, {key: too_late[0], **who(too_late)})
        assert not refused.ok and f"[{rule.id}]" in refused.error, refused
        assert env.call(f"get_{table}", {key: too_late[0]}).value["status"] == "booked"
        for pct in sorted(float(p) for p in tiers.values()):
            row = by_tier[pct]
            done = env.call(tool, {key: row[0], **who(row)})
            assert done.ok, done.error
            assert done.value["status"] == "cancelled" and done.value[REFUND_COLUMN] == round(row[3] * pct / 100, 2)
            assert env.call(f"get_{table}", {key: row[0]}).value[REFUND_COLUMN] == done.value[REFUND_COLUMN]
        assert unpaid is not None
        nothing = env.call(tool, {key: unpaid[0], **who(unpaid)})  # nothing paid, nothing refunded, however early
        assert nothing.ok and nothing.value[REFUND_COLUMN] == 0.0, nothing


@pytest.mark.parametrize(("name", "tool", "table", "key", "date", "tiers"), CASES)
def test_the_generated_tests_cover_each_tier_and_catch_a_module_that_refunds_wrongly(
        name, tool, table, key, date, tiers) -> None:
    domain = get_domain(name)
    source = implementation_module(domain, CLOCK)
    tests = implementation_tests(domain, CLOCK)
    for k, pct in tiers.items():
        assert f"def test_{tool}_refunds_{int(pct)}_percent_from_{k}_days_ahead(db):" in tests
    db = _db(name)
    run = lambda impl: SANDBOX.run_pytest({"impl.py": impl, "test_impl.py": tests, "db.sqlite": db},  # noqa: E731
                                          "test_impl.py")
    kept = run(source)
    assert kept.ok and kept.failed == 0, kept.stdout[-3000:]
    flat = source.replace("percent = ", "percent = 100  # ", 1)  # every tier refunded in full
    assert flat != source
    caught = run(flat)
    assert caught.failed >= 1 and f"test_{tool}_refunds_" in caught.stdout, caught.stdout[-3000:]


def test_policy_states_the_tiers_and_tasks_ask_for_the_refund_in_different_tiers() -> None:
    boarding = get_domain("PetBoarding")
    policy = policy_markdown(boarding)
    assert ("Refunds the boarding stay's `amount_due` (only when its `payment_status` is `paid`: nothing paid, nothing "
            "refunded) by how many days before its `check_in_date` it is cancelled (14 or more days ahead: 100%; 2 to 13 "
            "days ahead: 50%; 0 to 1 days ahead: 0%)") in policy
    assert '"kind": "refund_schedule"' in policy and "[BRD-7]" in policy
    for name, tool, _, _, date, schedule in CASES:
        templates = templates_for(get_domain(name), 60, seed=3)
        cancels = [t for t in templates if t["kind"] == "write" and t["trajectory"][-1]["tool"] == tool]
        assert cancels
        for t in cancels:
            assert f"<out{len(t['trajectory'])}.{REFUND_COLUMN}>" in t["communicate"]
            assert "the refund you will get" in t["instruction"]
        floors = [re.findall(rf"r\.{date} >= <clock\+(\d+)>", next(s["sql"] for s in t["selectors"] if s["slot"] == "rec"))
                  for t in cancels]
        tiers = {max(int(k) for k in found) for found in floors if found}
        assert len(tiers) >= 2 and tiers <= {int(k) for k in schedule}, tiers  # the cancels land in different tiers
        assert any(t["kind"] == "refusal" and t["forbidden"]["tool"] == tool and t["violated_rule"].endswith("-7")
                   for t in templates)
