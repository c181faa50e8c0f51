"""The builtin catalog: its size and diversity, the sanity checks every domain passes (and that
they catch broken domains), and the seeded value generators."""
from __future__ import annotations

import datetime
import random
import re
import typing
from collections.abc import Callable
from typing import Any

import pytest

import skiller.world.catalog as catalog_pkg
from skiller.world.catalog import DOMAINS_DIR, SECTORS, get_domain, load_catalog
from skiller.world.catalog import values
from skiller.world.catalog.check import CatalogCheckError, assert_valid, check_catalog, check_domain
from skiller.world.catalog.model import CatalogDomain
from skiller.world.catalog.tiers import attribute_share
from skiller.contract.policy import RuleKind

DOMAINS = load_catalog()
CLOCK = datetime.date(2026, 3, 2)


# ---------------------------------------------------------------- size and diversity
def test_catalog_has_at_least_24_domains_in_at_least_8_sectors() -> None:
    assert len(DOMAINS) >= 24
    assert len({d.sector for d in DOMAINS}) >= 8


def test_every_sector_has_its_own_file_and_every_file_one_sector() -> None:
    files = sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml"))
    assert files == sorted(SECTORS)
    assert {d.sector for d in DOMAINS} == set(SECTORS)
    assert [d.sector for d in DOMAINS] == sorted(d.sector for d in DOMAINS)  # loaded by file name


def test_catalog_avoids_benchmark_domains() -> None:
    banned = re.compile(r"\b(airlines?|flights?|telecom\w*|mobile (plan|line)s?|online (shop|store)|e-?commerce)\b")
    for d in DOMAINS:
        text = " ".join([d.name, d.description, *(e.description for e in d.entities), *(t.description for t in d.tools)])
        assert not banned.search(text.lower()), d.name


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_domain_has_the_required_shape(domain: CatalogDomain) -> None:
    assert "_" not in domain.name
    assert 1 + len(domain.entities) + len(domain.records) >= 3
    assert 1 <= len(domain.entities) <= 3 and 1 <= len(domain.records) <= 3
    assert len(domain.tools) >= 10
    assert len(domain.rules) >= 5
    kinds = {t.kind for t in domain.tools}
    assert kinds & {"get_profile", "get", "search", "list_records"}
    assert kinds & {"create", "set_status", "update", "pay"}


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_domain_passes_every_sanity_check(domain: CatalogDomain) -> None:
    assert check_domain(domain, DOMAINS) == []


def test_whole_catalog_is_valid() -> None:
    assert check_catalog(DOMAINS) == []
    assert_valid(DOMAINS)


def _refs() -> list[tuple[CatalogDomain, str, str]]:
    return [(d, a.name, a.gen["ref"]) for d in DOMAINS for r in d.records for a in r.attributes if "ref" in a.gen]


def test_at_least_8_domains_link_to_another_domains_record() -> None:
    refs = _refs()
    assert len({d.name for d, _, _ in refs}) >= 8
    by_name = {d.name: d for d in DOMAINS}
    for domain, field, ref in refs:
        other, _, record = ref.partition(".")
        assert other != domain.name
        assert any(r.name == record for r in by_name[other].records), ref
        creates = [t for t in domain.tools if t.kind == "create" and field in t.fields]
        assert creates, f"{domain.name}.{field} is not taken by a create tool"


# ---------------------------------------------------------------- the checks catch broken domains
def _broken(name: str, edit: Callable[[dict[str, Any]], None]) -> list[str]:
    data = get_domain(name).model_dump()
    edit(data)
    return check_domain(CatalogDomain.model_validate(data), DOMAINS)


def _tool(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["tools"] if t["name"] == name)


def _rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(r for r in data["rules"] if r["id"] == rule_id)


def _record(data: dict[str, Any], record: str) -> dict[str, Any]:
    return next(r for r in data["records"] if r["name"] == record)


