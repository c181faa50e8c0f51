"""s04: one MCP server blueprint per domain: core entity, peripherals, relationships, functions."""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Literal

from pydantic import ConfigDict, Field

from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, Spawn, StepContext, StepError, StepOutput, step
from skiller.steps.reask import ask_checked
from skiller.steps.s01_domain_expansion import DomainTopic, DomainTopics
from skiller.steps.s02_entity_extraction import EntityCatalog
from skiller.steps.s03_entity_graph import EntityGraph, Relationship


class Parameter(Frozen):
    type: Literal["string", "integer", "number", "boolean", "array"]
    description: str
    required: bool = True
    default: Any = None
    range: str | None = None  # human-readable bound, e.g. "1..90 days ahead"
    enum: list[str | int | float] | None = None
    format: str | None = None  # JSON Schema format, e.g. "date"
    # an array (line items): the JSON Schema of one element and the bounds on their count, named as in JSON Schema
    items: dict[str, Any] | None = None
    minItems: int | None = None  # noqa: N815
    maxItems: int | None = None  # noqa: N815


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
    entities: EntityCatalog
    graph: EntityGraph


class S04Output(StepOutput):
    blueprints: Blueprints


PROMPT = """Design the MCP server for the service domain {name} ({sector}): {description}
Core (person-type) entity: {role}, a Person (table `person`: person_id, first_name, last_name,
email, phone, date_of_birth, city).
Peripheral entities and their attributes: {peripherals}
Relationships (records the service keeps, with their attributes): {relationships}
Set MCP_server_name to "{name}", sector to "{sector}" and core_entity to "{role}"; the relationships
above are kept as they are. Give at most three peripheral entities (from those above) and at least
ten functions covering lookups (the person's profile by person_id; each record and entity by its
id), searches, listing a person's records, and writes (creation, status changes such as
cancellation, updates, payments). Each function has a snake_case name, a description, typed
parameters (string, integer, number, boolean; say which are required, give enums for status-like
values, ranges and `format: date` for dates; ids are strings such as "P-0001" for person_id), what
it returns (e.g. "the updated appointment") and whether it reads or writes (mode)."""


def _attributes(attrs: list) -> str:
    return ", ".join(f"{a.name}: {a.type}" + (f" [{a.range}]" if getattr(a, "range", None) else "")
                     + (f" (from {a.value_from_entity})" if getattr(a, "value_from_entity", None) else "")
                     for a in attrs)


def check_blueprint(topic: DomainTopic, role: str, rels: list[Relationship], entities: set[str]):
    """The blueprint with the fields code owns set (name, sector, core entity, relationships), and what is wrong with it."""
    def check(bp: Blueprint) -> tuple[Blueprint, list[str]]:
        bp = bp.model_copy(update={"MCP_server_name": topic.name, "sector": topic.sector, "core_entity": role,
                                   "relationships": rels})
        names = [f.name for f in bp.functions]
        problems = [f"function {n} is defined twice" for n in sorted({n for n in names if names.count(n) > 1})]
        problems += [f"peripheral entity {e} is not an entity of {topic.name}" for e in bp.peripheral_entities
                     if e not in entities]
        modes = {f.mode for f in bp.functions}
        problems += [f"no {m} function" for m in ("read", "write") if m not in modes]
        return bp, problems
    return check


async def _design(topic: DomainTopic, graph: EntityGraph, entities: EntityCatalog,
                  ctx: StepContext) -> tuple[Blueprint | None, list[str]]:
    role = graph.roles[topic.name]
    rels = [r for r in graph.edges if r.domain == topic.name]
    own = [e for e in entities.entities if topic.name in e.domains and not e.is_person]
    request = LLMRequest(
        purpose="s04.blueprint", role="text",
        messages=(Message(role="user", content=PROMPT.format(
            name=topic.name, sector=topic.sector, description=topic.description, role=role,
            peripherals="; ".join(f"{e.name} ({_attributes(e.attributes)})" for e in own) or "none",
            relationships="; ".join(f"{r.name}: {r.source_entity} -> {r.target_entity} ({_attributes(r.attributes)})"
                                    for r in rels))),),
        response_model=Blueprint,
        context={"domain": topic.name, "role": role},
    )
    return await ask_checked(request, check_blueprint(topic, role, rels, {e.name for e in own}), ctx)


@step("s04", machine="world", source="graph_built", triggers={"design_blueprints": "blueprinted"})
async def run(inputs: S04Input, ctx: StepContext) -> S04Output:
    """A domain whose blueprint stays invalid after one re-ask is dropped (its reason kept); the others go on."""
    topics = [t for t in inputs.domains.domains if t.name in inputs.graph.roles]  # s02/s03 may have dropped some
    designed = await asyncio.gather(*(_design(t, inputs.graph, inputs.entities, ctx) for t in topics))
    dropped = {t.name: problems[0] for t, (bp, problems) in zip(topics, designed) if bp is None}
    per_entity: Counter[str] = Counter()
    kept, capped = [], 0
    # Seeded variants serve their base's core entity by design: each distinct domain brings its own.
    cap = ctx.config.steps.s04.target_blueprints_per_entity * (1 + ctx.config.steps.s01.variants_per_domain)
    for blueprint, _ in designed:  # the cap keeps the first ones in domain order: deterministic
        if blueprint is None:
            continue
        per_entity[blueprint.core_entity] += 1
        if per_entity[blueprint.core_entity] <= cap:
            kept.append(blueprint)
        else:
            capped += 1
    if not kept:
        raise StepError("validation", f"s04: no domain gave a valid blueprint; first: {next(iter(dropped.items()), '')}")
    spawn = [Spawn(stream=f"domain:{b.MCP_server_name}", kind="domain", initial="blueprinted",
                   inputs={"domain": b.MCP_server_name}, artifacts={"blueprint": b}) for b in kept]
    return S04Output(blueprints=Blueprints(blueprints=kept), spawn=spawn,
                     payload={"blueprints": len(kept), "dropped": capped, **({"invalid": dropped} if dropped else {})})
