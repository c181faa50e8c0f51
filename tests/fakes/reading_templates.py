"""The domain a model would understand from an s14 request alone: the tool lines (typed parameters, enums,
descriptions), what each tool does (the policy's effects and status guards), the rules with their
machine-checkable fields, the database summary and what each column means are read back into the catalog's
domain model (tests/fakes/reading_domain.py), so the builtin's template generator writes the answer.
Nothing is looked up by name: a fact the request does not state makes the reader fail (Unreadable)."""
from __future__ import annotations

import json
import re
from typing import Any

from skiller.world.builtin.codegen import snake
from skiller.world.builtin.tasks import templates_for
from skiller.world.catalog.model import CatalogDomain, CatalogRule
from tests.fakes.reading_domain import DomainReader, Section, Unreadable, need, read_tables

_TOOL = re.compile(r"^- (\w+) \[(read|write)\]: (.*?) Parameters: (.*)\. Returns: (.*?)\.$", re.M)
_PARAM = re.compile(r"^(\w+): (\w+)( \(optional\))?(?: \[(.*?)\](?= - |$))?(?: - (.*))?$", re.S)
_RULE = re.compile(r"^- (\S+) on (\w+) \((\w+)(?:, (\{.*\}))?\): (.*)$", re.M)
_MEANING = re.compile(r"^- ([A-Z]\w*)\.(\w+) \(\w+(?:, an id of (\w+\.\w+))?(?:, range (\S+?)\.\.(\S+?))?\): (.*)$",
                      re.M)
SEED = 7  # a model makes its own choices; this one draws them as the builtin does with the default seed


def _literal(text: str, kind: str) -> Any:
    if kind == "string":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_tools(text: str) -> tuple[list[dict], dict[str, str]]:
    """Tool lines (steps/prompt_text.tools_text) as tool-list entries, and each tool's mode."""
    tools, modes = [], {}
    for name, mode, description, params, _returns in _TOOL.findall(text):
        properties: dict[str, dict[str, Any]] = {}
        parts = [] if params == "none" else re.split(r"; (?=\w+: (?:string|integer|number|boolean|array|any)\b)", params)
        for part in parts:
            found = need(_PARAM.match(part), f"parameter {part!r} of {name}")
            schema: dict[str, Any] = {"type": found[2], "description": found[5] or ""}
            for extra in (found[4] or "").split("; ") if found[4] else []:
                key, _, value = extra.partition(" ")
                if key == "one":  # "one of a|b"
                    schema["enum"] = [_literal(v, found[2]) for v in value.removeprefix("of ").split("|")]
                elif key == "each":  # an array's element: "{medication_id: string, quantity: integer >= 1}"
                    fields = re.findall(r"(\w+): (\w+)", value)
                    schema["items"] = {"type": "object", "properties": {k: {"type": t} for k, t in fields}}
                elif key in ("minItems", "maxItems"):
                    schema[key] = int(value)
                elif key in ("format", "default"):
                    schema[key] = value if key == "format" else _literal(value, found[2])
            properties[found[1]] = schema
        tools.append({"name": name, "description": description, "parameters": {"properties": properties}})
        modes[name] = mode
    return need(tools or None, "the tools"), modes


def read_effects(text: str, tools: list[dict]) -> dict[str, Section]:
    """`tool:` then the policy's effect bullets and its `- Rejected: ...` lines (prompt_text.tool_effects_text)."""
    out = {}
    for name, body in re.findall(r"^(\w+):\n((?:- .*(?:\n|$))*)", text, re.M):
        lines = body.splitlines()
        effects = "\n".join(line for line in lines if not line.startswith("- Rejected: "))
        allowed = re.search(r"is not in an allowed status \(allowed: (.*?)\)\.", body)
        params = next((list(t["parameters"]["properties"]) for t in tools if t["name"] == name), [])
        out[name] = Section(effects, params, allowed[1].split(", ") if allowed else None)
    return need(out or None, "what the tools do")


def read_rules(text: str) -> list[CatalogRule]:
    """The rules in the order of their numbers (the policy lists them by tool)."""
    rules = [CatalogRule(id=i, tool=tool, kind=kind, statement=statement, **json.loads(fields or "{}"))
             for i, tool, kind, fields, statement in _RULE.findall(text)]
    return sorted(rules, key=lambda r: int(re.sub(r"\D", "", r.id) or 0))


def _between(prompt: str, start: str, end: str, what: str) -> str:
    return need(re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), prompt, re.S), what)[1]


def _prefixes(tables: dict, links: dict[tuple[str, str], str]) -> dict[str, str]:
    """The id prefix of each record kept elsewhere, read off the ids the column holds ("VST-0004")."""
    out = {}
    for (table, column), ref in links.items():
        col = need(tables.get(table) and tables[table].column(column), f"column {table}.{column}")
        sample = col.lo or (col.values or [""])[0]
        out[ref] = need(re.match(r"^([A-Z0-9]+)-\d+$", str(sample)), f"the id prefix of {ref}")[1]
    return out


def domain_of_templates_prompt(prompt: str) -> tuple[CatalogDomain, str, dict[str, str]]:
    """The domain, the clock and the id prefixes of records other services keep, as an s14 request states them."""
    head = need(re.search(r"templates for the (\w+) service \(([^:()]+): (.*?)\) \(today is (\d{4}-\d\d-\d\d)\)",
                          prompt, re.S), "the service, its sector and description, and today's date")
    domain, refs = domain_of_facts(
        head[1], (head[2], head[3]), head[4],
        tools=_between(prompt, "what each returns):", "What each tool does", "the tools"),
        effects=_between(prompt, "(from the policy):", "Tool graph trajectories:", "what the tools do"),
        rules=_between(prompt, "statement):", "Database (", "the policy rules"),
        tables=_between(prompt, "sample ids):", "What the columns mean", "the database"),
        meanings=_between(prompt, "by these meanings):", "This is group", "what the columns mean"))
    return domain, head[4], refs


def domain_of_facts(name: str, head: tuple[str, str], clock: str, tools: str, effects: str, rules: str, tables: str,
                    meanings: str) -> tuple[CatalogDomain, dict[str, str]]:
    """A domain as a request states it (its tool lines, what each tool does, its rules, its database summary and
    what the columns mean), and the id prefixes of records other services keep."""
    listed, modes = read_tools(tools)
    read = read_tables(tables)
    found = _MEANING.findall(meanings)
    names = {snake(e): e for e, *_ in found}
    said = {(snake(e), c): text for e, c, *_, text in found}
    links = {(snake(e), c): ref for e, c, ref, *_ in found if ref}
    ranges = {(snake(e), c): [json.loads(lo), json.loads(hi)] for e, c, _, lo, hi, _ in found if lo}
    reader = DomainReader(name, listed, modes, read, read_effects(effects, listed), read_rules(rules), head, clock,
                          said, names, links, ranges)
    return reader.domain(), _prefixes(read, links)


def templates(prompt: str) -> dict[str, Any]:
    """This group's templates of the domain the request describes (the group and lengths it asks for)."""
    domain, clock, refs = domain_of_templates_prompt(prompt)
    lo, hi = map(int, need(re.search(r"between (\d+) and (\d+) calls", prompt), "the trajectory lengths").groups())
    first, last, count = map(int, need(re.search(r"give templates (\d+) to (\d+) of (\d+)", prompt), "the group").groups())
    everything = templates_for(domain, count, SEED, lo, hi, clock, refs)
    return {"templates": everything[first - 1:last]}


__all__ = ["Unreadable", "domain_of_facts", "domain_of_templates_prompt", "templates"]
