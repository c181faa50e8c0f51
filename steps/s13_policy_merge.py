"""s13: policy merge: one policy for the fused environment, member conflicts resolved, bridge rules for hand-overs."""
from __future__ import annotations

import json
import re

from servers.fusion import namespace_of
from servers.contract import ModuleSource
from servers.task import EnvironmentBundle
from skiller.llm.interface import LLMRequest, Message
from steps.base import Frozen, StepContext, StepError, StepOutput, step
from steps.s07_policy import Policy, PolicyDoc, parse_rules
from steps.s09_implementation import Implementation
from steps.s10_combinations import Combination

BRIDGE_MARKER = re.compile(r"<!-- BRIDGE (\{.*?\}) -->")


class BridgeRule(Frozen):
    id: str
    source: str  # member handing over
    target: str  # member taking over
    statement: str


class MergedPolicy(Frozen):
    markdown: str
    rules: list  # member rules, with prefixed tool names
    bridges: list[BridgeRule]


class S13Input(Frozen):
    name: str
    combination: Combination
    members_policy: dict[str, Policy]
    members_implementation: dict[str, Implementation]


class S13Output(StepOutput):
    policy: MergedPolicy
    environment: EnvironmentBundle


PROMPT = """Merge the policies of {members} into one policy for an assistant serving all of them at once
(tools carry their service prefix: {prefixes}). Keep every member rule with its id and prefixed tool,
resolve conflicting global rules (say which wins and why), and add bridge rules for each hand-over
({links}) as lines `<!-- BRIDGE {{"id", "source", "target", "statement"}} -->`. Keep the markers
<!-- POLICY_START -->, <!-- GLOBAL_RULES_END -->, <!-- TOOL: name --> and <!-- POLICY_END -->.
{policies}"""


@step("s13", machine="fusion", source="databases_fused", triggers={"merge_policies": "policies_merged"})
async def run(inputs: S13Input, ctx: StepContext) -> S13Output:
    combo = inputs.combination
    prefixes = {m: namespace_of(m) for m in combo.members}
    request = LLMRequest(
        purpose="s13.policy_merge", role="text", response_model=PolicyDoc,
        messages=(Message(role="user", content=PROMPT.format(
            members=", ".join(combo.members), prefixes=prefixes,
            links="; ".join(l.model_dump_json(exclude_none=True) for l in combo.links),
            policies="\n\n".join(inputs.members_policy[m].markdown for m in combo.members))),),
        context={"combination": combo.model_dump(mode="json")})
    doc: PolicyDoc = await ctx.llm.ask(request)
    try:
        rules = parse_rules(doc.markdown)
        bridges = [BridgeRule.model_validate(json.loads(raw)) for raw in BRIDGE_MARKER.findall(doc.markdown)]
    except Exception as exc:  # noqa: BLE001 - any malformed marker is one validation error
        raise StepError("validation", f"s13: merged policy of {combo.name}: {str(exc).splitlines()[0]}") from None
    expected = {r.id for m in combo.members for r in inputs.members_policy[m].rules}
    missing = sorted(expected - {r.id for r in rules})
    if missing or len(bridges) < len(combo.links) or "<!-- POLICY_END -->" not in doc.markdown:
        why = f"member rules missing: {missing[:3]}" if missing else "a bridge rule or marker is missing"
        raise StepError("validation", f"s13: merged policy of {combo.name}: {why}")
    environment = EnvironmentBundle(
        name=inputs.name, domains=list(combo.members), policy=doc.markdown,
        modules=[ModuleSource(server=m, code=inputs.members_implementation[m].module, namespace=prefixes[m],
                            prefix=prefixes[m]) for m in combo.members])
    return S13Output(policy=MergedPolicy(markdown=doc.markdown, rules=[r.model_dump() for r in rules], bridges=bridges),
                     environment=environment, payload={"rules": len(rules), "bridges": len(bridges)})
