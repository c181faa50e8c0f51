"""Builtin answers for the environment steps (s06-s09): database program, policy, tool graph, implementation."""
from __future__ import annotations

from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.model import CatalogRecord
from skiller.world.builtin.codegen import implementation_module
from skiller.world.builtin.dbgen import database_invariants, database_program
from skiller.world.builtin.policygen import policy_markdown
from skiller.world.builtin.registry import answers
from skiller.world.builtin.codegen import READ_KINDS, find, id_column, tool_parameters
from skiller.world.builtin.testgen import implementation_tests
from skiller.llm.interface import LLMRequest


@answers("s06.database_code")
@answers("s06.database_repair")
def database_code(request: LLMRequest) -> dict:
    domain = get_domain(request.context["domain"])
    return {"code": database_program(domain, load_catalog()),
            "invariants": database_invariants(domain).model_dump(mode="json")}


@answers("s07.policy")
def policy(request: LLMRequest) -> dict:
    return {"markdown": policy_markdown(get_domain(request.context["domain"]))}


@answers("s09.implementation")
@answers("s09.repair")
def implementation(request: LLMRequest) -> dict:
    domain = get_domain(request.context["domain"])
    clock = request.context["clock"]
    return {"module": implementation_module(domain, clock), "tests": implementation_tests(domain, clock)}


def _outputs(domain, tool) -> set[str]:
    """Id fields a tool's output carries (what later calls can take as input)."""
    if tool.kind == "get_profile":
        return {"person_id"}
    item = find(domain, tool.entity)
    fields = {id_column(tool.entity)}
    if isinstance(item, CatalogRecord):
        fields |= {"person_id", id_column(item.target)}
    return fields


def tool_mode(tool) -> str:
    return "read" if tool.kind in READ_KINDS else "write"


@answers("s08.tool_graph")
def tool_graph(request: LLMRequest) -> dict:
    """Links where an id in one tool's output is a parameter of another; trajectories follow them."""
    d = get_domain(request.context["domain"])
    params = {t.name: set(tool_parameters(d, t)["properties"]) for t in d.tools}
    links, pre = [], {}
    for a in d.tools:
        for b in d.tools:
            if a.name == b.name:
                continue
            shared = sorted(_outputs(d, a) & params[b.name])
            if not shared:
                continue
            both_write = tool_mode(a) == "write" and tool_mode(b) == "write" and a.entity == b.entity
            kind = "state dependency" if both_write else "information flow"
            links.append({"source": a.name, "target": b.name, "type": kind, "fields": shared})
            if tool_mode(a) == "read" and tool_mode(b) == "write" and shared != ["person_id"]:
                pre.setdefault(b.name, []).append(a.name)
    trajectories = []
    reads = [t for t in d.tools if tool_mode(t) == "read"]
    for b in d.tools:
        if tool_mode(b) != "write":
            continue
        feeders = [a.name for a in reads if set(_outputs(d, a)) & params[b.name] - {"person_id"}]
        profile = [t.name for t in reads if t.kind == "get_profile"][:1]
        for f in feeders[:2]:
            trajectories.append([*profile, f, b.name][-5:])
    return {"nodes": [t.name for t in d.tools], "links": links, "tool_preconditions": pre,
            "valid_trajectories": [t for t in trajectories if 2 <= len(t) <= 5]}
