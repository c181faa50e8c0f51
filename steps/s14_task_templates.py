"""s14: task templates: tool-call paths on the tool graph with a user goal, scored by a judge; one Task machine each."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from skiller.servers.database import DatabaseSummary
from skiller.servers.task import TaskKind, content_id
from skiller.llm.interface import LLMError, LLMRequest, Message, ProviderUnavailable
from skiller.contract.placeholders import PLACEHOLDER
from skiller.steps.base import Frozen, Spawn, StepContext, StepOutput, step
from skiller.steps.prompt_text import attributes_text, database_text, rules_text, tool_effects_text, tools_text
from skiller.steps.s02_entity_extraction import EntityCatalog
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s07_policy import Policy
from skiller.steps.s08_tool_graph import ToolGraph



class PlannedCall(Frozen):
    """A call of the golden trajectory. Argument values may hold placeholders:
    `<slot.column>` (a column of the row s15 selects for `slot`), `<clock+N>` (simulation date
    plus N days) or `<out1.field>` (a field of the output of call 1)."""

    tool: str = Field(description="A tool of the service's tool list.")
    arguments: dict[str, Any] = Field(description=(
        "Argument name -> value: a literal, or a placeholder <slot.column>, <clock+N> or <outK.field>. A lone "
        "placeholder keeps the type of the value it stands for."))


class Selector(Frozen):
    """One step of the instance plan: a read-only SQL query whose rows are candidates for `slot`.
    It may use placeholders of earlier slots and `<clock+N>`."""

    slot: str = Field(description="Name of the row this query picks, e.g. `person` or `rec`; placeholders <slot.column> read it.")
    sql: str = Field(description=(
        "Read-only SELECT over the database; each row returned is a candidate. Placeholders of earlier slots and "
        "<clock+N> are replaced by SQL literals (strings come quoted): write `= <person.person_id>`, never "
        "`= '<person.person_id>'`. Preferences a re-plan may drop (ORDER BY, extra filters) go between "
        "/*relax*/ and /*end*/."))


class TemplateScores(Frozen):
    motivation_clarity: int = Field(ge=1, le=5)
    logical_coherence: int = Field(ge=1, le=5)
    completeness: int = Field(ge=1, le=5)
    naturalness: int = Field(ge=1, le=5)
    specificity: int = Field(ge=1, le=5)
    overall_score: int = Field(ge=1, le=5)


class TaskTemplate(Frozen):
    kind: TaskKind = Field(description=(
        "read: the user wants information (the golden calls only read); write: the user wants a change "
        "(at least one write call); refusal: the user asks for something a policy rule forbids."))
    trajectory: list[PlannedCall] = Field(description=(
        "The golden tool calls in order; for a refusal, the reads that establish the rule applies."))
    forbidden: PlannedCall | None = Field(None, description="Refusal only: the call the user asks for, which the policy forbids.")
    violated_rule: str | None = Field(None, description="Refusal only: the id of the rule that forbids `forbidden` (a rule of that tool).")
    instruction: str = Field(description=(
        "The user's goal in the second person ('You want to ...'), with the concrete values as placeholders "
        "until the task is instantiated."))
    reason_for_call: str = Field(description="Why the user contacts the service, in their own words (a sentence).")
    known_info: dict[str, str] = Field(description=(
        "What the user knows and can tell: label -> value, e.g. {'person id': '<person.person_id>'}. Every "
        "<slot.column> placeholder the calls' arguments use must appear here: the user has to supply it."))
    unknown_info: str = Field(description="What the user does not know (e.g. the fee, or whether the rules allow it).")
    selectors: list[Selector] = Field(description="The instance plan: one query per slot, in order.")
    communicate: list[str] = Field(default_factory=list, description=(
        "Values the assistant must tell the user (placeholders such as <out2.status>); checked as substrings of its replies."))
    domains: list[str] = Field(description="The service(s) the task uses.")
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
    entities: EntityCatalog  # the world's: what each column of this domain's tables means


class S14Output(StepOutput):
    task_templates: TaskTemplates


PROMPT = (Path(__file__).with_name("s14_task_templates.txt")).read_text()
GROUP = "This is group {group} of {groups}: give templates {first} to {last} of {count} ({size} templates)."
EARLIER = "\nThe earlier groups already hold these goals; do not repeat them:\n{earlier}"

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
    known = " ".join(t.known_info.values())
    needed = sorted({m.group(0) for c in calls for v in c.arguments.values() if isinstance(v, str)
                     for m in PLACEHOLDER.finditer(v) if m.group(1) and not m.group(1).startswith("out")})
    problems += [f"{p} is an argument the user must supply but is not in known_info" for p in needed if p not in known]
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


def template_prompt(inputs: S14Input, clock: str, min_len: int, max_len: int, group: str) -> str:
    """Everything a template needs, as text: the tools and what each does, the rules, the tables and what
    their columns mean."""
    bp = inputs.blueprint
    return PROMPT.format(
        name=inputs.domain, sector=bp.sector, description=bp.description, clock=clock, min_len=min_len,
        max_len=max_len, tools=tools_text(bp.functions), trajectories=inputs.tool_graph.valid_trajectories,
        effects=tool_effects_text(inputs.policy.markdown), rules=rules_text(inputs.policy.rules),
        tables=database_text(inputs.database_summary), group=group,
        attributes=attributes_text([e for e in inputs.entities.entities if inputs.domain in e.domains],
                                   bp.relationships))


def _numbered(problems: list[tuple[int, list[str]]]) -> str:
    return "\n".join(f"- template {i + 1}: " + "; ".join(found) for i, found in problems)


async def propose_group(inputs: S14Input, ctx: StepContext, offset: int, size: int,
                        earlier: list[TaskTemplate]) -> tuple[list[TaskTemplate], int, int]:
    """One group of templates; invalid ones are re-asked once with their problems listed.
    Returns (valid templates, how many were proposed, how many stayed invalid)."""
    cfg, bp = ctx.config.steps.s14, inputs.blueprint
    count = cfg.templates_per_domain
    group = GROUP.format(group=offset // cfg.group_size + 1, groups=-(-count // cfg.group_size), first=offset + 1,
                         last=offset + size, count=count, size=size)
    if earlier:
        group += EARLIER.format(earlier="\n".join(f"- {t.instruction}" for t in earlier))
    request = LLMRequest(
        purpose="s14.templates", role="text", response_model=TemplateBatch,
        messages=(Message(role="user", content=template_prompt(inputs, ctx.clock.isoformat(), cfg.min_length,
                                                                  cfg.max_length, group)),),
        context={"domain": inputs.domain, "count": count, "offset": offset, "size": size, "seed": ctx.config.seed,
                 "min_length": cfg.min_length, "max_length": cfg.max_length, "clock": ctx.clock.isoformat()})
    batch: TemplateBatch = await ctx.llm.ask(request)
    check = lambda t: template_problems(t, bp, inputs.policy, cfg.min_length, cfg.max_length)  # noqa: E731
    found = [(i, check(t)) for i, t in enumerate(batch.templates)]
    valid = [t for t, (_, p) in zip(batch.templates, found) if not p]
    bad = [(i, p) for i, p in found if p]
    if not bad:
        return valid, len(batch.templates), 0
    fix = request.model_copy(update={
        "messages": (*request.messages, Message(role="assistant", content=batch.model_dump_json()),
                     Message(role="user", content="These templates were rejected:\n" + _numbered(bad)
                             + f"\nGive corrected versions of only these {len(bad)} templates.")),
        "context": request.context | {"attempt": 1, "problems": [p for _, p in bad]}})
    try:
        fixed: TemplateBatch = await ctx.llm.ask(fix)
    except ProviderUnavailable:
        raise
    except LLMError:
        return valid, len(batch.templates), len(bad)
    repaired = [t for t in fixed.templates[:len(bad)] if not check(t) and t not in valid]
    return valid + repaired, len(batch.templates), len(bad) - len(repaired)


@step("s14", machine="domain", source="implemented", triggers={"write_templates": "templated"})
async def run(inputs: S14Input, ctx: StepContext) -> S14Output:
    """Templates are asked in groups (an answer that fits its output cap), each told the goals before it."""
    cfg = ctx.config.steps.s14
    valid: list[TaskTemplate] = []
    proposed = invalid = 0
    for offset in range(0, cfg.templates_per_domain, cfg.group_size):
        size = min(cfg.group_size, cfg.templates_per_domain - offset)
        group, asked, bad = await propose_group(inputs, ctx, offset, size, valid)
        valid += [t for t in group if t not in valid]
        proposed, invalid = proposed + asked, invalid + bad
    kept, low = await keep_scored(inputs.domain, valid, ctx)
    spawn = spawn_tasks(f"domain:{inputs.domain}", inputs.domain, kept)
    stats = {"proposed": proposed, "kept": len(kept), "invalid": invalid, "low_score": low,
             "kinds": {k: sum(s.template.kind == k for s in kept) for k in ("read", "write", "refusal")}}
    return S14Output(task_templates=TaskTemplates(server=inputs.domain, templates=kept, stats=stats),
                     spawn=spawn, payload=stats)
