"""The loopback model writes s14's templates from the request text alone: the domain read back from the
prompt (tools, what each does, rules, database, what the columns mean) gives the builtin's very templates,
with the catalog made unavailable while it reads; a prompt missing a fact the templates need is unreadable."""
from __future__ import annotations

import pytest

from skiller.contract.policy import parse_rules
from skiller.steps.s02_entity_extraction import EntityCatalog
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s07_policy import Policy
from skiller.steps.s08_tool_graph import ToolGraph
from skiller.steps.s14_task_templates import GROUP, S14Input, template_prompt
from tests.fakes.reading_templates import Unreadable, templates
from tests.steps.test_reading_implementation import CLOCK, _builtin, catalog_unavailable, database_of

# Tier, ownership and fee rules (PetBoarding, MovingServices, HealthInsurance); a newer shape (LaundryService);
# refund schedules (PetBoarding, MovingServices); balances (VetClinic, PetInsurance); line items (Pharmacy, ConcertHall).
DOMAINS = ["PetBoarding", "MovingServices", "HealthInsurance", "LaundryService", "VetClinic", "PetInsurance", "Pharmacy",
           "ConcertHall"]


def s14_prompt(domain: str, tmp_path, first: int = 9, size: int = 8, count: int = 24) -> str:
    """The request s14 sends for one group of `domain`'s templates."""
    markdown = _builtin("s07.policy", domain)["markdown"]
    inputs = S14Input(domain=domain, blueprint=Blueprint.model_validate(_builtin("s04.blueprint", domain)),
                      policy=Policy(markdown=markdown, rules=parse_rules(markdown)),
                      tool_graph=ToolGraph.model_validate(_builtin("s08.tool_graph", domain)),
                      database_summary=database_of(domain, tmp_path),
                      entities=EntityCatalog.model_validate(_builtin("s02.entities", domain)))
    group = GROUP.format(group=2, groups=3, first=first, last=first + size - 1, count=count, size=size)
    return template_prompt(inputs, CLOCK, 1, 5, group)


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_templates_read_from_the_s14_prompt_are_the_builtins(domain, tmp_path, monkeypatch):
    prompt = s14_prompt(domain, tmp_path)
    expected = _builtin("s14.templates", domain, count=24, offset=8, size=8)
    catalog_unavailable(monkeypatch, domain)
    assert templates(prompt) == expected


def test_an_s14_prompt_without_what_the_tools_do_is_unreadable(tmp_path):
    prompt = s14_prompt("PetBoarding", tmp_path)
    with pytest.raises(Unreadable, match="effects|does"):
        templates(prompt.replace("Creates a new", "Makes a"))
