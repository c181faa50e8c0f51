"""skiller.rollout.speech: results told as a person tells them, every value kept; the customer addressed as
"you" in the demonstrator's words and speaking as "I" in the builtin user's."""
from __future__ import annotations

import re

from skiller.contract.dialogue import said_value
from skiller.rollout import BuiltinUser
from skiller.rollout.speech import Vocabulary, latest_per_record, say_value
from skiller.servers import Environment
from tests.rollout.support import CHATTY, make_task
from tests.rollout.test_user import ask

_PHARMACY = [{"function": {"name": "confirm_pickup", "description": "Record that the customer collected a ready fill.",
                           "parameters": {"properties": {
                               "fill_id": {"description": "Prescription fill id"},
                               "pickup_date": {"description": "Day the customer collects the fill (YYYY-MM-DD)"},
                               "payment_method": {"description": "Payment method"}}}}}]
_FILL = {"fill_id": "RXF-0116", "person_id": "P-0152", "pickup_date": "2026-02-14", "status": "ready",
         "amount_due": 562.16, "payment_status": "unpaid"}


def test_a_result_is_told_in_sentences_with_every_value() -> None:
    told = Vocabulary(_PHARMACY).outcome(_FILL, {})

    assert told.startswith("Your prescription fill RXF-0116 is ready: ")
    assert "562.16 is due and not yet paid" in told
    assert "the day you collect the fill is Saturday, February 14, 2026" in told
    assert not re.search(r"payment status|amount due \d|status ready", told)  # no 'label value' pairs
    for key in ("fill_id", "pickup_date", "amount_due"):
        assert said_value(told, _FILL[key]), key


def test_nothing_is_said_to_be_due_on_a_cancelled_record() -> None:
    words = Vocabulary(_PHARMACY)
    cancelled = words.outcome(_FILL | {"status": "cancelled"}, {})
    assert cancelled == "Your prescription fill RXF-0116 is cancelled: the day you collect the fill is Saturday, February 14, 2026."
    paid = words.outcome(_FILL | {"status": "cancelled", "payment_status": "paid"}, {})
    assert "562.16 was due and has been paid" in paid  # what was paid stays told (a refund may follow)


def test_a_payment_is_told_with_its_amount_and_method() -> None:
    paid = _FILL | {"payment_status": "paid", "amount_paid": 562.16, "payment_method": "bank_transfer"}
    told = Vocabulary(_PHARMACY).outcome(paid, {"payment_method": "bank_transfer"})

    assert told.endswith("and you paid the 562.16 due by bank transfer.")
    part = _FILL | {"payment_status": "paid", "amount_paid": 100.0, "amount_due": 562.16}
    assert "562.16 was due and has been paid, and you paid 100.00" in Vocabulary(_PHARMACY).outcome(part, {})


def test_several_rows_are_counted_then_told_one_by_one() -> None:
    rows = [_FILL | {"fill_id": f"RXF-{n:04d}"} for n in range(1, 6)]
    told = Vocabulary(_PHARMACY).outcome(rows, {})

    assert told.startswith("I found 5 matches. Your prescription fill RXF-0001 is ready: ")
    assert told.endswith("There are 2 more.") and "RXF-0004" not in told
    assert Vocabulary(_PHARMACY).outcome({"fill_id": "RXF-0009"}, {}) == "I found prescription fill RXF-0009."
    stock = Vocabulary([]).outcome({"medication_id": "MED-1", "in_stock": False, "has_generic": True},
                                   {"in_stock": True, "has_generic": True})
    assert stock == "Medication MED-1: it is not in stock and it has generic."


def test_the_demonstrator_says_you_where_a_label_speaks_of_the_customer() -> None:
    words = Vocabulary(_PHARMACY)

    assert words.deed("confirm_pickup") == "record that you collected a ready fill"
    assert words.thing("pickup_date", "2026-02-14") == "day you collect the fill Saturday, February 14, 2026"
    assert words.fact_about([_FILL], "2026-02-14") == "the day you collect the fill is Saturday, February 14, 2026"
    assert words.label("pickup_date") == "day the customer collects the fill"  # facts are still matched by it


def test_a_record_told_twice_is_told_as_it_ended() -> None:
    words = Vocabulary(_PHARMACY)
    first, last = words.outcome(_FILL, {}), words.outcome(_FILL | {"status": "picked_up"}, {})
    other = words.outcome(_FILL | {"fill_id": "RXF-0200"}, {})

    assert latest_per_record([first, other, last]) == [other, last]
    assert say_value("amount_due", 1929.2) == "1,929.20"


def test_the_user_answers_a_question_about_themselves_in_the_first_person(env: Environment) -> None:
    task = make_task(env, "pickup-day", actions=[], persona=CHATTY,
                     facts={"day the customer collects the fill": "2026-03-03"})
    answer = ask(BuiltinUser(task), "Could you please tell me the day you collect the fill?")  # the agent's words

    assert re.search(r"[Tt]he day I collect the fill is (2026-03-03|March 3, 2026)", answer), answer
    assert "customer" not in answer.lower()


def test_a_summary_with_counts_by_status_is_told_without_taking_them_for_a_payment() -> None:
    # A summary tool returns a mapping under a *_status key (a variant's summary crashed the demonstrator once).
    told = Vocabulary(_PHARMACY).outcome({"person_id": "P-0152", "total": 3, "by_status": {"booked": 1, "paid": 2}}, {})

    assert "booked" in told and said_value(told, 3)


def test_a_fact_to_tell_is_found_however_its_number_is_written_and_said_of_its_record() -> None:
    words = Vocabulary(_PHARMACY)
    doctor = {"doctor_id": "DOC-0002", "full_name": "Thanh Fernandes", "consultation_fee": 89.4}

    assert words.fact_about([_FILL], "562.160") == "the amount due of your prescription fill RXF-0116 is 562.16"
    assert words.fact_about([doctor], "89.40") == "the consultation fee of doctor DOC-0002 is 89.40"
    assert words.fact_about([doctor], "Thanh Fernandes") == "the full name of doctor DOC-0002 is Thanh Fernandes"
    assert words.fact_about([doctor], "DOC-0002") == "the doctor id is DOC-0002"
    assert words.fact_about([_FILL], "ready") == "the status of your prescription fill RXF-0116 is ready"
    assert words.fact_about([doctor], "89.41") is None
    # a balance of the customer's that a booking returns is theirs, not the booking's
    visit = {"vet_visit_id": "VVS-0301", "person_id": "P-0019", "status": "scheduled", "plan_visits_left": 3}
    assert words.fact_about([visit], "3") == "you have 3 plan visits left"
    claim = {"pet_claim_id": "PCL-0301", "person_id": "P-0019", "benefit_left": 1694.04}
    assert words.fact_about([claim], "1694.04") == "the benefit left on your account is 1,694.04"


def test_an_order_s_lines_are_told_as_a_plural_and_a_flag_of_a_record_as_its_state() -> None:
    words = Vocabulary([{"function": {"name": "order", "description": "Order medications.", "parameters": {
        "properties": {"items": {"description": "Medication lines to order"}}}}}])

    lines = [{"medication_id": "MED-0063", "quantity": 2}, {"medication_id": "MED-0104", "quantity": 3}]
    assert words.clause("items", lines).startswith("the medication lines to order are 2 x MED-0063")
    assert words.clause("items", lines, future=True).startswith("the medication lines to order will be 2 x MED-0063")
    assert words.clause("accepting_patients", False) == "it is not accepting patients"
