"""Seeded domain variants: distinct, deterministic, coherent with their base, and as valid as the catalog."""
from __future__ import annotations

import re

import pytest

from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.check import check_catalog, check_domain
from skiller.world.catalog.variants import QUALIFIERS, base_of, build_variant, variant_name

CATALOG = load_catalog()
BASES = [get_domain(n) for n in ("Hospital", "AutoRepair", "Banking", "Hotel", "PowerUtility")]
PASCAL = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*$")


def _variants(seed: int, count: int = 3) -> list:
    return [get_domain(variant_name(b.name, seed, i)) for b in BASES for i in range(count)]


def test_variants_have_distinct_pascal_names_without_underscores():
    names = [d.name for d in _variants(7)]
    assert len(set(names)) == len(names)
    assert not set(names) & {d.name for d in CATALOG}
    assert all(PASCAL.match(n) and "_" not in n for n in names)
    assert all(any(n == q + b.name for q in QUALIFIERS for b in BASES) for n in names)  # HarborHospital


def test_variants_are_deterministic_from_seed_base_and_index():
    assert [variant_name("Hospital", 7, i) for i in range(5)] == [variant_name("Hospital", 7, i) for i in range(5)]
    assert [variant_name("Hospital", 7, i) for i in range(5)] != [variant_name("Hospital", 8, i) for i in range(5)]
    name = variant_name("Hospital", 7, 1)
    base, qualifier = base_of(name, [d.name for d in CATALOG])
    rebuilt = build_variant(get_domain(base), qualifier, CATALOG)  # uncached, from scratch
    assert rebuilt == get_domain(name)
    assert rebuilt.model_dump_json() == build_variant(get_domain(base), qualifier, CATALOG).model_dump_json()


def test_variants_pass_every_catalog_check_together_with_the_catalog():
    variants = _variants(7) + _variants(11)
    unique = list({v.name: v for v in variants}.values())
    for v in unique:
        assert check_domain(v, CATALOG) == [], v.name
    assert check_catalog([*CATALOG, *unique]) == []  # unique names, rule ids and id prefixes


def test_a_variant_stays_the_same_kind_of_service():
    for base in BASES:
        for i in range(3):
            v = get_domain(variant_name(base.name, 7, i))
            assert (v.sector, v.role) == (base.sector, base.role)
            assert [e.name for e in v.entities] == [e.name for e in base.entities]
            assert [(r.name, r.statuses) for r in v.records] == [(r.name, r.statuses) for r in base.records]
            assert {t.name for t in v.tools} <= {t.name for t in base.tools}
            assert base.description[1:] in v.description


def _pools(d) -> dict:
    return {(i.name, a.name): a.gen for i in [*d.entities, *d.records] for a in i.attributes}


@pytest.mark.parametrize("base", BASES, ids=lambda d: d.name)
def test_variants_differ_in_vocabulary_rules_and_tools(base):
    variants = [get_domain(variant_name(base.name, 7, i)) for i in range(4)]
    assert all(_pools(v) != _pools(base) for v in variants)  # value pools, fees, rates
    statements = {r.statement for r in base.rules}
    assert any({r.statement for r in v.rules} - statements for v in variants)  # limits and windows restated
    assert len({v.model_dump_json() for v in variants}) == len(variants)


def test_some_variants_offer_a_subset_of_the_tools():
    variants = _variants(7, 4)
    smaller = [v for v in variants if len(v.tools) < len(next(b for b in BASES if v.name.endswith(b.name)).tools)]
    assert len(smaller) >= len(variants) // 4


def test_changed_rules_say_their_new_numbers():
    for v in _variants(7, 4):
        base = get_domain(base_of(v.name, [d.name for d in CATALOG])[0])
        by_suffix = {r.id.split("-")[1]: r for r in base.rules}
        for rule in v.rules:
            old = by_suffix[rule.id.split("-")[1]]
            for attr in ("limit", "min", "max"):
                new = getattr(rule, attr)
                if new is not None and new != getattr(old, attr) and new not in (0, 1):
                    assert f"{abs(new):g}" in rule.statement.replace(",", ""), (rule.id, rule.statement)


def test_get_domain_finds_a_variant_by_any_spelling():
    name = variant_name("AutoRepair", 7, 0)
    assert get_domain(name.lower()).name == name
    with pytest.raises(KeyError):
        get_domain("NowhereHospital")
