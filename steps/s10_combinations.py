"""s10: cross-domain combinations: candidates sharing entities, pruned by single-domain feasibility before any
LLM cost, ranked by semantic fit; one Fusion machine each."""
from __future__ import annotations

import asyncio
from itertools import combinations
from typing import Literal

from pydantic import Field

from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, MachineIndex, Spawn, StepContext, StepOutput, step
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s14_task_templates import TaskTemplates

VALIDATED = {"validated", "instantiated", "rolled_out", "evaluated"}
UNSETTLED = {"templated", "instances_selected"}  # task states s10 waits out


class Link(Frozen):
    """How member `source` hands over to `target`: the shared person, or a record `target` references."""

    source: str
    target: str
    kind: Literal["person", "reference"]
    record: str | None = None  # e.g. "Appointment" (of source)
    field: str | None = None  # e.g. "appointment_ref" (a create argument of target)
    tool: str | None = None  # the target tool taking `field`


class Fit(Frozen):
    score: int = Field(ge=1, le=5)
    rationale: str


class Combination(Frozen):
    name: str  # "Hospital_HealthInsurance": members joined by '_' (the reference's convention)
    members: list[str]
    links: list[Link]
    shared_entities: list[str]
    fit: Fit | None = None


class Pruned(Frozen):
    name: str
    reason: str


class Combinations(Frozen):
    selected: list[Combination]
    pruned: list[Pruned]
    considered: int


class S10Input(Frozen):
    machines: MachineIndex
    members_blueprint: dict[str, Blueprint]
    members_task_templates: dict[str, TaskTemplates]


class S10Output(StepOutput):
    combinations: Combinations


def _settled(view, config, proj) -> bool:
    """Combine only once every domain is done and every single-domain task has been validated or rejected."""
    if not config.fusion.enabled:
        return False
    domains = proj.count("domain")
    return bool(domains) and proj.count("domain", ("templated", "failed")) == domains and not proj.count(
        "task", UNSETTLED, parent="domain")


def reference_links(blueprints: dict[str, Blueprint]) -> list[Link]:
    """Record references between implemented domains (a relationship attribute valued from another domain)."""
    links = []
    for target, bp in sorted(blueprints.items()):
        for rel in bp.relationships:
            for attr in rel.attributes:
                ref = attr.value_from_entity or ""
                source, _, record = ref.partition(".")
                if source in blueprints and source != target and record:
                    tool = next((f.name for f in bp.functions if f.mode == "write" and attr.name in f.parameters), None)
                    if tool:
                        links.append(Link(source=source, target=target, kind="reference", record=record,
                                          field=attr.name, tool=tool))
    return links


def candidates(blueprints: dict[str, Blueprint], max_domains: int, min_shared: int) -> list[Combination]:
    """Pairs (joined by a reference, else by the shared Person) and, when allowed, triples whose members are
    joined by a chain of references (A -> B -> C) or one record handed to two services (A -> B, A -> C)."""
    refs = reference_links(blueprints)
    by_pair = {(l.source, l.target): l for l in refs}
    out = []
    for a, b in combinations(sorted(blueprints), 2):
        link = by_pair.get((a, b)) or by_pair.get((b, a))
        if link is not None:
            out.append(Combination(name=f"{link.source}_{link.target}", members=[link.source, link.target],
                                   links=[link], shared_entities=["Person", f"{link.source}.{link.record}"]))
        elif min_shared <= 1:
            out.append(Combination(name=f"{a}_{b}", members=[a, b], shared_entities=["Person"],
                                   links=[Link(source=a, target=b, kind="person")]))
    if max_domains >= 3:
        seen = set()
        for first in refs:
            for second in refs:
                if first == second or second.source not in (first.source, first.target):
                    continue
                if second.target in (first.source, first.target):
                    continue
                members = [first.source, first.target, second.target]
                key = frozenset(members)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Combination(name="_".join(members), members=members, links=[first, second],
                                       shared_entities=sorted({"Person", f"{first.source}.{first.record}",
                                                               f"{second.source}.{second.record}"})))
    return sorted(out, key=lambda c: c.name)


def spread(ranked: list[Combination], count: int, draw: dict[str, float]) -> list[Combination]:
    """Take `count` combinations, best fit first; within a fit, the one whose members have been used least
    (then the seeded draw), so every selected domain appears in a similar number of fusions; then give up the
    latest picks of any domain in more than twice the fusions of the least used one."""
    left, picked, used = list(ranked), [], {}
    while left and len(picked) < count:
        best = min(left, key=lambda c: (-c.fit.score, max(used.get(m, 0) for m in c.members),
                                        sum(used.get(m, 0) for m in c.members), draw[c.name]))
        left.remove(best)
        picked.append(best)
        for m in best.members:
            used[m] = used.get(m, 0) + 1
    while used and max(used.values()) > 2 * min(used.values()):  # drop the latest pick of the busiest domains
        low = min(used.values())
        drop = next((c for c in reversed(picked) if max(used[m] for m in c.members) > 2 * low
                     and all(used[m] > low for m in c.members)), None)
        if drop is None:
            break
        picked.remove(drop)
        for m in drop.members:
            used[m] -= 1
    return picked