def _record_attr(data: dict[str, Any], record: str, attr: str) -> dict[str, Any]:
    rec = next(r for r in data["records"] if r["name"] == record)
    return next(a for a in rec["attributes"] if a["name"] == attr)


def test_rule_naming_a_missing_field_is_reported_with_domain_rule_and_field() -> None:
    problems = _broken("Hospital", lambda d: _rule(d, "HOS-2").update(field="visit_day"))
    assert any(p.startswith("Hospital: rule HOS-2:") and "'visit_day'" in p for p in problems), problems


BROKEN: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("tool field missing", "Hospital",
     lambda d: _tool(d, "find_doctors")["fields"].append("shoe_size"), "tool find_doctors: field 'shoe_size'"),
    ("illegal tool name", "Hospital",
     lambda d: _tool(d, "get_doctor").update(name="hospital.get-doctor"), "tool hospital.get-doctor: name must be"),
    ("duplicate tool name", "Hospital",
     lambda d: _tool(d, "get_doctor").update(name="get_appointment"), "name is not unique"),
    ("set_status to an unknown status", "Hospital",
     lambda d: _tool(d, "cancel_appointment").update(to="abandoned"), "tool cancel_appointment: to 'abandoned'"),
    ("status generator outside statuses", "Hospital",
     lambda d: _record_attr(d, "Appointment", "status")["gen"]["choice"].append("lost"), "record Appointment: status generator"),
    ("pay field without an unpaid value", "Hospital",
     lambda d: _record_attr(d, "Appointment", "payment_status").update(gen={"choice": ["paid"]}), "tool pay_appointment: payment field"),
    ("create default not an attribute", "Hospital",
     lambda d: _tool(d, "book_appointment")["defaults"].update(priority="high"), "default 'priority'"),
    ("create default not a possible value", "Hospital",
     lambda d: _tool(d, "book_appointment")["defaults"].update(payment_status="waived"), "default payment_status='waived'"),
    ("record attribute never set by create", "Hospital",
     lambda d: _tool(d, "book_appointment")["fields"].remove("reason"), "attributes ['reason'] of Appointment get no value"),
    ("requires_status never violated", "Hospital",
     lambda d: _rule(d, "HOS-5").update(statuses=["scheduled", "checked_in", "completed", "cancelled"]), "rule HOS-5: every generated"),
    ("requires_status never satisfied", "Hospital",
     lambda d: _rule(d, "HOS-5").update(statuses=["checked_in"]), "rule HOS-5: no generated"),
    ("empty date window", "Hospital",
     lambda d: _rule(d, "HOS-2").update(min=30, max=10), "rule HOS-2: min 30 > max 10"),
    ("lead time every row already meets", "Hospital",
     lambda d: _rule(d, "HOS-4").update(min=0, statement="An appointment can be cancelled until it starts.")
     or _record_attr(d, "Appointment", "scheduled_date").update(gen={"date": [1, 90]}), "rule HOS-4:"),
    ("rule kind on the wrong tool", "Hospital",
     lambda d: _rule(d, "HOS-3").update(tool="cancel_appointment"), "rule HOS-3: a target_flag rule guards a create tool"),
    ("target flag no tool can read", "Hospital",
     lambda d: d.update(tools=[t for t in d["tools"] if t["name"] != "get_doctor"]),
     "rule HOS-3: no get tool reads Doctor"),
    ("holding flag not a bool of the target", "SelfStorage",
     lambda d: _record(d, "StorageRental").update(holds={"flag": "unit_size", "statuses": ["active"]}),
     "record StorageRental: holds names 'unit_size', not a bool attribute of StorageUnit"),
    ("holding status not a status", "SelfStorage",
     lambda d: _record(d, "StorageRental").update(holds={"flag": "available", "statuses": ["rented"]}),
     "record StorageRental: holds statuses ['rented']"),
    ("target flag never false in data", "Hospital",
     lambda d: next(e for e in d["entities"] if e["name"] == "Doctor")["attributes"][3].update(gen={"bool": 1}), "rule HOS-3:"),
    ("statement disagrees with the limit", "Hospital",
     lambda d: _rule(d, "HOS-1").update(limit=4), "rule HOS-1: statement does not mention 4"),
    ("value range without realistic legal values", "Pharmacy",
     lambda d: _rule(d, "PHA-4").update(min=50, max=60, statement="A fill dispenses 50 to 60 packs."), "rule PHA-4: no realistic value"),
    ("ref to a missing record", "Pharmacy",
     lambda d: _record_attr(d, "PrescriptionFill", "appointment_ref").update(gen={"ref": "Hospital.Surgery"}), "ref 'Hospital.Surgery'"),
    ("ref to its own domain", "Pharmacy",
     lambda d: _record_attr(d, "PrescriptionFill", "appointment_ref").update(gen={"ref": "Pharmacy.PrescriptionFill"}), "another domain"),
    ("unknown generator", "Hospital",
     lambda d: _record_attr(d, "Appointment", "reason").update(gen={"lorem": 3}), "attribute reason: gen"),
    ("YAML boolean in a str choice", "Hospital",
     lambda d: _record_attr(d, "Appointment", "reason").update(gen={"choice": ["checkup", True]}), "do not fit type str"),
    ("name with underscore", "Hospital", lambda d: d.update(name="Hospital_Two"), "Hospital_Two: name: must be PascalCase"),
    ("status timed against a non-date", "Hospital",
     lambda d: _record(d, "Appointment").update(status_date="reason"), "status_date 'reason' is not a date attribute"),
    ("timing of an unknown status", "Hospital",
     lambda d: _record(d, "Appointment").update(status_timing={"lost": "past"}), "status_timing names 'lost'"),
    ("pricing by a missing target price", "Pharmacy",
     lambda d: _record(d, "PrescriptionFill").update(pricing={"amount": "amount_due", "price": "list_price", "quantity": "packs"}),
     "pricing names 'list_price', not a int/float attribute of Medication"),
    ("pricing by a non-integer quantity", "Pharmacy",
     lambda d: _record(d, "PrescriptionFill").update(pricing={"amount": "amount_due", "price": "unit_price", "quantity": "pickup_date"}),
     "pricing names 'pickup_date', not a int attribute"),
    ("match key that is not a value", "Hospital",
     lambda d: _record(d, "Appointment")["matches"][0]["allowed"].update({"broken arm": ["orthopedics"]}),
     "match keys ['broken arm'] are not values of reason"),
    ("match allowing an impossible category", "Hospital",
     lambda d: _record(d, "Appointment")["matches"][0]["allowed"].update({"knee pain": ["podiatry"]}),
     "match 'knee pain' allows ['podiatry']"),
    ("compose without word lists", "Banking",
     lambda d: next(e for e in d["entities"] if e["name"] == "CardProduct")["attributes"][0].update(gen={"compose": ["Gold"]}),
     "compose needs a str attribute"),
    ("too few rules", "Hospital", lambda d: d.update(rules=d["rules"][:4]), "rules: needs at least 5 rules"),
    ("count said as a plural noun", "MovingServices",  # said 'the rooms of furniture to move is 1'
     lambda d: _record_attr(d, "Move", "rooms").update(description="Rooms of furniture to move"),
     "record Move attribute rooms: description opens on the plural 'Rooms'"),
    ("count said as a plural noun after a verb", "PublicLibrary",
     lambda d: _record_attr(d, "Loan", "renewals").update(description="Times the loan was renewed"),
     "record Loan attribute renewals: description opens on the plural 'Times'"),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_sanity_checks_catch_a_broken_domain(case: tuple[str, str, Callable[[dict[str, Any]], None], str]) -> None:
    _, name, edit, needle = case
    problems = _broken(name, edit)
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize("description", ["Points balance", "Usual processing time in days", "Model year", "Weight in kg",
                                         "Number of guests", "Estimated number of hours of work", "Status"])
