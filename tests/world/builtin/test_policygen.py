"""skiller.world.builtin.policygen: policies follow the reference markers and round-trip their rules."""
from __future__ import annotations

import re

import pytest

from skiller.contract.policy import parse_references
from skiller.world.catalog import load_catalog
from skiller.world.catalog.model import CatalogBridge, CatalogDomain, CatalogRule
from skiller.world.builtin.policygen import parse_rules, policy_markdown, rule_marker

DOMAINS = load_catalog()
SECTIONS = ("**Purpose.**", "**Preconditions.**", "**Input validation.**", "**Permission outcomes.**", "**Effects.**")


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_policy_has_the_reference_structure_and_round_trips_its_rules(domain: CatalogDomain) -> None:
    md = policy_markdown(domain)
    assert md == policy_markdown(domain)
    assert md.startswith("<!-- POLICY_START -->") and md.rstrip().endswith("<!-- POLICY_END -->")
    global_end = md.index("<!-- GLOBAL_RULES_END -->")
    assert "Identity" in md[:global_end] and "Confirm writes" in md[:global_end]
    for tool in domain.tools:
        start, end = md.index(f"<!-- TOOL: {tool.name} -->"), md.index(f"<!-- TOOL_END: {tool.name} -->")
        assert global_end < start < end
        section = md[start:end]
        assert f"### Tool: {tool.name}\n" in section
        positions = [section.index(s) for s in SECTIONS]
        assert positions == sorted(positions)
        mine = [r.model_dump(mode="json") for r in domain.rules if r.tool == tool.name]
        assert parse_rules(section) == mine
        for rule in mine:
            assert f"Rejected [{rule['id']}]: {rule['statement']}" in section
    by_id = sorted(parse_rules(md), key=lambda r: r["id"])
    assert by_id == sorted((r.model_dump(mode="json") for r in domain.rules), key=lambda r: r["id"])
    assert [CatalogRule.model_validate(r) for r in parse_rules(md)] == \
        sorted(domain.rules, key=lambda r: [t.name for t in domain.tools].index(r.tool))


def test_rule_marker_stays_one_closed_comment_whatever_the_statement_says() -> None:
    rule = CatalogRule(id="X-1", tool="t", kind="value_range", field="amount", min=1, max=5,
                       statement="Amounts --> must stay between 1 and 5 -- no more, <!-- no less.")
    marker = rule_marker(rule)
    assert re.fullmatch(r"<!-- RULE \{[^>]*\} -->", marker) and "--" not in marker[5:-4]
    assert parse_rules(f"text {marker} more") == [rule.model_dump(mode="json")]


@pytest.mark.parametrize("domain", [d for d in DOMAINS if d.bridges], ids=lambda d: d.name)
def test_policy_states_the_rules_on_other_services_records_before_its_global_rules_end(domain: CatalogDomain) -> None:
    md = policy_markdown(domain)
    head = md[:md.index("<!-- GLOBAL_RULES_END -->")]
    assert [CatalogBridge.model_validate(r) for r in parse_references(head)] == domain.bridges
    assert parse_references(md) == parse_references(head)  # stated once, among the global rules
    assert all(f"[{b.id}] {b.statement}" in head for b in domain.bridges)


def test_a_policy_without_rules_on_other_services_records_states_none() -> None:
    domain = next(d for d in DOMAINS if not d.bridges)
    assert "REFERENCE" not in policy_markdown(domain) and "Records of other services" not in policy_markdown(domain)
