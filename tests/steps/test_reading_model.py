"""The loopback model's readers answer from the request text alone: on every catalog domain the tool graph
read from s08's prompt equals the builtin's (which reads the catalog), and a prompt without a fact the
answer needs is unreadable rather than answered from elsewhere."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from skiller.world.catalog import load_catalog
from skiller.world.builtin import BuiltinProvider
from skiller.world.builtin.registry import ANSWERS
from skiller.llm.interface import LLMRequest
from skiller.steps import s08_tool_graph
from skiller.steps.s04_blueprints import Blueprint
from tests.fakes.reading_model import Unreadable, tool_graph

BuiltinProvider()  # registers the builtin answers compared against


def _builtin(purpose: str, domain: str) -> dict:
    return ANSWERS[purpose](LLMRequest(purpose=purpose, response_model=BaseModel, context={"domain": domain}))


@pytest.mark.parametrize("domain", [d.name for d in load_catalog()])
def test_the_tool_graph_read_from_the_s08_prompt_is_the_builtins(domain):
    blueprint = Blueprint.model_validate(_builtin("s04.blueprint", domain))
    assert tool_graph(s08_tool_graph.prompt(domain, blueprint)) == _builtin("s08.tool_graph", domain)


def test_an_s08_prompt_without_the_records_is_unreadable():
    domain = load_catalog()[0].name
    text = s08_tool_graph.prompt(domain, Blueprint.model_validate(_builtin("s04.blueprint", domain)))
    head, tools = text.split("\nTools:\n", 1)
    with pytest.raises(Unreadable, match="records"):
        tool_graph(head.split("\nRecords the service keeps")[0] + "\nTools:\n" + tools)
