"""s17: instantiation: a persona, the user scenario, the first query and the evaluation criteria of a validated task."""
from __future__ import annotations

import json
import re

from skiller.contract.dialogue import value_text
from skiller.servers.fusion import BridgeRule, namespace_of
from skiller.servers.query import QueryError, select, snapshot
from skiller.servers.task import (
    EnvironmentBundle,
    EvaluationCriteria,
    GoldenAction,
    Instructions,
    Mistake,
    Persona,
    RuleStatement,
    Task,
    UserScenario,
    content_id,
)
from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepOutput, step
from skiller.contract.placeholders import resolve
from skiller.contract.policy import parse_rules
from skiller.steps.s13_policy_merge import BRIDGE_MARKER
from skiller.steps.s14_task_templates import ScoredTemplate
from skiller.steps.s15_instances import Instance
from skiller.steps.s16_validation import ValidatedTask


class Query(Frozen):
    first_query: str
    reason_for_call: str
    known_info: str
    unknown_info: str
    task_instructions: str
    description: str


class S17Input(Frozen):
    domain: str
    template: ScoredTemplate
    instance: Instance
    validated: ValidatedTask
    environment: EnvironmentBundle  # its policy states the rule a refusal breaks
    database: bytes  # to be sure a mistaken reference matches no row


class S17Output(StepOutput):
    task: Task


PERSONA = """Describe the person who contacts a {domain} service: what you know of them is {facts}
(use their real name when it is given). Give name, style, patience (low, medium, high), verbosity
(terse, normal, detailed) and language register (casual, neutral, formal)."""

QUERY = """You are {persona}. Your goal: {instruction}
Why you are calling: {reason}
What you know: {facts}.
What you do not know: {unknown}
Kind of task: {kind} (read: you want information; write: you want a change made; refusal: you ask
for something the service's rules forbid, and you do not know that).{slip}
Write your first message to the assistant in your own voice: say what you want, as a real customer
opens a conversation, without ids, dates or amounts (you give those when asked). Then write the
scenario: reason for call, known info, unknown info and instructions for playing yourself."""


@step("s17", machine="task", source="validated", triggers={"instantiate": "instantiated"})
async def run(inputs: S17Input, ctx: StepContext) -> S17Output:
    t = inputs.template.template
    resolve_text = lambda text: str(resolve(text, inputs.instance.bindings, [a.expected for a in inputs.validated.actions], ctx.clock))  # noqa: E731
    facts = {label: resolve_text(value) for label, value in t.known_info.items()}
    instruction = resolve_text(t.instruction)
    persona: Persona = await ctx.llm.ask(LLMRequest(
        purpose="s17.persona", role="text", response_model=Persona,
        messages=(Message(role="user", content=PERSONA.format(domain=inputs.domain, facts=facts)),),
        context={"stream": ctx.stream, "seed": ctx.config.seed, "domain": inputs.domain, "facts": facts}))
    mistake = _mistake(facts, inputs.validated.actions, inputs.database, ctx.rng.random())
    query: Query = await ctx.llm.ask(LLMRequest(
        purpose="s17.query", role="text", response_model=Query,
        messages=(Message(role="user", content=QUERY.format(persona=persona.model_dump_json(), instruction=instruction,
                                                            facts=facts, reason=resolve_text(t.reason_for_call),
                                                            unknown=t.unknown_info, kind=t.kind,
                                                            slip=f"\nDo not mention your {mistake.fact} yet." if mistake else "")),),
        context={"persona": persona.model_dump(mode="json"), "instruction": instruction, "facts": facts,
                 "kind": t.kind, "reason": resolve_text(t.reason_for_call), "unknown": t.unknown_info,
                 "stream": ctx.stream, "seed": ctx.config.seed, "mistake": mistake.fact if mistake else None}))
    v = inputs.validated
    basis = {"write": ["DB", "ACTION"], "read": ["ACTION"], "refusal": ["ACTION", "NL_ASSERTION"]}[t.kind]
    if t.kind == "refusal" and v.gold_state_hash != v.initial_state_hash:
        basis.insert(0, "DB")  # the compliant part of the conversation wrote
    if v.communicate_info:
        basis.append("COMMUNICATE")
    rule = _rule(inputs.environment, t.violated_rule) if t.kind == "refusal" else None
    nl = [f"The assistant did not call {t.forbidden.tool}"] if t.kind == "refusal" and t.forbidden else []
    criteria = EvaluationCriteria(actions=v.actions, communicate_info=v.communicate_info, nl_assertions=nl,
                                  reward_basis=basis)
    domains = t.domains or [inputs.domain]
    task = Task(
        id=content_id([inputs.domain, inputs.template.template_id, inputs.instance.bindings]),
        domains=domains, environment=inputs.domain, kind=t.kind, description=query.description,
        user_scenario=UserScenario(persona=persona, facts=facts, mistake=mistake, instructions=Instructions(
            domain=inputs.domain, reason_for_call=query.reason_for_call, known_info=query.known_info,
            unknown_info=query.unknown_info, task_instructions=query.task_instructions)),
        first_query=query.first_query, evaluation_criteria=criteria,
        initial_state_hash=v.initial_state_hash, gold_state_hash=v.gold_state_hash, violated_rule=t.violated_rule,
        rule=rule)
    return S17Output(task=task, payload={"task_id": task.id, "kind": t.kind})