def test_a_numeric_description_with_a_singular_head_passes(description: str) -> None:
    from skiller.world.catalog.check import plural_head
    assert plural_head(description) is None


def test_catalog_check_reports_duplicate_names_and_raises() -> None:
    twin = get_domain("Hospital")
    problems = check_catalog([*DOMAINS, twin])
    assert any("Hospital: name: duplicates domain Hospital" in p for p in problems)
    with pytest.raises(CatalogCheckError, match="Hospital"):
        assert_valid([*DOMAINS, twin])


# ---------------------------------------------------------------- loading
def test_load_catalog_is_cached_and_returns_a_fresh_list() -> None:
    first, second = load_catalog(), load_catalog()
    assert first == second and first is not second
    assert all(a is b for a, b in zip(first, second))


def test_get_domain_by_exact_or_loose_name_and_clear_error() -> None:
    assert get_domain("HealthInsurance").name == "HealthInsurance"
    assert get_domain("health_insurance").name == "HealthInsurance"
    with pytest.raises(KeyError, match="no catalog domain named 'Airline'.*Hospital"):
        get_domain("Airline")


def test_package_exports_its_api() -> None:
    for name in ("load_catalog", "get_domain", "SECTORS", "CatalogDomain"):
        assert name in catalog_pkg.__all__


