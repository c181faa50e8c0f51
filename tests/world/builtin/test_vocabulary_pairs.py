"""Paired vocabularies: a row's dependent attributes go together (a medication comes in the forms it is made in,
a cat condo is for cats) in every generated database, across seeds and variants, and the catalog check names a
pair that leaves a value without partners."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.check import check_domain
from skiller.world.catalog.model import CatalogDomain, CatalogEntity
from skiller.world.catalog.values import pair_key
from skiller.world.catalog.variants import variant_name
from skiller.world.builtin.codegen import snake
from tests.world.builtin.test_dbgen import open_bytes, run_program

# Pairs that read wrongly when drawn apart, stated here independently of the catalog: (domain, table, field, then,
# field value or a word of it, values of `then` that never go with it).
NEVER = [
    ("Pharmacy", "medication", "drug_name", "dosage_form", "amoxicillin", {"inhaler", "cream"}),
    ("Pharmacy", "medication", "drug_name", "dosage_form", "metformin", {"inhaler", "cream", "syrup"}),
    ("Pharmacy", "medication", "drug_name", "dosage_form", "salbutamol", {"cream"}),
    ("PetBoarding", "boarding_suite", "suite_type", "suitable_for", "cat condo", {"dog", "small pet"}),
    ("PetBoarding", "boarding_suite", "suite_type", "suitable_for", "small pet habitat", {"dog", "cat"}),
    ("CarRental", "vehicle", "category", "transmission", "electric", {"manual"}),
    ("ChargingNetwork", "charging_station", "connector", "power_kw", "Type 2", {150, 350}),
    ("ConcertHall", "merch_item", "item_name", "category", "Vinyl Record", {"apparel", "book"}),
    ("LaundryService", "garment_service", "service_name", "garment_type", "Duvet", {"shirt", "suit", "dress", "coat"}),
    ("DanceAcademy", "dance_course", "course_title", "style", "Ballet", {"salsa", "tango", "hip hop"}),
    ("Hotel", "room_type", "category", "max_guests", "family room", {1}),
]
PAIRED = sorted({row[0] for row in NEVER} | {d.name for d in load_catalog() if any(e.pairs for e in d.entities)})


def _paired_rows(domain: CatalogDomain, seed: int) -> Iterator[tuple[CatalogEntity, dict, tuple]]:
    db = open_bytes(run_program(domain, seed))
    for entity in domain.entities:
        for pair in entity.pairs:
            for row in db.execute(f"SELECT {pair.field}, {pair.then} FROM {snake(entity.name)}"):
                yield entity, pair, row


@pytest.mark.parametrize("name", PAIRED)
def test_every_generated_row_is_a_declared_pair_across_seeds_and_variants(name: str) -> None:
    base = get_domain(name)
    assert any(e.pairs for e in base.entities), f"{name} declares no pair"
    worlds = [(base, 7), (base, 8), (get_domain(variant_name(name, 7, 0)), 7), (get_domain(variant_name(name, 3, 1)), 3)]
    seen = 0
    for domain, seed in worlds:
        for entity, pair, (value, then) in _paired_rows(domain, seed):
            key = pair_key(value, pair.allowed)
            assert key is not None and then in pair.allowed[key], (domain.name, entity.name, value, then)
            seen += 1
    assert seen >= 4 * 40


@pytest.mark.parametrize(("name", "table", "field", "then", "named", "never"), NEVER, ids=[f"{r[0]}-{r[4]}" for r in NEVER])
def test_no_generated_row_reads_wrongly(name: str, table: str, field: str, then: str, named: str, never: set) -> None:
    found = 0
    for seed in (7, 8):
        db = open_bytes(run_program(get_domain(name), seed))
        rows = db.execute(f"SELECT {field}, {then} FROM {table}").fetchall()
        mine = [(v, t) for v, t in rows if f" {named} " in f" {v} "]
        assert not [(v, t) for v, t in mine if t in never], mine
        found += len(mine)
    assert found > 0  # the value does occur, so the check has teeth


def _with_pair(allowed: dict) -> CatalogDomain:
    data = get_domain("Pharmacy").model_dump(mode="json")
    medication = next(e for e in data["entities"] if e["name"] == "Medication")
    medication["pairs"] = [{"field": "drug_name", "then": "dosage_form", "allowed": allowed}]
    return CatalogDomain.model_validate(data)


def test_the_catalog_check_names_a_value_without_partners_and_a_partner_the_attribute_never_takes() -> None:
    pairs = next(e for e in get_domain("Pharmacy").entities if e.name == "Medication").pairs[0].allowed
    missing = {k: v for k, v in pairs.items() if k != "metformin"}
    assert check_domain(_with_pair(missing), load_catalog()) == [
        "Pharmacy: entity Medication: pair drug_name -> dosage_form: no key (nor '*') names 'metformin'"]
    assert check_domain(_with_pair({**pairs, "metformin": ["patch"]}), load_catalog()) == [
        "Pharmacy: entity Medication: pair drug_name -> dosage_form: 'metformin' allows ['patch'], not values of dosage_form"]
    assert check_domain(_with_pair({"*": ["tablet"]}), load_catalog()) == []