def validated_tools(machines: MachineIndex, templates: dict[str, TaskTemplates]) -> dict[str, set[str]]:
    """Per domain, the tools of its templates whose tasks validated."""
    out: dict[str, set[str]] = {d: set() for d in templates}
    for m in machines.of_kind("task").values():
        d = m.inputs.get("domain")
        if m.state in VALIDATED and m.inputs.get("parent") == f"domain:{d}" and d in templates:
            out[d] |= {c.tool for c in templates[d].templates[m.inputs["index"]].template.trajectory}
    return out


def infeasible(combo: Combination, tools: dict[str, set[str]], blueprints: dict[str, Blueprint]) -> str | None:
    """Why a segment of the combination is not valid in its own domain (None when every one is)."""
    for link in combo.links:
        if not tools.get(link.source):
            return f"{link.source} has no validated task"
        writes = {f.name for f in blueprints[link.target].functions if f.mode == "write"}
        if link.kind == "reference" and link.tool not in tools.get(link.target, set()):
            return f"{link.target}.{link.tool} (taking {link.field}) never validated"
        if link.kind == "person" and not tools.get(link.target, set()) & writes:
            return f"{link.target} has no validated write task"
    return None


FIT = """Would a person plausibly use {members} in one storyline, handing over {shared} from one service
to the next ({links})? Score the semantic fit from 1 (unrelated: they share only the person) to 5 (a natural
journey where a record of one service is needed by the next) with a one-line rationale."""


def fit_prompt(combo: Combination, blueprints: dict[str, Blueprint]) -> str:
    """The members with their sectors and descriptions, and each hand-over in words."""
    return FIT.format(members=", ".join(f"{m} ({blueprints[m].sector}: {blueprints[m].description})" for m in combo.members),
                      shared=", ".join(combo.shared_entities),
                      links="; ".join(f"{l.target} takes {l.source}'s {l.record} as {l.field} ({l.kind})" if l.record
                                      else f"{l.source} and {l.target} serve the same person" for l in combo.links))


async def _fit(combo: Combination, blueprints: dict[str, Blueprint], ctx: StepContext) -> Fit:
    request = LLMRequest(purpose="s10.fit", role="text", response_model=Fit,
                         messages=(Message(role="user", content=fit_prompt(combo, blueprints)),),
                         context={"combination": combo.model_dump(mode="json"),
                                  "sectors": [blueprints[m].sector for m in combo.members]})
    return await ctx.llm.ask(request)


@step("s10", machine="world", source="blueprinted", triggers={"combine_domains": "combined"}, ready=_settled,
      ready_scope="workspace")
async def run(inputs: S10Input, ctx: StepContext) -> S10Output:
    cfg = ctx.config.fusion
    implemented = {m.inputs["domain"] for m in inputs.machines.of_kind("domain").values() if m.state == "templated"}
    blueprints = {d: bp for d, bp in inputs.members_blueprint.items() if d in implemented}
    tools = validated_tools(inputs.machines, {d: t for d, t in inputs.members_task_templates.items() if d in implemented})
    considered = candidates(blueprints, cfg.max_domains, cfg.min_shared_entities)
    feasible, pruned = [], []
    for combo in considered:  # pruning first: an infeasible combination costs no LLM call
        reason = infeasible(combo, tools, blueprints)
        (pruned.append(Pruned(name=combo.name, reason=reason)) if reason else feasible.append(combo))
    fits = await asyncio.gather(*(_fit(c, blueprints, ctx) for c in feasible))
    ranked = [c.model_copy(update={"fit": f}) for c, f in zip(feasible, fits) if f.score >= cfg.min_fit]
    below = [Pruned(name=c.name, reason=f"semantic fit {f.score} < {cfg.min_fit}: {f.rationale}")
             for c, f in zip(feasible, fits) if f.score < cfg.min_fit]
    draw = {c.name: ctx.rng.random() for c in considered}  # seeded tie-break, drawn for every candidate
    selected = spread(ranked, cfg.num_combinations, draw)
    spawn = [Spawn(stream="fusion:" + "+".join(c.members), kind="fusion", initial="selected",
                   inputs={"members": c.members, "name": c.name, "domain": c.name}, artifacts={"combination": c})
             for c in selected]
    pruned += below
    return S10Output(combinations=Combinations(selected=selected, pruned=pruned, considered=len(considered)),
                     spawn=spawn, payload={"considered": len(considered), "pruned": len(pruned),
                                           "selected": len(selected)})
