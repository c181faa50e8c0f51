"""The loopback model writes s09's answer from the request text alone: the domain read back from the prompt
(tool list, database summary, policy) compiles to the builtin's very module and tests, with the catalog made
unavailable while it reads; a prompt missing a fact the answer needs is unreadable."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import BaseModel

import skiller.world.catalog as catalog
import skiller.world.catalog.load as catalog_load
from skiller.llm.interface import LLMRequest
from skiller.servers.database import DatabaseSummary, summarize
from skiller.steps.prompt_text import database_text, ranges_text
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s05_tool_lists import openai_tool
from skiller.steps.s09_implementation import PROMPT
from skiller.world.builtin import BuiltinProvider
from skiller.world.builtin.registry import ANSWERS
from tests.fakes.reading_model import Unreadable, implementation

BuiltinProvider()  # registers the builtin answers compared against
CLOCK = "2026-03-02"
# Priced by quantity (BoardingStay) and by copy, updates of several fields, tier and member rules, pay tools;
# balances used up and given back (VetClinic per visit, PetInsurance by amount); refund schedules on a cancel
# (PetBoarding, MovingServices); records with line items (Pharmacy, ConcertHall).
DOMAINS = ["PetBoarding", "VetClinic", "BuildingPermits", "PetInsurance", "MovingServices", "Pharmacy", "ConcertHall"]


def _builtin(purpose: str, domain: str, **more) -> dict:
    context = {"domain": domain, "clock": CLOCK, "seed": 7, **more}
    return ANSWERS[purpose](LLMRequest(purpose=purpose, response_model=BaseModel, context=context))


def database_of(domain: str, tmp_path) -> DatabaseSummary:
    """`domain`'s database made by the builtin's generator in a real process, summarized."""
    (tmp_path / "gen_db.py").write_text(_builtin("s06.database_code", domain)["code"])
    subprocess.run([sys.executable, "gen_db.py", "--seed", "7", "--rows", "30", "--people", "20", "--clock", CLOCK,
                    "--out", "db.sqlite"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    return summarize(tmp_path / "db.sqlite")


def s09_prompt(domain: str, tmp_path) -> str:
    """The request s09 sends for `domain`."""
    blueprint = Blueprint.model_validate(_builtin("s04.blueprint", domain))
    tools = [openai_tool(f) for f in blueprint.functions]
    return PROMPT.format(name=domain, clock=CLOCK, tools=json.dumps(tools, indent=1),
                         modes=json.dumps({f.name: f.mode for f in blueprint.functions}),
                         database=database_text(database_of(domain, tmp_path)),
                         policy=_builtin("s07.policy", domain)["markdown"],
                         ranges=ranges_text(blueprint.relationships))


def _unavailable() -> None:
    raise LookupError("the catalog is not available to the model")


def catalog_unavailable(monkeypatch, domain: str) -> None:
    """From here on, reading the catalog raises (what get_domain and load_catalog read)."""
    catalog._variant.cache_clear()
    monkeypatch.setattr(catalog_load, "_load", _unavailable)
    monkeypatch.setattr(catalog, "_load", _unavailable)
    with pytest.raises(LookupError, match="catalog"):  # the catalog is really gone
        catalog.get_domain(domain)


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_implementation_read_from_the_s09_prompt_is_the_builtins(domain, tmp_path, monkeypatch):
    prompt = s09_prompt(domain, tmp_path)
    expected = _builtin("s09.implementation", domain)
    catalog_unavailable(monkeypatch, domain)
    answer = implementation(prompt)
    assert answer["module"] == expected["module"]
    assert answer["tests"] == expected["tests"]


def test_an_s09_prompt_without_what_the_tools_do_is_unreadable(tmp_path):
    prompt = s09_prompt("PetBoarding", tmp_path)
    with pytest.raises(Unreadable, match="effects|does"):
        implementation(prompt.replace("**Effects.**", "**Notes.**"))
    with pytest.raises(Unreadable, match="database"):
        implementation(prompt.replace("The database `db.sqlite`", "The file"))
