"""A storage rental's rent follows its months: the policy states amount_due = the unit's monthly rate x months,
the generated rows obey it, and the compiled tools (reserve, change of months) compute it, run in the sandbox."""
from __future__ import annotations

from skiller.servers import Environment, ModuleSource
from skiller.world.builtin.codegen import implementation_module
from skiller.world.builtin.policygen import policy_markdown
from skiller.world.catalog import get_domain
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX, built_db, open_bytes

RULE = "the storage unit's `monthly_rate` x `months`, rounded to cents"


def _tool_section(policy: str, tool: str) -> str:
    return policy[policy.index(f"<!-- TOOL: {tool} -->"):policy.index(f"<!-- TOOL_END: {tool} -->")]


def test_the_policy_states_rent_as_monthly_rate_times_months_for_reserve_and_change() -> None:
    policy = policy_markdown(get_domain("SelfStorage"))
    assert f"`amount_due` is {RULE}" in _tool_section(policy, "reserve_storage_unit")
    assert f"recomputes `amount_due` as {RULE}" in _tool_section(policy, "change_storage_months")


def test_every_generated_rental_charges_its_rate_for_each_month() -> None:
    db = open_bytes(built_db("SelfStorage"))
    rows = db.execute("SELECT r.amount_due, u.monthly_rate, r.months FROM storage_rental r "
                      "JOIN storage_unit u USING (storage_unit_id)").fetchall()
    assert rows and all(amount == round(rate * months, 2) for amount, rate, months in rows), rows[:5]
    assert sum(months > 1 for _, _, months in rows) > len(rows) // 2  # the rule is not the rate alone


def test_the_compiled_tools_charge_rate_times_months_on_reserve_and_on_a_change_of_months() -> None:
    domain, data = get_domain("SelfStorage"), built_db("SelfStorage")
    db = open_bytes(data)
    units = db.execute("SELECT storage_unit_id, monthly_rate FROM storage_unit WHERE available = 1 "
                       "ORDER BY storage_unit_id").fetchall()
    people = [p for (p,) in db.execute("SELECT person_id FROM storage_customer WHERE member_level = 'basic' "
                                       "ORDER BY person_id")]
    move = db.execute("SELECT move_ref FROM storage_rental ORDER BY 1").fetchone()[0]
    module = ModuleSource(server="SelfStorage", code=implementation_module(domain, CLOCK))
    with Environment.start([module], data, SANDBOX) as env:
        made = None
        for person in people:  # the first basic customer below the limit of open rentals
            made = env.call("reserve_storage_unit", {"person_id": person, "storage_unit_id": units[0][0],
                                                     "move_ref": move, "start_date": "2026-03-10", "months": 5})
            if made.ok:
                break
        assert made is not None and made.ok, made
        rate = units[0][1]
        assert made.value["amount_due"] == round(rate * 5, 2) != rate
        rental = made.value["storage_rental_id"]
        changed = env.call("change_storage_months", {"storage_rental_id": rental, "months": 3})
        assert changed.ok, changed.error
        assert changed.value["months"] == 3 and changed.value["amount_due"] == round(rate * 3, 2)
        assert env.call("get_storage_rental", {"storage_rental_id": rental}).value["amount_due"] == round(rate * 3, 2)
