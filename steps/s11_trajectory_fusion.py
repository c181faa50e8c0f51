"""s11: trajectory fusion: interlock validated single-domain trajectories into one multi-hop storyline."""
from __future__ import annotations

import json

from skiller.servers.database import DatabaseSummary
from skiller.servers.fusion import namespace_of
from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, MachineIndex, StepContext, StepOutput, step
from skiller.contract.placeholders import PLACEHOLDER
from skiller.contract.policy import parse_references
from skiller.steps.prompt_text import attributes_text, database_text, rules_text, tool_effects_text, tools_text
from skiller.steps.s02_entity_extraction import EntityCatalog
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s05_tool_lists import ToolList
from skiller.steps.s07_policy import Policy
from skiller.steps.s10_combinations import VALIDATED, Combination
from skiller.steps.s14_task_templates import TaskTemplate, TaskTemplates, TemplateBatch


class FusedTemplates(Frozen):
    name: str
    members: list[str]
    templates: list[TaskTemplate]
    rejected: dict[str, int]


class S11Input(Frozen):
    name: str
    combination: Combination
    machines: MachineIndex
    members_task_templates: dict[str, TaskTemplates]
    members_tool_list: dict[str, ToolList]
    members_database_summary: dict[str, DatabaseSummary]
    members_blueprint: dict[str, Blueprint]
    members_policy: dict[str, Policy]
    entities: EntityCatalog


class S11Output(StepOutput):
    fused_templates: FusedTemplates | None = None


PROMPT = """Fuse these validated single-domain tasks of {members} into {count} cross-domain task
templates that a person would need in one storyline. Interlock them: an output of a call in one
service must be an argument of a call in the next (use <outK.field>, K counted over the fused
trajectory), not a concatenation. Hand-overs: {links}. In the fused environment each tool is
called with its service prefix ({prefixes}) and each table lives under the same prefix, except the
shared `person`. Member tables: {tables}. Today is {clock}. Rename selector slots so they stay unique.
Where a member takes a record of another (a claim naming an appointment), pass the record's id and the
values the hand-over needs (its amount, its date) from the call that produced it, and write some refusals:
the user asks for a hand-over a bridge rule forbids (give the forbidden call and the rule id).
What each member is, does and keeps (its tools, what they do, its rules, the rules it applies to records
of other services, its tables and what their columns mean):
{facts}
Segments: {segments}"""

MEMBER = """## Member {name} ({sector}: {description})
Tools (mode, description, parameters with types, enums and ranges, what each returns):
{tools}
What each tool does, and the refusals that are not numbered rules (from the policy):
{effects}
Policy rules (id on tool (kind, machine-checkable fields): statement):
{rules}
Rules on records of other services (machine-checkable, from the policy):
{references}
Database (tables, columns with types and values or ranges, sample ids):
{tables}
What the columns mean (Entity.column (type): meaning; instructions name values by these meanings):
{attributes}
## End of {name}"""


def member_facts(inputs: S11Input, member: str) -> str:
    """One member as s14 states a domain, plus the rules its policy applies to other services' records (the
    bridge rules its hand-overs follow, which refusals break)."""
    bp, policy = inputs.members_blueprint[member], inputs.members_policy[member]
    references = "\n".join(f"- {json.dumps(r, sort_keys=True)}" for r in parse_references(policy.markdown))
    return MEMBER.format(
        name=member, sector=bp.sector, description=bp.description, tools=tools_text(bp.functions),
        effects=tool_effects_text(policy.markdown), rules=rules_text(policy.rules), references=references or "none",
        tables=database_text(inputs.members_database_summary[member]),
        attributes=attributes_text([e for e in inputs.entities.entities if member in e.domains], bp.relationships))


