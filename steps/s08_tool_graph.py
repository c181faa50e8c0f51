"""s08: the tool dependency graph: which tool's output feeds which tool's input."""
from __future__ import annotations

from typing import Literal

from skiller.contract.environment import table_name
from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.steps.prompt_text import tools_text
from skiller.steps.s04_blueprints import Blueprint


class ToolLink(Frozen):
    source: str
    target: str
    type: Literal["state dependency", "information flow", "storyline flow"]
    fields: list[str]  # the linking fields: source output -> target input


class ToolGraph(Frozen):
    directed: bool = True
    nodes: list[str]
    links: list[ToolLink]
    tool_preconditions: dict[str, list[str]]
    valid_trajectories: list[list[str]]

    def node_link(self) -> dict:
        return {"directed": True, "multigraph": False, "graph": {},
                "nodes": [{"id": n} for n in self.nodes],
                "links": [link.model_dump() for link in self.links],
                "tool_preconditions": self.tool_preconditions,
                "valid_trajectories": self.valid_trajectories}


class S08Input(Frozen):
    domain: str
    blueprint: Blueprint


class S08Output(StepOutput):
    tool_graph: ToolGraph


PROMPT = """For the MCP server {name}, give the tool dependency graph: nodes are the tools; a link
A -> B (type: state dependency, information flow or storyline flow) names the fields of A's output
that B takes as input. Add tool_preconditions (tools that must run before a tool) and
valid_trajectories: realistic tool sequences of 2 to 5 calls. A link's fields must be parameters
of its target tool.
Records the service keeps (a record row carries its own id, the person's person_id and the id of what it
names: its target, or the person's earlier record it names). A tool returning a record (one row, the person's
rows, the new or updated row, or a count and total of the person's rows) outputs these ids:
{records}
A record kept with lines (several items in one order) is created with all its lines in one call: its `items`
parameter is an array of lines, each an item's id and a quantity; the new record comes back with its lines
under `items`. A tool removing one line takes that line's id and returns the record with its lines and its
recomputed amount. Either outputs the record's ids listed above; the line and item ids inside `items` are not
outputs a link may name.
Tools:
{tools}"""


def _id(entity: str) -> str:
    """The id column of an entity or record (RepairOrder -> repair_order_id)."""
    return table_name(entity) + "_id"


def _named(record, records: list, blueprint: Blueprint) -> str:
    """`, naming a X (x_id)` when the record names another of the person's records (a refund naming a booking):
    the creating tool takes that record's id."""
    new = f"the new {table_name(record.name).replace('_', ' ')}"
    takes = {p for f in blueprint.functions if f.mode == "write" and f.returns == new for p in f.parameters}
    named = [r for r in records if r is not record and _id(r.name) in takes]
    return f", naming a {named[0].name} ({_id(named[0].name)})" if named else ""


def prompt(domain: str, blueprint: Blueprint) -> str:
    """The request's text: the tools with their parameters and returns, and each record's target (what a
    record tool's output carries besides its own id), or the earlier record it names."""
    records = [r for r in blueprint.relationships if r.target_entity != "Person"]
    records_text = "\n".join(f"- {r.name} ({_id(r.name)}): {r.source_entity} -> {r.target_entity} "
                             f"({_id(r.target_entity)}){_named(r, records, blueprint)}" for r in records) or "none"
    return PROMPT.format(name=domain, records=records_text, tools=tools_text(blueprint.functions))


def graph_problems(graph: ToolGraph, blueprint: Blueprint) -> list[str]:
    tools = {f.name for f in blueprint.functions}
    problems = [f"unknown node {n}" for n in graph.nodes if n not in tools]
    problems += [f"link {l.source}->{l.target} names an unknown tool" for l in graph.links
                 if l.source not in tools or l.target not in tools]
    problems += [f"trajectory {t} has an unknown tool or bad length" for t in graph.valid_trajectories
                 if not 2 <= len(t) <= 5 or set(t) - tools]
    params = {f.name: set(f.parameters) for f in blueprint.functions}
    problems += [f"link {l.source}->{l.target}: {l.target} takes no parameter {f}" for l in graph.links
                 if l.target in params for f in l.fields if f not in params[l.target]]
    return problems


@step("s08", machine="domain", source="policy_written", triggers={"build_tool_graph": "tool_graph_built"})
async def run(inputs: S08Input, ctx: StepContext) -> S08Output:
    request = LLMRequest(purpose="s08.tool_graph", role="text", response_model=ToolGraph,
                         messages=(Message(role="user", content=prompt(inputs.domain, inputs.blueprint)),),
                         context={"domain": inputs.domain})
    graph: ToolGraph = await ctx.llm.ask(request)
    problems = graph_problems(graph, inputs.blueprint)
    if problems:
        raise StepError("validation", f"s08: tool graph of {inputs.domain}: {problems[0]}")
    return S08Output(tool_graph=graph, payload={"links": len(graph.links), "trajectories": len(graph.valid_trajectories)})
