"""skiller.world.catalog.shapes: no two catalog domains share a schema shape; many are unlike any other."""
from __future__ import annotations

from skiller.world.catalog import load_catalog
from skiller.world.catalog.check import check_catalog
from skiller.world.catalog.shapes import schema_shape, shape_problems, shape_summary, structure, unlike

DOMAINS = load_catalog()


def test_no_two_catalog_domains_share_a_schema_shape() -> None:
    assert shape_problems(DOMAINS) == []
    assert len({schema_shape(d) for d in DOMAINS}) == len(DOMAINS)


def test_a_renamed_copy_has_the_same_shape_and_the_catalog_check_reports_it() -> None:
    base = DOMAINS[0]
    copy = base.model_copy(update={"name": "RenamedCopy"})
    assert schema_shape(copy) == schema_shape(base) and structure(copy) == structure(base)
    problems = shape_problems([base, copy])
    assert problems == [f"RenamedCopy: shape: same tables, column types and tool kinds as {base.name}"]
    assert problems[0] in check_catalog([base, copy])


def test_shape_ignores_names_but_sees_an_extra_column_or_tool_kind() -> None:
    base = DOMAINS[0]
    renamed_attr = base.role_attributes[0].model_copy(update={"name": "something_else"})
    same = base.model_copy(update={"role_attributes": [renamed_attr, *base.role_attributes[1:]]})
    assert schema_shape(same) == schema_shape(base)
    fewer = base.model_copy(update={"role_attributes": base.role_attributes[1:]})
    assert schema_shape(fewer) != schema_shape(base)
    no_pay = base.model_copy(update={"tools": [t for t in base.tools if t.kind != "pay"]})
    assert any(t.kind == "pay" for t in base.tools) and schema_shape(no_pay) != schema_shape(base)


def test_catalog_has_40_domains_and_at_least_8_unlike_any_other() -> None:
    summary = shape_summary(DOMAINS)
    assert summary["domains"] >= 40 and summary["distinct_shapes"] == summary["domains"]
    assert len(unlike(DOMAINS)) >= 8, summary
    assert len(summary["tool_kind_sets"]) >= 4, summary


def test_a_seeded_variant_may_share_its_bases_shape_but_not_another_domains() -> None:
    base = DOMAINS[0]
    variant = base.model_copy(update={"name": f"Lakeside{base.name}"})
    assert shape_problems([base, variant]) == []
    stranger = base.model_copy(update={"name": f"{base.name}Annex"})
    assert shape_problems([base, variant, stranger]) == [
        f"{stranger.name}: shape: same tables, column types and tool kinds as {base.name}"]