# ---------------------------------------------------------------- values
def test_curated_lists_are_large_enough() -> None:
    assert len(set(values.FIRST_NAMES)) >= 60 and len(set(values.LAST_NAMES)) >= 60
    assert len(set(values.CITIES)) >= 30 and len(set(values.COMPANY_WORDS)) >= 40
    assert len(set(values.WORDS)) >= 40


def test_person_rows_are_identical_for_a_seed_and_differ_across_seeds() -> None:
    a, b = values.person_rows(50, 11, CLOCK), values.person_rows(50, 11, CLOCK.isoformat())
    assert a == b
    assert a != values.person_rows(50, 12, CLOCK)
    assert values.person_rows(20, 11, CLOCK) == a[:20]  # a longer table extends a shorter one


def test_person_rows_have_the_shared_columns_unique_emails_and_adult_ages() -> None:
    rows = values.person_rows(300, 3, CLOCK)
    assert [r["person_id"] for r in rows[:2]] == ["P-0001", "P-0002"]
    assert all(list(r) == ["person_id", "first_name", "last_name", "email", "phone", "date_of_birth", "city"] for r in rows)
    emails = [r["email"] for r in rows]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d*@[a-z]+\.example", e) for e in emails)
    for r in rows:
        born = datetime.date.fromisoformat(r["date_of_birth"])
        age = CLOCK.year - born.year - ((CLOCK.month, CLOCK.day) < (born.month, born.day))
        assert 18 <= age <= 85


def test_values_are_pinned_so_every_machine_builds_the_same_data() -> None:
    # Changing the lists or the algorithms changes every generated database: update on purpose.
    assert values.person_rows(1, 1, CLOCK)[0] == {
        "person_id": "P-0001", "first_name": "Mikael", "last_name": "Singh",
        "email": "mikael.singh@webmail.example", "phone": "+1-555-728-0416",
        "date_of_birth": "1951-06-09", "city": "Dunmore Falls"}
    rng = random.Random(5)
    gens = [{"money": [10, 20]}, {"date": [-5, 5]}, {"code": "AB-##@"}, {"pick": "company"},
            {"ref": "Hospital.Appointment"}, {"int": [1, 9]}, {"bool": 0.5}, {"choice": ["x", "y"]}]
    got = [values.generate(g, rng, CLOCK, {"Hospital.Appointment": 50}) for g in gens]
    assert got == [16.37, "2026-03-01", "AB-58A", "Summit Associates", "APT-0042", 1, False, "x"]


