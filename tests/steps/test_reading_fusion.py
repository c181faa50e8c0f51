"""The loopback model answers the fusion requests from their text alone: with the catalog made unavailable
while it reads, the fit read from s10's prompt, the fused templates read from s11's and the merged policy read
from s13's are the builtin's (which reads the catalog); a prompt missing a fact the answer needs is unreadable."""
from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from skiller.contract.policy import parse_rules
from skiller.llm.interface import LLMRequest
from skiller.steps.base import MachineIndex
from skiller.steps.s02_entity_extraction import EntityCatalog
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s07_policy import Policy
from skiller.steps.s10_combinations import Combination, candidates, fit_prompt
from skiller.steps.s11_trajectory_fusion import S11Input, fuse_prompt
from skiller.steps.s13_policy_merge import merge_prompt
from skiller.steps.s14_task_templates import TaskTemplate
from skiller.world.builtin.registry import ANSWERS
from tests.fakes.reading_fusion import Unreadable, fit, fuse, merge
from tests.steps.test_reading_implementation import CLOCK, _builtin, catalog_unavailable, database_of

# A visit claimed at the insurer and shown at the boarding kennel (two references, a triple); a person-only pair.
MEMBERS = ["PetBoarding", "PetInsurance", "VetClinic", "MovingServices"]
COUNT = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Each member's blueprint, policy, database summary, entities and validated (non-refusal) segments."""
    out: dict = {"blueprint": {}, "policy": {}, "summary": {}, "entities": [], "segments": {}}
    for domain in MEMBERS:
        out["blueprint"][domain] = Blueprint.model_validate(_builtin("s04.blueprint", domain))
        markdown = _builtin("s07.policy", domain)["markdown"]
        out["policy"][domain] = Policy(markdown=markdown, rules=parse_rules(markdown))
        out["summary"][domain] = database_of(domain, tmp_path_factory.mktemp(domain))
        out["entities"] += _builtin("s02.entities", domain)["entities"]
        made = _builtin("s14.templates", domain, count=24, offset=0, size=24)["templates"]
        out["segments"][domain] = [TaskTemplate.model_validate(t) for t in made if t["kind"] != "refusal"]
    return out


def _combinations(world: dict) -> dict[str, Combination]:
    return {c.name: c for c in candidates(world["blueprint"], 3, 1)}


def _expected(purpose: str, context: dict) -> dict:
    return ANSWERS[purpose](LLMRequest(purpose=purpose, response_model=BaseModel, context=context))


def _s11(world: dict, combo: Combination) -> tuple[str, dict]:
    inputs = S11Input(name=combo.name, combination=combo, machines=MachineIndex(machines={}),
                      members_task_templates={}, members_tool_list={},
                      members_database_summary={m: world["summary"][m] for m in combo.members},
                      members_blueprint={m: world["blueprint"][m] for m in combo.members},
                      members_policy={m: world["policy"][m] for m in combo.members},
                      entities=EntityCatalog.model_validate({"entities": world["entities"]}))
    segments = {m: world["segments"][m] for m in combo.members}
    context = {"combination": combo.model_dump(mode="json"), "count": COUNT, "seed": 7, "clock": CLOCK,
               "segments": {m: [s.model_dump(mode="json") for s in segs] for m, segs in segments.items()},
               "tables": {m: [t.name for t in world["summary"][m].tables] for m in combo.members}}
    return fuse_prompt(inputs, segments, COUNT, CLOCK), context


def _without_reasons(batch: dict) -> list[dict]:
    """The templates but for wording a model chooses: the reason for the call (the builtin draws on the catalog's
    persona hints, which no request states) and the label naming a target in the instruction (which column
    names a thing rather than a person is the reader's guess from the column's meaning)."""
    return [{**{k: v for k, v in t.items() if k != "reason_for_call"},
             "instruction": re.sub(r" \(<t\d+\.\w+>\)", "", t["instruction"])} for t in batch["templates"]]


def test_the_fit_read_from_the_s10_prompt_is_the_builtins(world, monkeypatch):
    combos = _combinations(world)
    prompts = {n: fit_prompt(c, world["blueprint"]) for n, c in combos.items()}
    expected = {n: _expected("s10.fit", {"combination": c.model_dump(mode="json"),
                                         "sectors": [world["blueprint"][m].sector for m in c.members]})
                for n, c in combos.items()}
    catalog_unavailable(monkeypatch, MEMBERS[0])
    assert {n: fit(p) for n, p in prompts.items()} == expected
    assert {e["score"] for e in expected.values()} >= {1, 5}  # journeys and unrelated pairs both judged


@pytest.mark.parametrize("name", ["VetClinic_PetInsurance", "VetClinic_PetBoarding_PetInsurance",
                                  "MovingServices_PetBoarding"])
def test_the_fused_templates_read_from_the_s11_prompt_are_the_builtins(world, name, monkeypatch):
    combo = _combinations(world)[name]
    prompt, context = _s11(world, combo)
    expected = _expected("s11.fuse", context)
    catalog_unavailable(monkeypatch, combo.members[0])
    answer = fuse(prompt)
    assert expected["templates"] and _without_reasons(answer) == _without_reasons(expected)


@pytest.mark.parametrize("name", ["VetClinic_PetInsurance", "VetClinic_PetBoarding_PetInsurance",
                                  "MovingServices_PetBoarding"])
def test_the_merged_policy_read_from_the_s13_prompt_is_the_builtins(world, name, monkeypatch):
    combo = _combinations(world)[name]
    prompt = merge_prompt(combo, world["policy"])
    expected = _expected("s13.policy_merge", {"combination": combo.model_dump(mode="json")})
    catalog_unavailable(monkeypatch, combo.members[0])
    assert merge(prompt) == expected


def test_fusion_prompts_without_the_reference_rules_are_answered_without_them_or_unreadable(world):
    combo = _combinations(world)["VetClinic_PetInsurance"]
    prompt, _ = _s11(world, combo)
    with pytest.raises(Unreadable, match="PetInsurance"):
        fuse(prompt.replace("## Member PetInsurance", "## Member of PetInsurance"))
    merged = merge(merge_prompt(combo, world["policy"]))["markdown"]
    stripped = {m: Policy(markdown=p.markdown.replace("<!-- REFERENCE", "<!-- NOTE"), rules=p.rules)
                for m, p in world["policy"].items()}
    # without the insurer's rules on a visit, the only bridge left is the person's: the rules came from the text
    assert "PIN-X1" in merged and "PIN-X1" not in merge(merge_prompt(combo, stripped))["markdown"]


def test_a_handed_over_record_is_said_once_and_the_reason_fits_the_hand_over(world):
    # 'I want money back for a vet bill. At VetClinic I have a vet visit, and PetInsurance needs it.', not a reason
    # that repeats the hand-over after an unrelated hint ('I just adopted a puppy ..., and PetInsurance needs my
    # vet visit from VetClinic. At VetClinic I have a vet visit.')
    _, context = _s11(world, _combinations(world)["VetClinic_PetInsurance"])
    writes = [t for t in _expected("s11.fuse", context)["templates"]
              if t["kind"] == "write" and t.get("is_cross_domain") and "you have a" in t["instruction"]]
    assert writes
    for t in writes:
        assert "and PetInsurance needs it." in t["instruction"], t["instruction"]
        assert "VetClinic" not in t["reason_for_call"] and "needs" not in t["reason_for_call"], t["reason_for_call"]
    assert any(t["reason_for_call"] == "You want money back for a vet bill." for t in writes)
