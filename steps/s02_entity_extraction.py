"""s02: extract each domain's entities, with typed attributes; person-type entities marked."""
from __future__ import annotations

import asyncio
import re
from typing import Literal

from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.steps.reask import ask_checked
from skiller.steps.s01_domain_expansion import DomainTopic, DomainTopics


class AttributeSpec(Frozen):
    name: str
    type: Literal["str", "int", "float", "bool", "date"]
    description: str


class EntitySpec(Frozen):
    name: str
    description: str
    is_person: bool
    attributes: list[AttributeSpec]
    domains: list[str]


class DomainEntities(Frozen):
    """One domain's answer: its entities (the shared Person included)."""

    entities: list[EntitySpec]


class EntityCatalog(Frozen):
    entities: list[EntitySpec]


class S02Input(Frozen):
    domains: DomainTopics


class S02Output(StepOutput):
    entities: EntityCatalog


PROMPT = """Service domain: {name} ({sector}) - {description}
List the entities this service stores. Always include the shared `Person` entity (with at least
first_name, last_name, email, phone, date_of_birth, city) and the person-type role the service
serves (e.g. Patient), both with is_person=true, then at most three peripheral entities (things
the service keeps, is_person=false). Relationship records between the role and the peripherals
(e.g. an appointment) come in the next step, not here. Names are PascalCase; give each entity typed
attributes (str, int, float, bool, date) in snake_case with a description. Set `domains` to
["{name}"]."""


def check_entities(domain: str):
    """The answer for `domain` with its domain set in code, and what is wrong with it."""
    def check(answer: DomainEntities) -> tuple[DomainEntities, list[str]]:
        entities = [e.model_copy(update={"domains": [domain]}) for e in answer.entities]
        names = [e.name for e in entities]
        problems = [f"entity {n} is listed twice" for n in sorted({n for n in names if names.count(n) > 1})]
        if not any(e.name == "Person" and e.is_person for e in entities):
            problems.append("no shared Person entity with is_person=true")
        if not any(e.is_person and e.name != "Person" for e in entities):
            problems.append("no person-type role entity (is_person=true, not Person)")
        problems += [f"entity name {n!r} is not PascalCase" for n in names if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", n)]
        for e in entities:
            attrs = [a.name for a in e.attributes]
            problems += [f"{e.name}.{a} is listed twice" for a in sorted({a for a in attrs if attrs.count(a) > 1})]
        return DomainEntities(entities=entities), problems
    return check


async def _extract(topic: DomainTopic, ctx: StepContext) -> tuple[DomainEntities | None, list[str]]:
    request = LLMRequest(
        purpose="s02.entities", role="text",
        messages=(Message(role="user", content=PROMPT.format(**topic.model_dump())),),
        response_model=DomainEntities, context={"domain": topic.name},
    )
    return await ask_checked(request, check_entities(topic.name), ctx)


def merge(answers: list[DomainEntities]) -> EntityCatalog:
    """Union by name; an entity named by several domains (Person) lists all of them."""
    merged: dict[str, EntitySpec] = {}
    for answer in answers:
        for entity in answer.entities:
            seen = merged.get(entity.name)
            if seen is None:
                merged[entity.name] = entity
            else:
                attrs = {a.name: a for a in seen.attributes} | {a.name: a for a in entity.attributes}
                merged[entity.name] = seen.model_copy(update={
                    "domains": sorted(set(seen.domains) | set(entity.domains)),
                    "attributes": [attrs[k] for k in sorted(attrs)],
                })
    return EntityCatalog(entities=[merged[k] for k in sorted(merged)])


@step("s02", machine="world", source="domains_expanded", triggers={"extract_entities": "entities_extracted"})
async def run(inputs: S02Input, ctx: StepContext) -> S02Output:
    """A domain whose answer stays invalid after one re-ask is dropped (its reason kept); the others go on."""
    answers = await asyncio.gather(*(_extract(t, ctx) for t in inputs.domains.domains))
    kept = [answer for answer, _ in answers if answer is not None]
    dropped = {t.name: problems[0] for t, (answer, problems) in zip(inputs.domains.domains, answers) if answer is None}
    if not kept:
        raise StepError("validation", f"s02: no domain gave valid entities; first: {next(iter(dropped.items()))}")
    catalog = merge(kept)
    return S02Output(entities=catalog, payload={"entities": len(catalog.entities), **({"dropped": dropped} if dropped else {})})
