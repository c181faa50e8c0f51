"""s17: instantiation: a persona, the user scenario, the first query and the evaluation criteria of a validated task."""
from __future__ import annotations

from servers.task import EvaluationCriteria, Instructions, Persona, Task, UserScenario, content_id
from skiller.llm.interface import LLMRequest, Message
from steps.base import Frozen, StepContext, StepOutput, step
from steps.placeholders import resolve
from steps.s14_task_templates import ScoredTemplate
from steps.s15_instances import Instance
from steps.s16_validation import ValidatedTask


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
for something the service's rules forbid, and you do not know that).
Write your first message to the assistant in your own voice, with only part of what you know, plus
the scenario: reason for call, known info, unknown info and instructions for playing yourself."""


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
    query: Query = await ctx.llm.ask(LLMRequest(
        purpose="s17.query", role="text", response_model=Query,
        messages=(Message(role="user", content=QUERY.format(persona=persona.model_dump_json(), instruction=instruction,
                                                            facts=facts, reason=resolve_text(t.reason_for_call),
                                                            unknown=t.unknown_info, kind=t.kind)),),
        context={"persona": persona.model_dump(mode="json"), "instruction": instruction, "facts": facts,
                 "kind": t.kind, "reason": resolve_text(t.reason_for_call), "unknown": t.unknown_info,
                 "stream": ctx.stream, "seed": ctx.config.seed}))
    v = inputs.validated
    basis = {"write": ["DB", "ACTION"], "read": ["ACTION"], "refusal": ["ACTION", "NL_ASSERTION"]}[t.kind]
    if v.communicate_info:
        basis.append("COMMUNICATE")
    nl = [f"The assistant did not call {t.forbidden.tool}"] if t.kind == "refusal" and t.forbidden else []
    criteria = EvaluationCriteria(actions=v.actions, communicate_info=v.communicate_info, nl_assertions=nl,
                                  reward_basis=basis)
    domains = t.domains or [inputs.domain]
    task = Task(
        id=content_id([inputs.domain, inputs.template.template_id, inputs.instance.bindings]),
        domains=domains, environment=inputs.domain, kind=t.kind, description=query.description,
        user_scenario=UserScenario(persona=persona, facts=facts, instructions=Instructions(
            domain=inputs.domain, reason_for_call=query.reason_for_call, known_info=query.known_info,
            unknown_info=query.unknown_info, task_instructions=query.task_instructions)),
        first_query=query.first_query, evaluation_criteria=criteria,
        initial_state_hash=v.initial_state_hash, gold_state_hash=v.gold_state_hash, violated_rule=t.violated_rule)
    return S17Output(task=task, payload={"task_id": task.id, "kind": t.kind})
