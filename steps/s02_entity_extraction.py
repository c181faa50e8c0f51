"""s02: extract each domain's entities, with typed attributes; person-type entities marked."""
from __future__ import annotations

import asyncio
from typing import Literal

from skiller.llm.interface import LLMRequest, Message
from steps.base import Frozen, StepContext, StepError, StepOutput, step
from steps.s01_domain_expansion import DomainTopic, DomainTopics


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
List the entities this service stores. Always include the shared `Person` entity and the
person-type role the service serves (e.g. Patient), both with is_person=true, then at most three
peripheral entities and the relationship records between the role and them. Give each entity typed
attributes (str, int, float, bool, date)."""


async def _extract(topic: DomainTopic, ctx: StepContext) -> DomainEntities:
    request = LLMRequest(
        purpose="s02.entities", role="text",
        messages=(Message(role="user", content=PROMPT.format(**topic.model_dump())),),
        response_model=DomainEntities, context={"domain": topic.name},
    )
    return await ctx.llm.ask(request)


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
    answers = await asyncio.gather(*(_extract(t, ctx) for t in inputs.domains.domains))
    catalog = merge(answers)
    if not any(e.name == "Person" and e.is_person for e in catalog.entities):
        raise StepError("validation", "s02: no shared Person entity was extracted")
    return S02Output(entities=catalog, payload={"entities": len(catalog.entities)})
