"""skiller.contract.dialogue: the spoken forms of values and the yes/no both sides of a conversation and the report share."""
from __future__ import annotations

import pytest

from skiller.evaluator.matching import mentions
from skiller.contract.dialogue import as_said, human_date, is_yes, label_phrase, said_value, spoken_forms


def test_a_date_is_said_with_its_year_in_the_forms_people_write() -> None:
    assert spoken_forms("2026-03-06") == ["2026-03-06", "March 6, 2026", "6 March 2026", "March 6 2026",
                                          "March 6th, 2026", "6th March 2026", "6th of March 2026"]
    assert [spoken_forms(f"2026-03-{d:02d}")[4] for d in (1, 2, 3, 11, 12, 13, 21, 22, 23, 31)] == [
        f"March {n}, 2026" for n in ("1st", "2nd", "3rd", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st")]
    assert human_date("2026-03-06", weekday=True) == "Friday, March 6, 2026"
    assert spoken_forms("2026-13-45") == ["2026-13-45"]  # not a date: left alone


@pytest.mark.parametrize("text, value, said", [
    ("I'd like to pay by credit card.", "credit_card", True),
    ("The total is 1,250.00 dollars.", 1250.0, True),
    ("The slot is on 2026-02-28.", "28", False),  # a number inside a date is not the number
    ("Reservation CRV-0280, please.", "28", False),
    ("It lasts 28 minutes.", 28.0, True),
    ("Book it for 6 March 2026.", "2026-03-06", True),
    ("Deliver it on the 20th of March 2026, please.", "2026-03-20", True),
    ("Deliver it on March 20th, 2026.", "2026-03-20", True),
    ("Deliver it on March 2nd, 2026.", "2026-03-20", False),  # the 2nd is not the 20th
    ("My id is P-00801.", "P-0080", False),
])
def test_a_value_is_recognised_in_any_spoken_form_and_only_as_a_whole(text: str, value, said: bool) -> None:
    assert said_value(text, value) is said


def test_communicate_accepts_a_date_or_code_as_people_write_it() -> None:
    assert mentions("Your visit is on Friday, March 6, 2026.", "2026-03-06")
    assert mentions("Paid by credit card.", "credit_card")
    assert not mentions("Your visit is on Friday, March 7, 2026.", "2026-03-06")


@pytest.mark.parametrize("text, yes", [("Yes, please go ahead.", True), ("yep, do it.", True),
                                       ("Sure. Yes.", True), ("No, wait.", False), ("Thanks, bye.", False)])
def test_an_explicit_yes_starts_the_message(text: str, yes: bool) -> None:
    assert is_yes(text) is yes


def test_a_fused_label_names_its_member_after_the_fact() -> None:
    assert label_phrase("ChargingNetwork day of the slot") == "the day of the slot for ChargingNetwork"
    assert label_phrase("person id") == "the person id"


def test_a_label_that_is_a_question_clause_takes_no_article() -> None:
    assert label_phrase("why the team visits") == "why the team visits"
    assert label_phrase("PowerUtility how urgent it is") == "how urgent it is for PowerUtility"
    assert label_phrase("whyte street") == "the whyte street"  # a word, not a clause


def test_a_label_about_the_customer_is_said_to_them_or_by_them() -> None:
    assert as_said("day the customer collects the fill", "agent") == "day you collect the fill"
    assert as_said("day the customer collects the fill", "user") == "day I collect the fill"
    assert as_said("Battery capacity of the member's vehicle in kWh", "user") == "Battery capacity of my vehicle in kWh"
    assert as_said("Tenant's employer", "agent") == "Your employer"
    assert as_said("How the crew contacts the customer", "user") == "How the crew contacts me"
    assert as_said("pay the reimbursement of a claim to the member", "agent") == "pay the reimbursement of a claim to you"
    assert as_said("Whether the student brings their own tools", "user") == "Whether I bring my own tools"
    assert as_said("the customer is away", "user") == "I am away"


def test_a_role_word_in_a_compound_or_another_label_is_left_alone() -> None:
    assert as_said("the client number", "agent") == "the client number"
    assert as_said("the member level", "user") == "the member level"
    assert as_said("A customer may have at most 4 open fills", "agent") == "A customer may have at most 4 open fills"
    assert as_said("the day of the slot", "agent") == "the day of the slot"
    assert label_phrase("day the customer collects the fill", "agent") == "the day you collect the fill"


@pytest.mark.parametrize("lines", [
    ["my id is P-0042", "and the amount is 1,250.00"],
    ["it costs 1", ",250 in total", "or 12", ".5 maybe"],
    ["the date: 2026-03-06.", "March 6, 2026 again", "6 March", " 2026"],
    ["credit_card please", "CREDIT CARD", "P-0042.", "-5 units", "A-028", "28"],
    ["Straße 12", "STRASSE 12", "", "x\r", "1.50", "1.5", "ab.c"],
])
def test_a_text_of_several_lines_says_a_value_exactly_when_read_whole(lines: list[str]) -> None:
    # said_value reads a multi-line text line by line (each line once for all turns); that must agree with
    # matching every spoken form against the whole text, including forms at and around the line breaks.
    from skiller.contract.dialogue import _hay, _patterns, value_text  # the whole-text reading, as reference

    text = "\n".join(lines)
    values = ["P-0042", "1250", "1,250.00", 1250.0, "12.5", "2026-03-06", "credit_card", "28", "5", "A-028",
              "straße 12", "1.5", "ab", "c", "x", True, "1", "March 6, 2026", "6 March 2026"]
    for value in values:
        whole = any(p.search(_hay(text)) for p in _patterns(value_text(value)))
        assert said_value(text, value) is whole, (value, text)
