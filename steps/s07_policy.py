"""s07: the domain policy: markdown for the assistant, each rule also in machine-checkable form."""
from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import ValidationError, model_serializer

from servers.database import DatabaseSummary
from skiller.llm.interface import LLMRequest, Message
from steps.base import Frozen, StepContext, StepError, StepOutput, step
from steps.prompt_text import database_text, tools_text
from steps.s04_blueprints import Blueprint

RULE_MARKER = re.compile(r"<!-- RULE (\{.*?\}) -->")
RuleKind = Literal["max_active", "value_range", "date_window", "target_flag", "lead_time", "requires_status",
                   "member_attr", "tier_limit", "no_outstanding"]
# Rule kinds whose outcome depends on who asks (a customer attribute) or on an amount.
ATTRIBUTE_KINDS = frozenset({"member_attr", "tier_limit"})


class PolicyRule(Frozen):
    """The machine-checkable form of one rule; the implementation enforces it, s14 targets it.

    max_active:      person holds < `limit` rows of `entity` in `statuses`
    value_range:     argument `field` within [`min`, `max`]
    date_window:     date argument `field` within clock + [`min`, `max`] days
    target_flag:     the target entity row of a create has `field` == `equals`
    lead_time:       the row's date `field` is at least `min` days after the clock
    requires_status: the row's status is in `statuses` (guards set_status/update/pay)
    member_attr:     the acting person's profile attribute `field` is in `statuses` or within [`min`, `max`]
    tier_limit:      argument `field` at most `limits[v]`, v the person's profile attribute `attribute`
    no_outstanding:  the person holds no row of `entity` in `statuses` (e.g. an unpaid bill) to create
    """

    id: str
    tool: str
    kind: RuleKind
    statement: str
    entity: str | None = None
    field: str | None = None
    statuses: list[str] = []
    limit: int | None = None
    min: float | None = None
    max: float | None = None
    equals: Any = None
    attribute: str | None = None
    limits: dict[str, float] = {}

    @model_serializer(mode="wrap")
    def _lean(self, handler: Any) -> dict[str, Any]:
        # the tier fields appear only on tier rules, so policies without them keep their bytes
        out = handler(self)
        for key in ("attribute", "limits"):
            if not out.get(key):
                out.pop(key, None)
        return out


class PolicyDoc(Frozen):
    markdown: str


class Policy(Frozen):
    markdown: str
    rules: list[PolicyRule]


class S07Input(Frozen):
    domain: str
    blueprint: Blueprint
    database_summary: DatabaseSummary


class S07Output(StepOutput):
    policy: Policy


PROMPT = """Write the policy the assistant of the {name} service must follow, in markdown between
`<!-- POLICY_START -->` and `<!-- POLICY_END -->`. Start with global rules ending at
`<!-- GLOBAL_RULES_END -->`. Then one section per tool between `<!-- TOOL: name -->` and
`<!-- TOOL_END: name -->`, headed `### Tool: name`, with Purpose, Preconditions, Input validation,
Permission outcomes (permitted / rejected cases) and Effects. State every rule twice: in words,
and as a line `<!-- RULE {{json}} -->` with keys id (e.g. "{prefix}-1"), tool, kind, statement, and
the fields the kind needs:
{kinds}
Rules must hold on the data below: name real tables (entity = the record's PascalCase name), real
columns and real status values, and bounds that some rows meet and some do not.
Tools:
{tools}
Database (tables, columns with types and values or ranges, sample ids):
{database}"""

def parse_rules(markdown: str) -> list[PolicyRule]:
    rules = []
    for raw in RULE_MARKER.findall(markdown):
        try:
            rules.append(PolicyRule.model_validate(json.loads(raw)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"malformed rule marker {raw[:60]}: {str(exc).splitlines()[0]}") from None
    return rules


def policy_problems(markdown: str, blueprint: Blueprint) -> tuple[list[str], list[PolicyRule]]:
    problems = [f"missing marker {m}" for m in ("<!-- POLICY_START -->", "<!-- POLICY_END -->",
                                                 "<!-- GLOBAL_RULES_END -->") if m not in markdown]
    try:
        rules = parse_rules(markdown)
    except ValueError as exc:
        return problems + [str(exc)], []
    tools = {f.name for f in blueprint.functions}
    problems += [f"tool {t} has no section" for t in sorted(tools) if f"<!-- TOOL: {t} -->" not in markdown]
    problems += [f"rule {r.id} names unknown tool {r.tool}" for r in rules if r.tool not in tools]
    ids = [r.id for r in rules]
    problems += [f"rule id {i} is used twice" for i in sorted(set(ids)) if ids.count(i) > 1]
    if not rules:
        problems.append("no machine-checkable rule markers")
    return problems, rules


@step("s07", machine="domain", source="database_generated", triggers={"write_policy": "policy_written"})
async def run(inputs: S07Input, ctx: StepContext) -> S07Output:
    kinds = "\n".join(line.strip() for line in (PolicyRule.__doc__ or "").splitlines()[2:] if line.strip())
    messages = [Message(role="user", content=PROMPT.format(
        name=inputs.domain, prefix=inputs.domain[:3].upper(), kinds=kinds, tools=tools_text(inputs.blueprint.functions),
        database=database_text(inputs.database_summary)))]
    for attempt in range(2):
        request = LLMRequest(purpose="s07.policy", role="text", response_model=PolicyDoc,
                             messages=tuple(messages), context={"domain": inputs.domain, "attempt": attempt})
        doc: PolicyDoc = await ctx.llm.ask(request)
        problems, rules = policy_problems(doc.markdown, inputs.blueprint)
        if not problems:
            return S07Output(policy=Policy(markdown=doc.markdown, rules=rules), payload={"rules": len(rules)})
        messages += [Message(role="assistant", content=doc.markdown),
                     Message(role="user", content="Fix these problems: " + "; ".join(problems))]
    raise StepError("validation", f"s07: policy of {inputs.domain} is malformed: {problems[0]}")