def test_compose_names_come_from_a_large_pool_and_distinct_draws_avoid_repeats() -> None:
    gen = {"compose": [["Gold", "Travel", "Eco"], ["Debit", "Card"], ["Visa", "Maestro"]]}
    rng, seen = random.Random(3), set()
    names = [values.generate_distinct(gen, rng, CLOCK, seen) for _ in range(12)]
    assert sorted(names) == sorted(f"{a} {b} {c}" for a in ("Gold", "Travel", "Eco") for b in ("Debit", "Card")
                                   for c in ("Visa", "Maestro"))
    assert values.generate_distinct(gen, rng, CLOCK, seen) in names  # pool exhausted: still a value
    with pytest.raises(ValueError, match="compose needs"):
        values.generate({"compose": []}, rng, CLOCK)


def test_row_fitting_moves_dates_to_statuses_prices_by_quantity_and_retargets_categories() -> None:
    rng = random.Random(1)
    timing = {"status": "status", "date": "day", "past": ["completed"], "future": ["scheduled"],
              "range": [-30, 30], "pool": ["scheduled", "completed", "cancelled"]}
    row = {"status": "completed", "day": "2026-03-20"}
    values.fit_timing(row, timing, set(), rng, CLOCK)
    assert row["status"] == "completed" and row["day"] <= CLOCK.isoformat()
    row = {"status": "scheduled", "day": "2026-02-01"}
    values.fit_timing(row, timing, {"day"}, rng, CLOCK)  # the date is fixed: the status moves
    assert row == {"status": "completed", "day": "2026-02-01"} or row == {"status": "cancelled", "day": "2026-02-01"}
    row = {"status": "scheduled", "day": "2026-02-01"}
    values.fit_timing(row, timing, {"day", "status"}, rng, CLOCK)  # both fixed by a scenario: kept
    assert row == {"status": "scheduled", "day": "2026-02-01"}
    target = {"tour_id": "T-1", "price": 12.5, "fee": 2.0, "kind": "walk"}
    row = {"tour_id": "T-1", "seats": 3, "amount": 1.0}
    values.fit_amount(row, {"amount": "amount", "price": "price", "quantity": "seats", "fixed": "fee"}, target, set())
    assert row["amount"] == 39.5
    other = {"tour_id": "T-2", "price": 30.0, "kind": "tasting"}
    row = {"tour_id": "T-1", "reason": "food"}
    match = {"field": "reason", "target_field": "kind", "allowed": {"food": ["tasting"], "history": ["walk"]}}
    values.fit_match(row, match, "tour_id", [target, other], {"T-1": target, "T-2": other}, set(), rng)
    assert row["tour_id"] == "T-2"
    row = {"tour_id": "T-1", "reason": "food"}
    values.fit_match(row, match, "tour_id", [target, other], {"T-1": target, "T-2": other}, {"tour_id"}, rng)
    assert row == {"tour_id": "T-1", "reason": "history"}  # the target is fixed: the reason follows it


def test_status_timing_comes_from_the_lexicon_unless_the_catalog_overrides_it() -> None:
    from skiller.world.catalog.coherence import status_timing

    hospital = next(r for r in get_domain("Hospital").records if r.name == "Appointment")
    assert status_timing(hospital) == ("scheduled_date", ["checked_in", "completed"], ["scheduled"])
    registration = next(r for r in get_domain("MotorVehicles").records if r.name == "VehicleRegistration")
    timing = status_timing(registration)
    assert timing.date == "expiry_date" and "active" in timing.future and "expired" in timing.past
    enrollment = next(r for r in get_domain("University").records if r.name == "Enrollment")
    assert status_timing(enrollment) is None  # no date to time a status against


