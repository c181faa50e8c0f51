"""s04: one MCP server blueprint per domain: core entity, peripherals, relationships, functions."""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Literal

from pydantic import ConfigDict, Field

from skiller.llm.interface import LLMRequest, Message
from steps.base import Frozen, Spawn, StepContext, StepError, StepOutput, step
from steps.s01_domain_expansion import DomainTopic, DomainTopics
from steps.s03_entity_graph import EntityGraph, Relationship


class Parameter(Frozen):
    type: Literal["string", "integer", "number", "boolean"]
    description: str
    required: bool = True
    default: Any = None
    range: str | None = None  # human-readable bound, e.g. "1..90 days ahead"
    enum: list[str | int | float] | None = None
    format: str | None = None  # JSON Schema format, e.g. "date"


class Function(Frozen):
    name: str
    description: str
    parameters: dict[str, Parameter]
    returns: str
    mode: Literal["read", "write"]


class Blueprint(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    MCP_server_name: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{1,63}$")
    description: str
    sector: str
    core_entity: str
    peripheral_entities: list[str] = Field(max_length=3)
    relationships: list[Relationship]
    functions: list[Function] = Field(min_length=10)


class Blueprints(Frozen):
    blueprints: list[Blueprint]


class S04Input(Frozen):
    domains: DomainTopics
    graph: EntityGraph


class S04Output(StepOutput):
    blueprints: Blueprints


PROMPT = """Design the MCP server for the service domain {name} ({sector}): {description}
Core (person-type) entity: {role}. Relationships: {relationships}.
Give at most three peripheral entities and at least ten functions covering lookups, searches and
writes (creation, status changes such as cancellation, updates, payments). Each function has a
snake_case name, a description, typed parameters (string, integer, number, boolean; say which are
required, give enums and ranges), what it returns and whether it reads or writes."""


async def _design(topic: DomainTopic, graph: EntityGraph, ctx: StepContext) -> Blueprint:
    rels = [r for r in graph.edges if r.domain == topic.name]
    request = LLMRequest(
        purpose="s04.blueprint", role="text",
        messages=(Message(role="user", content=PROMPT.format(
            name=topic.name, sector=topic.sector, description=topic.description,
            role=graph.roles[topic.name], relationships=", ".join(r.name for r in rels))),),
        response_model=Blueprint,
        context={"domain": topic.name, "role": graph.roles[topic.name]},
    )
    blueprint: Blueprint = await ctx.llm.ask(request)
    if blueprint.MCP_server_name != topic.name:
        raise StepError("validation", f"s04: blueprint for {topic.name} is named {blueprint.MCP_server_name}")
    return blueprint


@step("s04", machine="world", source="graph_built", triggers={"design_blueprints": "blueprinted"})
async def run(inputs: S04Input, ctx: StepContext) -> S04Output:
    designed = await asyncio.gather(*(_design(t, inputs.graph, ctx) for t in inputs.domains.domains))
    per_entity: Counter[str] = Counter()
    kept = []
    for blueprint in designed:  # the cap keeps the first ones in domain order: deterministic
        per_entity[blueprint.core_entity] += 1
        if per_entity[blueprint.core_entity] <= ctx.config.steps.s04.target_blueprints_per_entity:
            kept.append(blueprint)
    spawn = [Spawn(stream=f"domain:{b.MCP_server_name}", kind="domain", initial="blueprinted",
                   inputs={"domain": b.MCP_server_name}, artifacts={"blueprint": b}) for b in kept]
    return S04Output(blueprints=Blueprints(blueprints=kept), spawn=spawn,
                     payload={"blueprints": len(kept), "dropped": len(designed) - len(kept)})
