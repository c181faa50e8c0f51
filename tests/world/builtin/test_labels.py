"""How builtin tasks name a fact of one of two records, or a field of a linked record: short, a label said once."""
from __future__ import annotations

from skiller.world.builtin.chainparts import _facts_of, _of
from skiller.world.builtin.taskparts import _about


def test_a_fact_of_one_of_two_records_does_not_nest_labels() -> None:
    assert _of("day of the visit", "the first service visit") == "day of the first service visit"
    assert _of("vet visit where the pet was vaccinated", "the first boarding stay") == "vet visit for the first boarding stay"
    assert _of("hospital appointment the claim is for", "the second claim") == "hospital appointment for the second claim"
    assert _of("day the care was received", "the first claim") == "day the care was received, for the first claim"
    assert _of("why the team visits", "the first visit") == "why the team visits, for the first visit"
    assert _of("number of nights", "the first boarding stay") == "number of nights of the first boarding stay"
    assert _of("name of the boarding pet", "the first boarding stay") == "name of the boarding pet of the first boarding stay"


def test_two_facts_whose_short_names_clash_keep_their_full_names() -> None:
    facts = {"vet visit where the pet was vaccinated": "VVS-1", "vet visit where the pet was treated": "VVS-2",
             "number of nights": "3"}
    named = _facts_of(facts, "the first stay")

    assert set(named.values()) == {"VVS-1", "VVS-2", "3"}
    assert "vet visit where the pet was vaccinated of the first stay" in named
    assert "number of nights of the first stay" in named


def test_a_field_of_a_linked_record_names_that_record_once() -> None:
    linked = "the doctor linked to your appointment in status <rec.status>"
    assert _about("doctor's name", linked) == f" the name of {linked}"
    assert _about("kind of suite", "the boarding suite of your stay") == " the kind of boarding suite of your stay"
    assert _about("strength of the medication", "the medication of your fill") == " the strength of the medication of your fill"
    assert _about("provider's name", "the care provider of your claim") == " the name of the care provider of your claim"
    assert _about("fee", "doctor DOC-0001") == " the fee of doctor DOC-0001"
    # the label's thing is part of the record's name: 'of the pet of your pet policy' read as a slip (volume preset)
    assert _about("species of the pet", "your pet policy <rec.pet_policy_id>") == \
        " the species of the pet on your pet policy <rec.pet_policy_id>"
    assert _about("day of the tour", "your tour booking in status <rec.status>") == \
        " the day of the tour on your tour booking in status <rec.status>"
    assert _about("why the team visits", "your visit") == ", for your visit, why the team visits"


def test_a_label_repeating_its_subject_names_it_once() -> None:
    linked = "the pet plan linked to your only pet policy in status <rec.status>"
    assert _about("plan name", linked) == f" the name of {linked}"
    assert _about("policy status", "your pet policy <rec.policy_id>") == " the status of your pet policy <rec.policy_id>"
    assert _about("day of the visit", "your service visit <rec.visit_id>") == " the day of your service visit <rec.visit_id>"
    assert _about("city of the service center", "the service center linked to your road test") == \
        " the city of the service center linked to your road test"
    assert _about("animals the suite is for", "boarding suite <target.suite_id>") == \
        ", for boarding suite <target.suite_id>, the animals the suite is for"
    assert _about("plan name", "your claim <rec.claim_id>") == " the plan name of your claim <rec.claim_id>"
    # the label's head word anywhere in the subject: not 'the card name of the card product ...'
    assert _about("card name", "the card product linked to your card request") == \
        " the name of the card product linked to your card request"
    assert _about("room category", "a room type") == " the category of a room type"
