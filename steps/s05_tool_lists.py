"""s05: repair a blueprint's function names and formulate its tool list (OpenAI function format)."""
from __future__ import annotations

import re
from typing import Any

from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.steps.s04_blueprints import Blueprint, Function

LEGAL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what chat APIs accept as a function name


class ToolList(Frozen):
    server: str
    tools: list[dict[str, Any]]  # OpenAI function format
    modes: dict[str, str]  # tool name -> read | write


class S05Input(Frozen):
    blueprint: Blueprint


class S05Output(StepOutput):
    blueprint: Blueprint
    tool_list: ToolList


def legal_name(name: str) -> str:
    """`sap.authorize_student` -> `sap_authorize_student`: legal for every chat API."""
    fixed = re.sub(r"[^a-zA-Z0-9_-]", "_", name.strip())[:64]
    return fixed or "tool"


def openai_tool(fn: Function) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for pname, p in fn.parameters.items():
        prop: dict[str, Any] = {"type": p.type, "description": p.description}
        if p.enum:
            prop["enum"] = list(p.enum)
        if p.format:
            prop["format"] = p.format
        if p.default is not None:
            prop["default"] = p.default
        for key in ("items", "minItems", "maxItems"):  # an array parameter (line items)
            if getattr(p, key) is not None:
                prop[key] = getattr(p, key)
        properties[pname] = prop
    required = sorted(n for n, p in fn.parameters.items() if p.required)
    return {"name": fn.name, "description": fn.description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


@step("s05", machine="domain", source="blueprinted", triggers={"list_tools": "tools_listed"})
async def run(inputs: S05Input, ctx: StepContext) -> S05Output:
    functions, seen, renamed = [], set(), 0
    for fn in inputs.blueprint.functions:
        name = fn.name if LEGAL_NAME.match(fn.name) else legal_name(fn.name)
        renamed += name != fn.name
        if name in seen:
            raise StepError("validation", f"s05: {inputs.blueprint.MCP_server_name} defines {name} twice")
        seen.add(name)
        functions.append(fn.model_copy(update={"name": name}))
    blueprint = inputs.blueprint.model_copy(update={"functions": functions})
    tools = ToolList(server=blueprint.MCP_server_name, tools=[openai_tool(f) for f in functions],
                     modes={f.name: f.mode for f in functions})
    return S05Output(blueprint=blueprint, tool_list=tools, payload={"tools": len(functions), "renamed": renamed})
