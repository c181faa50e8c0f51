"""Makes implementation modules runnable on their own as MCP servers (what `outputs/mcp_servers/*.py` hold).

A domain's server is its module verbatim plus a bootstrap; a fusion's server embeds every member's
module (loaded under its table namespace, tools under its name prefix) plus the same bootstrap. Each
serves over stdio against `<Server>.sqlite` beside it, or the file given by `--db`.
"""
from __future__ import annotations

from skiller.contract.environment import ModuleSource

__all__ = ["fused_server", "standalone_server"]

BOOTSTRAP = '''

# --- standalone MCP server (added by skiller export) -------------------------------------------
def _serve_standalone(members, argv=None):
    """Serve the members' tools over MCP stdio against a SQLite file (changed in place).

    members: (module namespace dict, table namespace, tool-name prefix) per implementation module.
    """
    import argparse
    import json
    import os
    import sqlite3 as _sqlite3

    import anyio
    import mcp.types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

    here = os.path.dirname(os.path.abspath(__file__))
    default_db = os.path.join(here, os.path.splitext(os.path.basename(__file__))[0] + ".sqlite")
    parser = argparse.ArgumentParser(description=f"{SERVER} MCP server (stdio)")
    parser.add_argument("--db", default=default_db, help=f"SQLite database of this server (default: {default_db})")
    options = parser.parse_args(argv)
    if not os.path.isfile(options.db):  # sqlite would create an empty file and every call would fail
        parser.error(f"database file {options.db} does not exist (skiller export writes it beside this server)")
    tools = {}
    for module, namespace, prefix in members:
        module["NAMESPACE"] = namespace  # tables resolve through _t(), which reads it at call time
        for name, spec in module["TOOLS"].items():
            tools[prefix + name] = dict(spec, error=module["ToolError"])
    db = _sqlite3.connect(options.db, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA foreign_keys = ON")

    def reply(text, error):
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[
            types.Tool(name=name, description=spec["description"], input_schema=spec["parameters"],
                       annotations=types.ToolAnnotations(read_only_hint=spec["mode"] == "read"))
            for name, spec in tools.items()])

    async def call_tool(ctx, params):
        spec = tools.get(params.name)
        if spec is None:
            return reply(f"unknown tool {params.name}", True)
        db.execute("SAVEPOINT standalone_call")
        try:
            value = spec["fn"](db, **dict(params.arguments or {}))
        except Exception as exc:  # the call is undone; the server keeps serving
            db.execute("ROLLBACK TO standalone_call")
            db.execute("RELEASE standalone_call")
            known = isinstance(exc, spec["error"])
            return reply(str(exc) if known else f"internal error: {type(exc).__name__}: {exc}", True)
        db.execute("RELEASE standalone_call")
        result = reply(json.dumps(value, ensure_ascii=False, sort_keys=True), False)
        result.structured_content = value if isinstance(value, dict) else {"result": value}
        return result

    server = Server(SERVER, on_list_tools=list_tools, on_call_tool=call_tool)

    async def main():
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        db.close()
'''

DOMAIN_MAIN = '''

if __name__ == "__main__":
    _serve_standalone([(globals(), "", "")])
'''

FUSION_HEAD = '''"""{name} MCP server: the fusion of {members}, exported by skiller.

One SQLite database holds every member's tables under its namespace ({namespaces}) and the shared
`person` table; each member's tools are served under the same prefix.
Run: `python {name}.py` (serves {name}.sqlite beside this file) or `python {name}.py --db other.sqlite`.
"""
import sys
import types as _types

SERVER = "{name}"
'''

FUSION_LOADER = '''

def _load_member(index, server, source):
    """Run one member's module source as its own module (its globals stay apart from the others')."""
    module = _types.ModuleType(f"skiller_member_{index}_{server}")
    sys.modules[module.__name__] = module
    exec(compile(source, f"<{server}>", "exec"), module.__dict__)
    return module.__dict__


if __name__ == "__main__":
    _serve_standalone([(_load_member(i, server, source), namespace, prefix)
                       for i, (server, namespace, prefix, source) in enumerate(MEMBERS)])
'''


def standalone_server(module_code: str) -> str:
    """A domain's module, runnable as `python X.py [--db X.sqlite]`."""
    return module_code.rstrip("\n") + "\n" + BOOTSTRAP + DOMAIN_MAIN


def _literal(source: str) -> str:
    """The source as a parenthesized run of line literals: exact, deterministic and still readable."""
    lines = source.splitlines(keepends=True) or [""]
    return "(\n" + "".join(f"    {line!r}\n" for line in lines) + ")"


def fused_server(name: str, modules: list[ModuleSource]) -> str:
    """A fused environment's server: every member module embedded, loaded under its namespace and prefix."""
    head = FUSION_HEAD.format(name=name, members=", ".join(m.server for m in modules),
                              namespaces=", ".join(f"{m.namespace}*" for m in modules))
    members = "".join(f"    ({m.server!r}, {m.namespace!r}, {m.prefix!r}, {_literal(m.code)}),\n" for m in modules)
    return head + "\nMEMBERS = [  # (server, table namespace, tool-name prefix, module source)\n" + members + "]\n" \
        + BOOTSTRAP + FUSION_LOADER
