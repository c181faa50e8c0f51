"""s13: policy merge: one policy for the fused environment, member conflicts resolved, bridge rules for hand-overs."""
from __future__ import annotations

import json
import re

from skiller.servers.fusion import BridgeRule, CrossReference, namespace_of, with_bridges
from skiller.contract.environment import ModuleSource
from skiller.servers.task import EnvironmentBundle
from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.contract.policy import parse_rules
from skiller.steps.s07_policy import Policy, PolicyDoc
from skiller.steps.s09_implementation import Implementation
from skiller.steps.s10_combinations import Combination

BRIDGE_MARKER = re.compile(r"<!-- BRIDGE (\{.*?\}) -->")
GLOBAL_RULE = re.compile(r"^\s*(\d+)\.\s", re.M)
CITATION = re.compile(r"\bglobal rules? (\d+)", re.I)

__all__ = ["BridgeRule", "MergedPolicy", "bridge_problems", "citation_problems", "references"]


class MergedPolicy(Frozen):
    markdown: str
    rules: list  # member rules, with prefixed tool names
    bridges: list[BridgeRule]  # hand-over rules; the checkable ones are enforced by the fused environment


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
resolve conflicting global rules (say which wins and why) and state them once, numbered, so that every
"(global rule N)" the sections cite exists. Add bridge rules for each hand-over ({links}) as lines
`<!-- BRIDGE {{"id", "source", "target", "statement", "kind", "tool", "ref", "record", ...}} -->`, where kind
is person (same person only), source_status (the named record's status in `statuses`), source_window (its
date `source_field` within clock + [min, max] days), not_above (argument `field` at most its `source_field`)
or date_after (date argument `field` minus its date `source_field` within [min, max] days). Keep the markers
<!-- POLICY_START -->, <!-- GLOBAL_RULES_END -->, <!-- TOOL: name --> and <!-- POLICY_END -->.
{policies}"""


def merge_prompt(combo: Combination, policies: dict[str, Policy]) -> str:
    """The members, their prefixes and hand-overs, and every member's whole policy (its rules on records of
    other services included: the bridge rules come from them)."""
    return PROMPT.format(members=", ".join(combo.members), prefixes={m: namespace_of(m) for m in combo.members},
                         links="; ".join(l.model_dump_json(exclude_none=True) for l in combo.links),
                         policies="\n\n".join(policies[m].markdown for m in combo.members))


def citation_problems(markdown: str) -> list[str]:
    """Every "(global rule N)" must name a numbered rule of the global section."""
    head = markdown.split("<!-- GLOBAL_RULES_END -->", 1)[0]
    stated = {int(n) for n in GLOBAL_RULE.findall(head)}
    cited = sorted({int(n) for n in CITATION.findall(markdown)})
    return [f"cites global rule {n}, which its global rules do not state" for n in cited if n not in stated]


def references(combo: Combination) -> list[CrossReference]:
    return [CrossReference(source=l.source, target=l.target, record=l.record, tool=l.tool, ref=l.field)
            for l in combo.links if l.kind == "reference" and l.record and l.tool and l.field]


def bridge_problems(bridges: list[BridgeRule], combo: Combination) -> list[str]:
    """A checkable bridge rule must govern a reference of the combination; every reference needs a rule."""
    refs = {(r.source, r.target, r.tool, r.ref) for r in references(combo)}
    problems = [f"bridge {b.id} governs no reference of the combination" for b in bridges
                if b.kind != "person" and (b.source, b.target, b.tool, b.ref) not in refs]
    problems += [f"bridge {b.id} needs min and max days" for b in bridges
                 if b.kind in ("source_window", "date_after") and (b.min is None or b.max is None)]
    covered = {(b.source, b.target) for b in bridges}
    problems += [f"no bridge rule for the hand-over {l.source} -> {l.target}" for l in combo.links
                 if (l.source, l.target) not in covered]
    ids = [b.id for b in bridges]
    problems += [f"bridge id {i} is used twice" for i in sorted(set(ids)) if ids.count(i) > 1]
    return problems


@step("s13", machine="fusion", source="databases_fused", triggers={"merge_policies": "policies_merged"})
async def run(inputs: S13Input, ctx: StepContext) -> S13Output:
    combo = inputs.combination
    prefixes = {m: namespace_of(m) for m in combo.members}
    request = LLMRequest(
        purpose="s13.policy_merge", role="text", response_model=PolicyDoc,
        messages=(Message(role="user", content=merge_prompt(combo, inputs.members_policy)),),
        context={"combination": combo.model_dump(mode="json")})
    doc: PolicyDoc = await ctx.llm.ask(request)
    try:
        rules = parse_rules(doc.markdown)
        bridges = [BridgeRule.model_validate(json.loads(raw)) for raw in BRIDGE_MARKER.findall(doc.markdown)]
    except Exception as exc:  # noqa: BLE001 - any malformed marker is one validation error
        raise StepError("validation", f"s13: merged policy of {combo.name}: {str(exc).splitlines()[0]}") from None
    expected = {r.id for m in combo.members for r in inputs.members_policy[m].rules}
    missing = sorted(expected - {r.id for r in rules})
    problems = [f"member rules missing: {missing[:3]}"] if missing else []
    problems += [] if "<!-- POLICY_END -->" in doc.markdown else ["the POLICY_END marker is missing"]
    problems += citation_problems(doc.markdown) + bridge_problems(bridges, combo)
    if problems:
        raise StepError("validation", f"s13: merged policy of {combo.name}: {problems[0]}")
    refs = references(combo)
    environment = EnvironmentBundle(
        name=inputs.name, domains=list(combo.members), policy=doc.markdown,
        modules=[with_bridges(ModuleSource(server=m, code=inputs.members_implementation[m].module,
                                           namespace=prefixes[m], prefix=prefixes[m]), refs, bridges)
                 for m in combo.members])
    return S13Output(policy=MergedPolicy(markdown=doc.markdown, rules=[r.model_dump() for r in rules], bridges=bridges),
                     environment=environment, payload={"rules": len(rules), "bridges": len(bridges)})
