"""Customers' first messages read as a person writes them: no slip skiller.contract.wording finds (an article
against the sound, a doubled word, 'for a first doctor', 'the plan name of the pet plan', a read closing with
'tell me what you changed', ...) in any catalog domain's tasks made through the real s14-s17 steps, nor in the
reasons of the storylines that hand a record from one service to another."""
from __future__ import annotations

import pytest

from skiller.contract.wording import article, first_message_flaws
from skiller.world.builtin import phrasing
from skiller.world.catalog.model import CatalogDomain
from tests.world.builtin.test_tasks import DOMAINS, pipeline


def test_the_article_goes_by_the_sound() -> None:
    assert [article(w) for w in ["unit", "hour", "exhibition", "euro", "one-off", "MRI", "SUV", "umbrella",
                                 "uninsured driver", "utility bill", "advisor", "8-week course"]] == \
        ["a unit", "an hour", "an exhibition", "a euro", "a one-off", "an MRI", "an SUV", "an umbrella",
         "an uninsured driver", "a utility bill", "an advisor", "an 8-week course"]


@pytest.mark.parametrize("text, writes, flaw", [
    ("I assume my account allows what me ask for my storage rental.", True, "pronoun case"),
    ("I assume my account with HealthInsurance lets I do this.", True, "pronoun case"),
    ("I'm someone who moving and needs to store furniture.", True, "who + -ing"),
    ("A friend mentioned an unit at PropertyRental.", True, "article"),
    ("A friend recommended a advisor.", True, "article"),
    ("Oh, and the storage unit unit size is large.", True, "doubled word"),
    ("Could you check the kind of a provider of care provider?", False, "broken noun phrase"),
    ("Could you tell me the plan name of the pet plan of my pet policy?", False, "broken noun phrase"),
    ("I'd like to report a problem in a unit for a first unit. After that I'd like to do the same for a second "
     "unit.", True, "first/second X"),
    ("Could you tell me the name of my only reservation in status? Thanks.", False, "dangling value"),
    ("I'm looking for the cheapest merch item with an item price of at most. Thanks.", False, "dangling value"),
    ("May I ask the price per ticket of an exhibition.", False, "question without '?'"),
    ("Could you tell me my city? And tell me exactly what you changed.", False, "change close on a read"),
])
def test_the_checker_names_each_slip(text: str, writes: bool, flaw: str) -> None:
    assert flaw in first_message_flaws(text, writes)


def test_the_checker_leaves_plain_sentences_alone() -> None:
    for text, writes in [("Hi! I'm looking for a water plan with Urban Flat A as the plan name.", False),
                         ("I'd like to book a consultation with a doctor, and then the same again for another "
                          "doctor. And tell me exactly what you changed.", True),
                         ("I want to know the name of the doctor linked to my appointment. Please let me know it "
                          "worked.", True),
                         ("Could you tell me an hour that works, for a unit I rent?", False)]:
        assert first_message_flaws(text, writes) == {}, text


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_first_messages_of_every_domain_read_as_a_person_writes(domain: CatalogDomain) -> None:
    tasks = pipeline(domain.name).tasks
    assert tasks
    slips = [(t.first_query, f) for t in tasks if (f := first_message_flaws(t.first_query, t.kind != "read"))]
    assert not slips, slips[:3]


def test_the_reasons_of_handed_over_records_read_as_a_person_writes() -> None:
    """Every service a record is handed to (a bridge target) has a hint that phrases as the person's own words."""
    targets = [d for d in DOMAINS if d.bridges]
    assert targets
    for d in targets:
        said = next((s for s in map(phrasing.situation, d.personas_hint) if s), None)
        assert said is not None, (d.name, d.personas_hint)
        first = phrasing._first_person(f"{said}.", "I want to", "neutral")
        assert first.startswith(("I'm ", "I ")) and not first_message_flaws(first), first
