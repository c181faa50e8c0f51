"""Answers a model would give to the fusion requests having read only their text: s10's fit (members, their
sectors and hand-overs), s11's fused templates (each member's tools, effects, rules, reference rules, tables and
column meanings, the hand-overs and the validated segments) and s13's merged policy (the members' policies, with
the rules each applies to other services' records). Each reader parses what the prompt states and computes the
builtin-like answer from it with the builtin's pure helpers: no catalog lookup, no workspace, no shared state.
A fact the prompt does not state makes the reader fail (Unreadable)."""
from __future__ import annotations

import ast
import json
import re
from typing import Any

from skiller.contract.policy import parse_references
from skiller.world.builtin.fusion import fused_templates, judge_fit, merged_policy
from skiller.world.catalog.model import CatalogBridge
from tests.fakes.reading_domain import Unreadable, need
from tests.fakes.reading_templates import SEED, domain_of_facts

__all__ = ["FUSION_READERS", "Unreadable", "fit", "fuse", "merge"]


def _json_objects(text: str) -> list[dict]:
    """The JSON objects at the start of `text`, separated by "; " (how the fusion prompts list hand-overs)."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text) and text[at] == "{":
        obj, at = decoder.raw_decode(text, at)
        out.append(obj)
        at += 2 if text.startswith("; ", at) else len(text)
    return need(out or None, "the hand-overs")


def _combination(members: list[str], links: list[dict]) -> dict:
    # a model names the combination as it likes; the members joined by '_' is s10's name, which seeds the draws
    return {"name": "_".join(members), "members": members, "links": links}


# ------------------------------------------------------------------ s10: the fit of a combination
def _links_from_prose(text: str) -> list[dict]:
    """s10 states each hand-over in words: "T takes S's R as F (reference)" or "S and T serve the same person"."""
    links = []
    for part in text.split("; "):
        ref = re.fullmatch(r"(\w+) takes (\w+)'s (\w+) as (\w+) \(reference\)", part)
        person = re.fullmatch(r"(\w+) and (\w+) serve the same person", part)
        if ref:
            links.append({"source": ref[2], "target": ref[1], "kind": "reference", "record": ref[3], "field": ref[4]})
        elif person:
            links.append({"source": person[1], "target": person[2], "kind": "person"})
        else:
            raise Unreadable(f"the hand-over {part!r}")
    return links


def _kinds_of_service(members: list[str]) -> list[str]:
    """What kinds of service the names can be: each name and its PascalCase tails (HarborHospital: Hospital), so
    that two branches of one service are told apart from two services, as a reader of the names would."""
    tails = [m[i:] for m in members for i in range(1, len(m)) if m[i].isupper()]
    return sorted({*members, *tails})


def fit(prompt: str) -> dict[str, Any]:
    links = _links_from_prose(need(re.search(r"to the next \((.*)\)\? Score", prompt, re.S), "the hand-overs")[1])
    members = [links[0]["source"], *(l["target"] for l in links)]
    sectors = [need(re.search(rf"\b{m} \(([^:()]+): ", prompt), f"the sector of {m}")[1] for m in members]
    return judge_fit(_combination(members, links), sectors, _kinds_of_service(members))


# ------------------------------------------------------------------ s11: fused templates
_MEMBER = re.compile(r"^## Member (\w+) \(([^:()]+): (.*?)\)\n(.*?)\n## End of \1$", re.M | re.S)


def _section(block: str, start: str, end: str, what: str) -> str:
    return need(re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), block, re.S), what)[1]


def _bridges(text: str) -> list[CatalogBridge]:
    if text.strip() == "none":
        return []
    return [CatalogBridge.model_validate(json.loads(line[2:])) for line in text.splitlines() if line.startswith("- {")]


def _member_domain(name: str, sector: str, description: str, block: str, clock: str):
    domain, _ = domain_of_facts(
        name, (sector, description), clock,
        tools=_section(block, "what each returns):", "What each tool does", f"the tools of {name}"),
        effects=_section(block, "(from the policy):", "Policy rules (", f"what the tools of {name} do"),
        rules=_section(block, "statement):", "Rules on records of other services", f"the rules of {name}"),
        tables=_section(block, "sample ids):", "What the columns mean", f"the database of {name}"),
        meanings=block.split("by these meanings):\n", 1)[1] if "by these meanings):\n" in block else need(
            None, f"what the columns of {name} mean"))
    references = _section(block, "(machine-checkable, from the policy):", "Database (", f"the reference rules of {name}")
    return domain.model_copy(update={"bridges": _bridges(references)})


def fuse(prompt: str) -> dict[str, Any]:
    members_text, count = need(re.search(r"tasks of (.*?) into (\d+) cross-domain", prompt, re.S),
                               "the members and how many templates").groups()
    members = members_text.split(", ")
    links = _json_objects(need(re.search(r"Hand-overs: (.*)", prompt), "the hand-overs")[1])
    tables_text = need(re.search(r"Member tables: (.*?)\. Today is", prompt, re.S), "the member tables")[1]
    tables = {m: t.split(", ") for m, t in (part.split(": ", 1) for part in tables_text.split("; "))}
    clock = need(re.search(r"Today is (\d{4}-\d\d-\d\d)", prompt), "today's date")[1]
    blocks = {m[1]: m for m in _MEMBER.finditer(prompt)}
    domains = {}
    for member in members:
        found = need(blocks.get(member), f"what member {member} is, does and keeps")
        domains[member] = _member_domain(member, found[2], found[3], found[4], clock)
    segments = ast.literal_eval(need(re.search(r"^Segments: (.*)$", prompt, re.M | re.S), "the segments")[1])
    context = {"combination": _combination(members, links), "count": int(count), "tables": tables,
               "segments": segments, "clock": clock, "seed": SEED}
    return fused_templates(context, domains)


# ------------------------------------------------------------------ s13: the merged policy
_POLICY = re.compile(r"<!-- POLICY_START -->.*?<!-- POLICY_END -->\n?", re.S)


def merge(prompt: str) -> dict[str, Any]:
    members = need(re.search(r"Merge the policies of (.*?) into one policy", prompt, re.S), "the members")[1].split(", ")
    links = _json_objects(need(re.search(r"for each hand-over \((.*)", prompt), "the hand-overs")[1])
    policies = {}
    stated = need(re.search(r"<!-- POLICY_END -->\.\n(.*)", prompt, re.S), "the members' policies")[1]
    for text in _POLICY.findall(stated):
        name = need(re.search(r"You are the assistant of \*\*(\w+)\*\*", text), "whose policy this is")[1]
        policies[name] = text
    for m in members:
        need(policies.get(m), f"the policy of {m}")
    tools = {m: re.findall(r"<!-- TOOL: (\w+) -->", policies[m]) for m in members}
    bridges = {m: [CatalogBridge.model_validate(r) for r in parse_references(policies[m])] for m in members}
    return merged_policy(_combination(members, links), policies, tools, bridges)


# Fusion requests, told apart by their response schema and their opening words: (schema, opening) -> (purpose, reader)
FUSION_READERS = {("Fit", "Would a person plausibly use"): ("s10.fit", fit),
                  ("TemplateBatch", "Fuse these validated"): ("s11.fuse", fuse),
                  ("PolicyDoc", "Merge the policies of"): ("s13.policy_merge", merge)}
