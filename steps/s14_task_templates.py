"""s14: task templates: tool-call paths on the tool graph with a user goal, scored by a judge; one Task machine each."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from servers.database import DatabaseSummary
from servers.task import TaskKind, content_id
from skiller.llm.interface import LLMError, LLMRequest, Message
from steps.placeholders import PLACEHOLDER
from steps.base import Frozen, Spawn, StepContext, StepOutput, step
from steps.s04_blueprints import Blueprint
from steps.s07_policy import Policy
from steps.s08_tool_graph import ToolGraph



class PlannedCall(Frozen):
    """A call of the golden trajectory. Argument values may hold placeholders:
    `<slot.column>` (a column of the row s15 selects for `slot`), `<clock+N>` (simulation date
    plus N days) or `<out1.field>` (a field of the output of call 1)."""

    tool: str
    arguments: dict[str, Any]


class Selector(Frozen):
    """One step of the instance plan: a read-only SQL query whose rows are candidates for `slot`.
    It may use placeholders of earlier slots and `<clock+N>`."""

    slot: str
    sql: str


class TemplateScores(Frozen):
    motivation_clarity: int = Field(ge=1, le=5)
    logical_coherence: int = Field(ge=1, le=5)
    completeness: int = Field(ge=1, le=5)
    naturalness: int = Field(ge=1, le=5)
    specificity: int = Field(ge=1, le=5)
    overall_score: int = Field(ge=1, le=5)


class TaskTemplate(Frozen):
    kind: TaskKind
    trajectory: list[PlannedCall]  # golden actions (for a refusal: the reads that establish it)
    forbidden: PlannedCall | None = None  # refusal: what the user asks for, which the policy forbids
    violated_rule: str | None = None
    instruction: str  # the user's goal; placeholders until s17
    reason_for_call: str
    known_info: dict[str, str]  # label -> placeholder the user knows, e.g. {"person id": "<person.person_id>"}
    unknown_info: str
    selectors: list[Selector]
    communicate: list[str] = Field(default_factory=list)  # placeholders the assistant must tell the user
    domains: list[str]
    is_cross_domain: bool = False


class TemplateBatch(Frozen):
    templates: list[TaskTemplate]


class ScoredTemplate(Frozen):
    template: TaskTemplate
    scores: TemplateScores
    template_id: str


class TaskTemplates(Frozen):
    server: str
    templates: list[ScoredTemplate]
    stats: dict[str, Any]


class S14Input(Frozen):
    domain: str
    blueprint: Blueprint
    policy: Policy
    tool_graph: ToolGraph
    database_summary: DatabaseSummary


class S14Output(StepOutput):
    task_templates: TaskTemplates


PROMPT = """Write task templates for the {name} service. Each template is a realistic user goal
solved by a golden trajectory of tool calls (between {min_len} and {max_len} calls, following the
tool graph's valid trajectories), with reads and writes, and some refusal tasks where the user
asks for something a policy rule forbids (give the forbidden call and the rule id). Use
placeholders: <slot.column> for values from the database, chosen by `selectors` (read-only SQL
over the tables below, one per slot), <clock+N> for dates, <outK.field> for outputs of call K.
Tools: {tools}
Tool graph trajectories: {trajectories}
Policy rules: {rules}
Database: {tables}
Give {count} templates."""

JUDGE = """Score this task template from 1 to 5 on motivation_clarity, logical_coherence,
completeness, naturalness and specificity, and give an overall_score.
Template: {template}"""


def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in PLACEHOLDER.finditer(text) if m.group(1)}


def template_problems(t: TaskTemplate, blueprint: Blueprint, policy: Policy, min_len: int, max_len: int) -> list[str]:
    tools = {f.name: f for f in blueprint.functions}
    calls = t.trajectory + ([t.forbidden] if t.forbidden else [])
    problems = [f"unknown tool {c.tool}" for c in calls if c.tool not in tools]
    problems += [f"{c.tool} has no parameter {a}" for c in calls if c.tool in tools for a in c.arguments
                 if a not in tools[c.tool].parameters]
    if not min_len <= len(t.trajectory) <= max_len:
        problems.append(f"trajectory length {len(t.trajectory)} outside {min_len}..{max_len}")
    slots = {s.slot for s in t.selectors}
    used = placeholders(" ".join(str(v) for c in calls for v in c.arguments.values()) + " ".join(t.known_info.values()))
    problems += [f"placeholder slot {s} has no selector" for s in sorted(used - slots) if not s.startswith("out")]
    if t.kind == "refusal":
        rules = {r.id: r for r in policy.rules}
        if t.forbidden is None or t.violated_rule not in rules:
            problems.append("refusal without a forbidden call and a known rule")
        elif rules[t.violated_rule].tool != t.forbidden.tool:
            problems.append(f"rule {t.violated_rule} does not govern {t.forbidden.tool}")
    if t.kind == "write" and not any(tools[c.tool].mode == "write" for c in t.trajectory if c.tool in tools):
        problems.append("write task without a write call")
    return problems


async def judge(t: TaskTemplate, ctx: StepContext) -> TemplateScores:
    """A malformed or failed verdict is a low score, never a crash (and never a pass)."""
    request = LLMRequest(purpose="s14.judge", role="text", response_model=TemplateScores,
                         messages=(Message(role="user", content=JUDGE.format(template=t.model_dump_json())),),
                         context={"template": t.model_dump(mode="json")})
    try:
        return await ctx.llm.ask(request)
    except LLMError:
        return TemplateScores(motivation_clarity=1, logical_coherence=1, completeness=1, naturalness=1,
                              specificity=1, overall_score=1)


async def keep_scored(name: str, templates: list[TaskTemplate], ctx: StepContext) -> tuple[list[ScoredTemplate], int]:
    """Judge each template; keep those at or above the threshold."""
    kept, low = [], 0
    for t in templates:
        scores = await judge(t, ctx)
        if scores.overall_score < ctx.config.steps.s14.min_score:
            low += 1
        else:
            kept.append(ScoredTemplate(template=t, scores=scores, template_id=content_id([name, t.model_dump()])))
    return kept, low


def spawn_tasks(parent: str, name: str, kept: list[ScoredTemplate]) -> list[Spawn]:
    return [Spawn(stream=f"task:{name}/{i:04d}", kind="task", initial="templated",
                  inputs={"parent": parent, "domain": name, "index": i}, artifacts={"template": s})
            for i, s in enumerate(kept)]


@step("s14", machine="domain", source="implemented", triggers={"write_templates": "templated"})
async def run(inputs: S14Input, ctx: StepContext) -> S14Output:
    cfg = ctx.config.steps.s14
    bp = inputs.blueprint
    tools = "; ".join(f"{f.name}({', '.join(f.parameters)}) [{f.mode}]" for f in bp.functions)
    request = LLMRequest(
        purpose="s14.templates", role="text", response_model=TemplateBatch,
        messages=(Message(role="user", content=PROMPT.format(
            name=inputs.domain, min_len=cfg.min_length, max_len=cfg.max_length, tools=tools,
            trajectories=inputs.tool_graph.valid_trajectories,
            rules="; ".join(f"{r.id} ({r.tool}): {r.statement}" for r in inputs.policy.rules),
            tables="; ".join(f"{t.name}({', '.join(c.name for c in t.columns)})" for t in inputs.database_summary.tables), count=cfg.templates_per_domain)),),
        context={"domain": inputs.domain, "count": cfg.templates_per_domain, "seed": ctx.config.seed,
                 "min_length": cfg.min_length, "max_length": cfg.max_length, "clock": ctx.clock.isoformat()})
    batch: TemplateBatch = await ctx.llm.ask(request)
    valid = [t for t in batch.templates if not template_problems(t, bp, inputs.policy, cfg.min_length, cfg.max_length)]
    kept, low = await keep_scored(inputs.domain, valid, ctx)
    dropped = {"invalid": len(batch.templates) - len(valid), "low_score": low}
    spawn = spawn_tasks(f"domain:{inputs.domain}", inputs.domain, kept)
    stats = {"proposed": len(batch.templates), "kept": len(kept), **dropped,
             "kinds": {k: sum(s.template.kind == k for s in kept) for k in ("read", "write", "refusal")}}
    return S14Output(task_templates=TaskTemplates(server=inputs.domain, templates=kept, stats=stats),
                     spawn=spawn, payload=stats)