MISTAKE_RATE = 0.3  # share of tasks whose user first gives a wrong reference (when one can fail safely)
_REFERENCE = re.compile(r"^([A-Z][A-Z0-9]*-)(\d{3,})$")


def _rule(environment: EnvironmentBundle | None, rule_id: str | None) -> RuleStatement | None:
    if environment is None or rule_id is None:
        return None
    found = next((r for r in parse_rules(environment.policy) if r.id == rule_id), None)
    if found:
        return RuleStatement(id=found.id, tool=found.tool, kind=found.kind, statement=found.statement,
                             field=found.field, statuses=list(found.statuses), attribute=found.attribute)
    # A fused refusal breaks a bridge rule of the merged policy; its tool is the target member's, prefixed.
    bridges = (BridgeRule.model_validate(json.loads(raw)) for raw in BRIDGE_MARKER.findall(environment.policy))
    bridge = next((b for b in bridges if b.id == rule_id), None)
    return RuleStatement(id=bridge.id, tool=namespace_of(bridge.target) + (bridge.tool or ""), kind=bridge.kind,
                         statement=bridge.statement, field=bridge.field, statuses=list(bridge.statuses),
                         attribute=bridge.source_field if bridge.kind in ("not_above", "date_after") else None) \
        if bridge else None


def _misread(value: str) -> str | None:
    """A plausible slip of a reference ('P-0080' -> 'P-8000'): its largest digit moved to the front,
    so the number is far above the row counts ids are numbered by."""
    m = _REFERENCE.match(value)
    if m is None:
        return None
    digits = m.group(2)
    top = max(digits)
    rest = digits.replace(top, "", 1)
    wrong = m.group(1) + top + rest
    return wrong if wrong != value and top != "0" else None


def _exists(database: bytes | None, column: str, value: str) -> bool:
    if database is None:
        return True  # cannot tell: never risk a wrong reference that matches a row
    with snapshot(database) as path:
        tables = [r["name"] for r in select(path, "SELECT name FROM sqlite_master WHERE type = 'table'", 1000)]
        for table in tables:
            cols = [r["name"] for r in select(path, f'PRAGMA table_info("{table}")', 1000)]
            if column in cols:
                try:
                    if select(path, f'SELECT 1 FROM "{table}" WHERE "{column}" = {_quote(value)}', 1):
                        return True
                except QueryError:
                    return True
    return False


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _mistake(facts: dict[str, str], actions: list[GoldenAction], database: bytes | None,
             draw: float) -> Mistake | None:
    """A reference the user may get wrong: one the first golden call needing it only reads, so the
    failed lookup leaves the database as it was. Seeded by the step's RNG (`draw`)."""
    if draw >= MISTAKE_RATE:
        return None
    seen: set[str] = set()
    for action in (a for a in actions if a.requestor == "assistant"):
        for column, value in action.arguments.items():
            text = value_text(value)
            label = next((k for k, v in facts.items() if v == text), None)
            if label is None or text in seen:
                continue
            seen.add(text)
            wrong = _misread(text)
            if action.mode == "read" and wrong is not None and not _exists(database, column, wrong):
                return Mistake(fact=label, wrong=wrong)
    return None