def test_generate_is_deterministic_and_respects_ranges() -> None:
    def draw(seed: int) -> list[Any]:
        rng = random.Random(seed)
        return [values.generate(a.gen, rng, CLOCK) for d in DOMAINS for r in d.records for a in r.attributes]

    assert draw(1) == draw(1) and draw(1) != draw(2)
    rng = random.Random(0)
    for _ in range(200):
        money = values.generate({"money": [0.12, 0.42]}, rng, CLOCK)
        assert 0.12 <= money <= 0.42 and round(money, 2) == money
        day = datetime.date.fromisoformat(values.generate({"date": [-3, 4]}, rng, CLOCK))
        assert -3 <= (day - CLOCK).days <= 4
        assert re.fullmatch(r"X-\d\d[A-Z]", values.generate({"code": "X-##@"}, rng, CLOCK))
    for pick in values.PICKS:
        assert isinstance(values.generate({"pick": pick}, rng, CLOCK), str)


@pytest.mark.parametrize("lookup", [{"Hospital.Appointment": 7}, lambda ref: 7, {"Hospital.Appointment": ("APT", 7)}])
def test_refs_stay_in_the_referenced_tables_range(lookup: Any) -> None:
    rng = random.Random(4)
    seen = {values.generate({"ref": "Hospital.Appointment"}, rng, CLOCK, lookup) for _ in range(300)}
    assert seen == {f"APT-{n:04d}" for n in range(1, 8)}


def test_refs_default_to_the_catalog_count() -> None:
    rng = random.Random(4)
    for domain, _, ref in _refs():
        other, _, record = ref.partition(".")
        rec = next(r for r in get_domain(other).records if r.name == record)
        value = values.generate({"ref": ref}, rng, CLOCK)
        prefix, _, n = value.partition("-")
        assert prefix == rec.id_prefix and 1 <= int(n) <= (rec.count or values.DEFAULT_RECORD_COUNT)


def test_bad_generators_raise_clear_errors() -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError, match="unknown generator kind 'lorem'"):
        values.generate({"lorem": 1}, rng, CLOCK)
    with pytest.raises(ValueError, match="unknown pick"):
        values.generate({"pick": "planet"}, rng, CLOCK)
    with pytest.raises(ValueError, match="Domain.Record"):
        values.generate({"ref": "Hospital"}, rng, CLOCK)


def test_a_quarter_of_all_catalog_rules_depend_on_who_asks_or_a_computed_amount() -> None:
    """Must-hold 3 over the whole catalog, and every rule kind of the grammar is used by some domain."""
    domains = load_catalog()
    hits, total = attribute_share(domains)
    assert hits / total >= 0.25, f"{hits}/{total} rules on a customer attribute or computed amount"
    used = {r.kind for d in domains for r in d.rules}
    assert used == set(typing.get_args(RuleKind)), set(typing.get_args(RuleKind)) - used


@pytest.mark.parametrize(("rule", "problem"), [
    ({"id": "MOV-90", "tool": "book_move", "kind": "ownership", "statement": "Only the customer's own moves."},
     "guards a write on a record"),
    ({"id": "MOV-91", "tool": "cancel_move", "kind": "ownership", "statement": "Moves are cancelled politely."},
     "has to be the person's own"),
    ({"id": "MOV-92", "tool": "book_move", "kind": "computed_fee", "field": "rooms", "percent": 10, "max": 2,
      "statement": "A fee of 10% of the rooms, at most 2."}, "must fall inside the range"),
    ({"id": "MOV-93", "tool": "cancel_move", "kind": "computed_fee", "field": "rooms", "percent": 10, "max": 0.5,
      "statement": "A fee of 10% of the rooms, at most 0.5."}, "numeric argument of the create/update tool"),
])
def test_catalog_check_catches_ownership_and_fee_rules_that_cannot_be_kept_and_broken(rule: dict, problem: str) -> None:
    data = get_domain("MovingServices").model_dump()
    data["rules"].append(rule)
    problems = check_domain(CatalogDomain.model_validate(data))
    assert any(rule["id"] in p and problem in p for p in problems), problems
