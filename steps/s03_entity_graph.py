"""s03: the person-centric entity graph: shared Person at the centre, relationships per domain."""
from __future__ import annotations

import asyncio

from skiller.llm.interface import LLMRequest, Message
from steps.base import Frozen, StepContext, StepError, StepOutput, step
from steps.s01_domain_expansion import DomainTopic, DomainTopics
from steps.s02_entity_extraction import EntityCatalog


class RelationAttribute(Frozen):
    name: str
    type: str
    description: str
    value_from_entity: str | None = None  # "Doctor.consultation_fee" when copied from an entity
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
Entities: {entities}
Name the person-type role this domain serves and list its relationships: the role is a Person
(relationship `is_person`), and each record links the role to a peripheral entity, with typed
attributes (say when a value is copied from an entity, as Entity.attribute)."""


async def _relate(topic: DomainTopic, entities: EntityCatalog, ctx: StepContext) -> DomainRelationships:
    names = [e.name for e in entities.entities if topic.name in e.domains]
    request = LLMRequest(
        purpose="s03.relationships", role="text",
        messages=(Message(role="user", content=PROMPT.format(
            name=topic.name, description=topic.description, entities=", ".join(names))),),
        response_model=DomainRelationships, context={"domain": topic.name, "entities": names},
    )
    return await ctx.llm.ask(request)


@step("s03", machine="world", source="entities_extracted", triggers={"build_graph": "graph_built"})
async def run(inputs: S03Input, ctx: StepContext) -> S03Output:
    answers = await asyncio.gather(*(_relate(t, inputs.entities, ctx) for t in inputs.domains.domains))
    known = {e.name for e in inputs.entities.entities}
    edges, roles = [], {}
    for topic, answer in zip(inputs.domains.domains, answers):
        roles[topic.name] = answer.role
        for rel in answer.relationships:
            missing = {rel.source_entity, rel.target_entity} - known
            if missing:
                raise StepError("validation", f"s03: {topic.name}.{rel.name} links unknown entity {sorted(missing)[0]}")
            edges.append(rel)
        if not any(r.source_entity == answer.role and r.target_entity == "Person" for r in answer.relationships):
            raise StepError("validation", f"s03: role {answer.role} of {topic.name} is not linked to Person")
    nodes = [GraphNode(id=e.name, is_person=e.is_person, domains=e.domains) for e in inputs.entities.entities]
    graph = EntityGraph(nodes=nodes, edges=edges, roles=roles)
    return S03Output(graph=graph, payload={"nodes": len(nodes), "edges": len(edges)})