def validated_segments(inputs: S11Input) -> dict[str, list[TaskTemplate]]:
    out: dict[str, list[TaskTemplate]] = {m: [] for m in inputs.combination.members}
    for view in inputs.machines.of_kind("task").values():
        d = view.inputs.get("domain")
        if d in out and view.state in VALIDATED and view.inputs.get("parent") == f"domain:{d}":
            template = inputs.members_task_templates[d].templates[view.inputs["index"]].template
            if template.kind != "refusal":
                out[d].append(template)
    return out


def fuse_prompt(inputs: S11Input, segments: dict[str, list[TaskTemplate]], count: int, clock: str) -> str:
    """The members, hand-overs, prefixes and tables, what each member is, does and keeps, and the segments."""
    combo = inputs.combination
    return PROMPT.format(
        members=", ".join(combo.members), count=count,
        links="; ".join(l.model_dump_json(exclude_none=True) for l in combo.links),
        prefixes=", ".join(f"{m}: {namespace_of(m)}" for m in combo.members), clock=clock,
        tables="; ".join(f"{m}: {', '.join(t.name for t in inputs.members_database_summary[m].tables)}"
                         for m in combo.members),
        facts="\n".join(member_facts(inputs, m) for m in combo.members),
        segments={m: [s.model_dump(mode="json") for s in segs] for m, segs in segments.items()})


def fusion_problems(t: TaskTemplate, tools: dict[str, str]) -> list[str]:
    """A fused template must call known prefixed tools of at least two members and pass a value across."""
    calls = t.trajectory + ([t.forbidden] if t.forbidden else [])  # a refusal hands over into its forbidden call
    problems = [f"unknown tool {c.tool}" for c in calls if c.tool not in tools]
    if problems:
        return problems
    owner = [tools[c.tool] for c in calls]
    if len(set(owner)) < 2:
        problems.append("calls tools of one member only")
    handed = any(m.group(1) and m.group(1).startswith("out") and m.group(1)[3:].isdigit()
                 and 0 < int(m.group(1)[3:]) <= i and owner[int(m.group(1)[3:]) - 1] != owner[i]
                 for i, c in enumerate(calls) for v in c.arguments.values() if isinstance(v, str)
                 for m in PLACEHOLDER.finditer(v))
    if not handed:
        problems.append("no value produced by one member is passed into another")
    return problems


@step("s11", machine="fusion", source="selected",
      triggers={"fuse_trajectories": "trajectories_fused", "give_up": "failed"})
async def run(inputs: S11Input, ctx: StepContext) -> S11Output:
    combo = inputs.combination
    segments = validated_segments(inputs)
    prefixes = {m: namespace_of(m) for m in combo.members}
    tools = {prefixes[m] + t["name"]: m for m in combo.members for t in inputs.members_tool_list[m].tools}
    count = ctx.config.fusion.templates_per_fusion
    request = LLMRequest(
        purpose="s11.fuse", role="text", response_model=TemplateBatch,
        messages=(Message(role="user", content=fuse_prompt(inputs, segments, count, ctx.clock.isoformat())),),
        context={"combination": combo.model_dump(mode="json"), "count": count,
                 "segments": {m: [s.model_dump(mode="json") for s in segs] for m, segs in segments.items()},
                 "tables": {m: [t.name for t in inputs.members_database_summary[m].tables] for m in combo.members},
                 "seed": ctx.config.seed, "clock": ctx.clock.isoformat()})
    batch: TemplateBatch = await ctx.llm.ask(request)
    kept, rejected = [], {}
    for t in batch.templates:
        problems = fusion_problems(t, tools)
        if problems:
            rejected[problems[0]] = rejected.get(problems[0], 0) + 1
        else:
            kept.append(t.model_copy(update={"domains": list(combo.members), "is_cross_domain": True}))
    if not kept:
        return S11Output(trigger="give_up", payload={"reason": "no_fused_trajectory", "rejected": rejected})
    fused = FusedTemplates(name=inputs.name, members=list(combo.members), templates=kept, rejected=rejected)
    return S11Output(fused_templates=fused, payload={"templates": len(kept), "rejected": rejected})
