"""τ²-bench export, tools half: `tools.py`, a toolkit with one typed, documented method per tool."""
from __future__ import annotations

import keyword
import textwrap
from typing import Any

from skiller.contract.environment import ToolSpec
from skiller.formats.common import ExportError, py_literal

# Attributes of τ²-bench's ToolKitBase (and of ours) a tool name must not replace.
RESERVED = {"db", "tools", "use_tool", "get_tools", "has_tool", "tool_type", "tool_mutates_state", "update_db",
            "get_db_hash", "get_statistics", "is_discoverable", "get_discoverable_tools", "has_discoverable_tool",
            "to_sqlite"}
_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


def annotation(schema: Any) -> str:
    """The Python type τ²-bench should read from the signature for a JSON Schema (a subset)."""
    if not isinstance(schema, dict):
        return "Any"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in enum):
        return f"Literal[{', '.join(py_literal(v) for v in enum)}]"
    kinds = schema.get("type")
    options = kinds if isinstance(kinds, list) else [kinds]
    names = []
    for kind in options:
        if kind in _SCALARS:
            names.append(_SCALARS[kind])
        elif kind == "array":
            names.append(f"List[{annotation(schema.get('items'))}]")
        elif kind == "object":
            names.append("Dict[str, Any]")
        else:
            return "Any"
    non_null = [n for n in names if n != "None"]
    if not non_null:
        return "Any"
    core = non_null[0] if len(non_null) == 1 else f"Union[{', '.join(non_null)}]"
    return f"Optional[{core}]" if "None" in names else core


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _doc_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _check_name(name: str, what: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ExportError(f"{what} {name!r} is not a usable Python name, so τ²-bench cannot call it")


def tool_method(tool: ToolSpec) -> str:
    """One toolkit method: signature from the JSON Schema, Google-style docstring, a forwarding body."""
    _check_name(tool.name, "tool")
    if tool.name in RESERVED:
        raise ExportError(f"tool {tool.name!r} would replace ToolKitBase.{tool.name}")
    props: dict[str, Any] = tool.parameters.get("properties") or {}
    required = [p for p in tool.parameters.get("required") or [] if p in props]
    ordered = required + [p for p in props if p not in required]
    params = []
    for name in ordered:
        _check_name(name, f"parameter of {tool.name}:")
        if name == "self":
            raise ExportError(f"parameter 'self' of {tool.name} cannot be a method parameter")
        kind = annotation(props[name])
        if name in required:
            params.append(f"{name}: {kind}")
        else:
            params.append(f"{name}: {kind if kind.startswith('Optional[') or kind == 'Any' else f'Optional[{kind}]'} = None")
    args_doc = []
    for name in ordered:
        spec = props[name] if isinstance(props[name], dict) else {}
        text = _one_line(spec.get("description")) or name
        if "default" in spec:
            text += f" (default: {spec['default']!r})"
        args_doc.append(f"    {name}: {text}")
    description = textwrap.dedent(tool.description).strip() or tool.name
    doc = [description, ""]
    if args_doc:
        doc += ["Args:", *args_doc, ""]
    doc += ["Returns:", "    The result as a JSON string.", "",
            "Raises:", "    ToolCallError: the call was refused (bad arguments, a policy rule, an unknown id)."]
    body = textwrap.indent(_doc_text("\n".join(doc)), " " * 8)
    kind = "WRITE" if tool.mode == "write" else "READ"
    forwarded = "{" + ", ".join(f"{py_literal(n)}: {n}" for n in ordered) + "}"
    return "\n".join([
        f"    @is_tool(ToolType.{kind})",
        f"    def {tool.name}({', '.join(['self', *params])}) -> str:",
        f'        """{body.lstrip()}',
        '        """',
        f"        return self._run({py_literal(tool.name)}, {forwarded})",
    ])


def tools_module(environment: str, toolkit_class: str, db_class: str, modules: list[dict[str, str]],
                 tools: list[ToolSpec]) -> str:
    """Source of `tools.py`."""
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ExportError(f"{environment} defines a tool twice")
    reads = sum(t.mode == "read" for t in tools)
    header = f'''"""Tools of the {environment} environment, exported by Skiller as a τ²-bench toolkit.

Each method forwards to the Skiller implementation module(s) beside this file, which run on an
in-memory SQLite copy of the database (see `_skiller_runtime.py`). {reads} read tools, {len(tools) - reads} write tools;
every tool that changes the database is tagged WRITE, so τ²-bench replays it when it rebuilds a state.
A refused call raises `ToolCallError` (τ²-bench reports it to the agent as "Error: ...").
"""
from typing import Any, Dict, List, Literal, Optional, Union

try:
    from tau2.environment.toolkit import ToolKitBase, ToolType, is_tool
except ImportError:  # τ²-bench is not installed: stand-ins with the same surface
    from ._tau2_compat import ToolKitBase, ToolType, is_tool

from ._skiller_runtime import Runtime, ToolCallError
from .data_model import PRIMARY_KEYS, SQLITE_SCHEMA, {db_class}

# The implementation modules, with the table namespace and tool-name prefix each runs under.
MODULES = {py_literal(modules)}
TOOL_NAMES = {py_literal(sorted(names))}

__all__ = ["{toolkit_class}", "ToolCallError"]


class {toolkit_class}(ToolKitBase):
    """The {environment} tools over a `{db_class}`."""

    db: {db_class}

    def __init__(self, db: {db_class}) -> None:
        super().__init__(db)
        self._runtime = Runtime(MODULES, SQLITE_SCHEMA, PRIMARY_KEYS, TOOL_NAMES)

    def _run(self, name: str, arguments: Dict[str, Any]) -> str:
        # A parameter left at None was not given: the implementation applies its own default.
        return self._runtime.call(self, name, {{k: v for k, v in arguments.items() if v is not None}})

    def to_sqlite(self, path: str) -> Any:
        """Write the current state as a SQLite file, the layout Skiller's state hash reads."""
        return self._runtime.to_sqlite(self, path)
'''
    return header + "".join("\n" + tool_method(t) + "\n" for t in tools)
