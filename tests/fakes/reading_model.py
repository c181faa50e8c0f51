"""Answers a model would give having read only the request text (s08 tool graph, s09 implementation, s14
task templates, s17 persona and query): each reader parses what the prompt states and computes the
builtin-like answer from it, with no catalog lookup, no workspace and no shared state. A fact the prompt does
not state makes the reader fail, so a gap in a prompt shows as a failed answer."""
from __future__ import annotations

import ast
import hashlib
import json
import re
from typing import Any

from pydantic import BaseModel

from skiller.llm.interface import LLMRequest
from skiller.world.builtin import tasks as builtin_tasks
from skiller.world.builtin.codegen import implementation_module
from skiller.world.builtin.testgen import implementation_tests
from tests.fakes.reading_domain import Unreadable, domain_of_implementation_prompt
from tests.fakes.reading_templates import templates


def _search(pattern: str, text: str, what: str, flags: int = 0) -> re.Match:
    found = re.search(pattern, text, flags)
    if found is None:
        raise Unreadable(f"the prompt does not state {what}")
    return found


# ------------------------------------------------------------------ s08: the tool graph from the tool list
_TOOL = re.compile(r"^- (\w+) \[(read|write)\]: .*? Parameters: (.*)\. Returns: (.*)\.$", re.M)
_PARAM = re.compile(r"(?:^|; )(\w+): (?:string|integer|number|boolean|any)\b")
_RECORD = re.compile(r"^- \w+ \((\w+)\): \w+ -> \w+ \((\w+)\)(?:, naming an? \w+ \((\w+)\))?$", re.M)


def _subject(returns: str, params: set[str], lines_told: bool) -> str | None:
    """The snake_case entity a tool's output is about, read from what it returns; None for the profile. A record
    returned with its lines is about the record (when the prompt says its ids are what such a tool outputs)."""
    if returns == "the person's profile":
        return None
    if " with its lines" in returns:
        if not lines_told:
            raise Unreadable(f"what a tool returning {returns!r} outputs")
        returns = returns.split(" with its lines", 1)[0]
    for pattern in (r"^matching (.+) rows(?:, cheapest first)? \(at most \d+\)$", r"^the person's (.+) rows$",
                    r"^the (?:new|updated) (.+)$", r"^the count, total and count per status of the person's (.+) rows$"):
        found = re.match(pattern, returns)
        if found:
            return found[1].replace(" ", "_")
    if returns == "the payment receipt":  # a payment is about the record whose id it takes
        ids = sorted(p[:-3] for p in params if p.endswith("_id") and p != "person_id")
        if len(ids) != 1:
            raise Unreadable(f"which record a payment taking {sorted(params)} is about")
        return ids[0]
    return _search(r"^the (.+)$", returns, f"what {returns!r} is").group(1).replace(" ", "_")


def tool_graph(prompt: str) -> dict[str, Any]:
    """Links where an id a tool's output carries is a parameter of another; trajectories follow them."""
    records = _search(r"Records the service keeps.*?outputs these ids:\n(.*?)\nTools:", prompt,
                      "the records and their targets", re.S).group(1)
    # what a record's row names: the earlier record when it names one, else its target
    targets = {own: named or target for own, target, named in _RECORD.findall(records)}
    lines_told = "Either outputs the record's ids listed above" in prompt
    tools = []
    for name, mode, params_text, returns in _TOOL.findall(prompt.split("\nTools:\n", 1)[1]):
        params = set() if params_text == "none" else set(_PARAM.findall(params_text))
        entity = _subject(returns, params, lines_told)
        if entity is None:
            outputs = {"person_id"}
        else:
            own = f"{entity}_id"
            outputs = {own} | ({"person_id", targets[own]} if own in targets else set())
        tools.append({"name": name, "mode": mode, "params": params, "entity": entity, "outputs": outputs})
    if not tools:
        raise Unreadable("the tools")
    links, pre = [], {}
    for a in tools:
        for b in tools:
            shared = sorted(a["outputs"] & b["params"])
            if a is b or not shared:
                continue
            both_write = a["mode"] == b["mode"] == "write" and a["entity"] == b["entity"]
            links.append({"source": a["name"], "target": b["name"],
                          "type": "state dependency" if both_write else "information flow", "fields": shared})
            if a["mode"] == "read" and b["mode"] == "write" and shared != ["person_id"]:
                pre.setdefault(b["name"], []).append(a["name"])
    reads = [t for t in tools if t["mode"] == "read"]
    profile = [t["name"] for t in reads if t["entity"] is None][:1]
    trajectories = []
    for b in tools:
        if b["mode"] != "write":
            continue
        feeders = [a["name"] for a in reads if a["outputs"] & b["params"] - {"person_id"}]
        trajectories += [[*profile, f, b["name"]][-5:] for f in feeders[:2]]
    return {"nodes": [t["name"] for t in tools], "links": links, "tool_preconditions": pre,
            "valid_trajectories": [t for t in trajectories if 2 <= len(t) <= 5]}


# ------------------------------------------------------------------ s17: persona and first query
def _own_stream(prompt: str) -> str:
    """A model makes its own choices: seeded here by the request text, not by the run's task stream."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def persona(prompt: str) -> dict[str, Any]:
    found = _search(r"contacts a (\w+) service: what you know of them is (\{.*?\})\n", prompt, "the person's facts")
    context = {"domain": found[1], "facts": ast.literal_eval(found[2]), "stream": _own_stream(prompt)}
    return builtin_tasks.persona(LLMRequest(purpose="s17.persona", response_model=BaseModel, context=context))


def query(prompt: str) -> dict[str, Any]:
    persona_json = _search(r"^You are (\{.*?\})\. Your goal: ", prompt, "the persona", re.M)[1]
    context = {
        "persona": json.loads(persona_json),
        "instruction": _search(r"Your goal: (.*)\n", prompt, "the goal")[1],
        "reason": _search(r"^Why you are calling: (.*)$", prompt, "the reason for the call", re.M)[1],
        "facts": ast.literal_eval(_search(r"^What you know: (\{.*\})\.$", prompt, "the known facts", re.M)[1]),
        "unknown": _search(r"^What you do not know: (.*)$", prompt, "what the user does not know", re.M)[1],
        "kind": _search(r"^Kind of task: (\w+) ", prompt, "the kind of task", re.M)[1],
        "mistake": (m[1] if (m := re.search(r"Do not mention your (.+?) yet\.", prompt)) else None),
        "stream": _own_stream(prompt),
    }
    return builtin_tasks.query(LLMRequest(purpose="s17.query", response_model=BaseModel, context=context))


# ------------------------------------------------------------------ s09: the module and its tests
def implementation(prompt: str) -> dict[str, Any]:
    """The builtin's code and tests for the domain the request describes (tools, database, policy), rebuilt
    from the request text (tests/fakes/reading_domain.py); a repair request is answered the same way."""
    domain, clock = domain_of_implementation_prompt(prompt)
    return {"module": implementation_module(domain, clock), "tests": implementation_tests(domain, clock)}


READERS = {"ToolGraph": tool_graph, "Persona": persona, "Query": query, "Implementation": implementation,
           "TemplateBatch": templates}
"""Response-schema title -> the reader that answers it from the prompt alone."""
