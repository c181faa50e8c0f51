"""s03: the person-centric entity graph: shared Person at the centre, relationships per domain."""
from __future__ import annotations

import asyncio
import re

from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.steps.reask import ask_checked
from skiller.steps.s01_domain_expansion import DomainTopic, DomainTopics
from skiller.steps.s02_entity_extraction import EntityCatalog


class RelationAttribute(Frozen):
    name: str
    type: str
    description: str
    value_from_entity: str | None = None  # "Hospital.Appointment": a record another service keeps (Domain.Record), as s10 reads it
    range: str | None = None


class Relationship(Frozen):
    name: str
    description: str
    source_entity: str
    target_entity: str
    domain: str
    attributes: list[RelationAttribute]


class DomainRelationships(Frozen):
    role: str  # the person-type entity this domain serves
    relationships: list[Relationship]


class GraphNode(Frozen):
    id: str
    is_person: bool
    domains: list[str]


class EntityGraph(Frozen):
    nodes: list[GraphNode]
    edges: list[Relationship]
    roles: dict[str, str]  # domain -> person-type role entity

    def node_link(self) -> dict:
        """networkx node-link JSON, the reference's format."""
        return {
            "directed": True, "multigraph": True, "graph": {"centre": "Person"},
            "nodes": [n.model_dump() for n in self.nodes],
            "links": [{"source": e.source_entity, "target": e.target_entity, "key": e.name,
                       "name": e.name, "domain": e.domain, "description": e.description,
                       "attributes": [a.model_dump() for a in e.attributes]} for e in self.edges],
        }


class S03Input(Frozen):
    domains: DomainTopics
    entities: EntityCatalog


class S03Output(StepOutput):
    graph: EntityGraph


PROMPT = """Service domain: {name} - {description}
Entities of {name} (is_person marked): {entities}
Other services in this world and their entities: {others}
Name the person-type role this domain serves (one of its is_person entities other than Person) and
list its relationships. The first is `<Role>IsPerson` from the role to Person (no attributes). Then
one relationship per record the service keeps, from the role (source_entity) to a peripheral entity
(target_entity), e.g. an appointment linking a patient to a doctor: a PascalCase name, a description
and typed attributes (str, int, float, bool, date) with a `range` such as "1..6" where bounded.
Cross-service references use one format, `Domain.Record`: when an attribute holds the id of a record
another service keeps (e.g. a prescription fill naming the hospital appointment where it was written),
set its value_from_entity to that service's name and the record's relationship name, e.g.
"Hospital.Appointment". Set `domain` to "{name}" on every relationship."""

_REFERENCE = re.compile(r"^[A-Z][A-Za-z0-9]*\.[A-Za-z_][A-Za-z0-9_]*$")


def check_relationships(domain: str, entities: EntityCatalog):
    """The answer for `domain` with its domain set in code, and what is wrong with it."""
    own = {e.name: e for e in entities.entities if domain in e.domains}

    def check(answer: DomainRelationships) -> tuple[DomainRelationships, list[str]]:
        rels = [r.model_copy(update={"domain": domain}) for r in answer.relationships]
        problems = []
        role = own.get(answer.role)
        if role is None or not role.is_person or role.name == "Person":
            problems.append(f"role {answer.role} is not a person-type entity of {domain} (other than Person)")
        names = [r.name for r in rels]
        problems += [f"relationship {n} is listed twice" for n in sorted({n for n in names if names.count(n) > 1})]
        for rel in rels:
            missing = sorted({rel.source_entity, rel.target_entity} - set(own))
            if missing:
                problems.append(f"{rel.name} links {missing[0]}, which is not an entity of {domain}")
            problems += [f"{rel.name}.{a.name}: value_from_entity {a.value_from_entity!r} is not Domain.Record"
                         for a in rel.attributes if a.value_from_entity and not _REFERENCE.match(a.value_from_entity)]
        if not any(r.source_entity == answer.role and r.target_entity == "Person" for r in rels):
            problems.append(f"role {answer.role} of {domain} is not linked to Person")
        return DomainRelationships(role=answer.role, relationships=rels), problems
    return check


def _listing(entities: list) -> str:
    return ", ".join(f"{e.name}{' (person)' if e.is_person else ''}" for e in entities)


async def _relate(topic: DomainTopic, topics: list[DomainTopic], entities: EntityCatalog,
                  ctx: StepContext) -> tuple[DomainRelationships | None, list[str]]:
    names = [e.name for e in entities.entities if topic.name in e.domains]
    others = "; ".join(f"{t.name}: {_listing([e for e in entities.entities if t.name in e.domains and e.name != 'Person'])}"
                       for t in topics if t.name != topic.name) or "none"
    request = LLMRequest(
        purpose="s03.relationships", role="text",
        messages=(Message(role="user", content=PROMPT.format(
            name=topic.name, description=topic.description, others=others,
            entities=_listing([e for e in entities.entities if topic.name in e.domains]))),),
        response_model=DomainRelationships, context={"domain": topic.name, "entities": names},
    )
    return await ask_checked(request, check_relationships(topic.name, entities), ctx)


def unlink_dangling(edges: list[Relationship], roles: dict[str, str]) -> tuple[list[Relationship], list[str]]:
    """A `Domain.Record` naming a domain of this world but none of its records is cleared (and reported);
    references to services outside this world stay as information."""
    records = {(r.domain, r.name) for r in edges}
    out, unlinked = [], []
    for rel in edges:
        attrs = []
        for a in rel.attributes:
            source, _, record = (a.value_from_entity or "").partition(".")
            if source in roles and source != rel.domain and (source, record) not in records:
                unlinked.append(f"{rel.domain}.{rel.name}.{a.name} -> {a.value_from_entity}")
                a = a.model_copy(update={"value_from_entity": None})
            attrs.append(a)
        out.append(rel.model_copy(update={"attributes": attrs}))
    return out, unlinked


@step("s03", machine="world", source="entities_extracted", triggers={"build_graph": "graph_built"})
async def run(inputs: S03Input, ctx: StepContext) -> S03Output:
    """Domains dropped by s02 have no entities and are skipped; a domain whose answer stays invalid after
    one re-ask is dropped here (its reason kept); the others go on."""
    topics = [t for t in inputs.domains.domains if any(t.name in e.domains for e in inputs.entities.entities)]
    answers = await asyncio.gather(*(_relate(t, topics, inputs.entities, ctx) for t in topics))
    edges, roles, dropped = [], {}, {}
    for topic, (answer, problems) in zip(topics, answers):
        if answer is None:
            dropped[topic.name] = problems[0]
            continue
        roles[topic.name] = answer.role
        edges += answer.relationships
    if not roles:
        raise StepError("validation", f"s03: no domain gave valid relationships; first: {next(iter(dropped.items()), '')}")
    edges, unlinked = unlink_dangling(edges, roles)
    nodes = [GraphNode(id=e.name, is_person=e.is_person, domains=[d for d in e.domains if d in roles])
             for e in inputs.entities.entities if any(d in roles for d in e.domains)]
    graph = EntityGraph(nodes=nodes, edges=edges, roles=roles)
    extra = ({"dropped": dropped} if dropped else {}) | ({"unlinked": unlinked} if unlinked else {})
    return S03Output(graph=graph, payload={"nodes": len(nodes), "edges": len(edges), **extra})
