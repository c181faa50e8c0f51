"""Makes an implementation module runnable on its own as an MCP server (what `outputs/mcp_servers/*.py` hold)."""
from __future__ import annotations

BOOTSTRAP = '''

# --- standalone MCP server (added by skiller export) -------------------------------------------
def _serve_standalone(argv=None):
    """Serve TOOLS over MCP stdio against the SQLite file given by --db (changed in place)."""
    import argparse
    import json
    import sqlite3 as _sqlite3

    import anyio
    import mcp.types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

    parser = argparse.ArgumentParser(description=f"{SERVER} MCP server (stdio)")
    parser.add_argument("--db", required=True, help="SQLite database of this server")
    parser.add_argument("--namespace", default="", help="table prefix inside a fused database")
    options = parser.parse_args(argv)
    globals()["NAMESPACE"] = options.namespace
    db = _sqlite3.connect(options.db, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA foreign_keys = ON")

    def reply(text, error):
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[
            types.Tool(name=name, description=spec["description"], input_schema=spec["parameters"],
                       annotations=types.ToolAnnotations(read_only_hint=spec["mode"] == "read"))
            for name, spec in TOOLS.items()])

    async def call_tool(ctx, params):
        spec = TOOLS.get(params.name)
        if spec is None:
            return reply(f"unknown tool {params.name}", True)
        db.execute("SAVEPOINT standalone_call")
        try:
            value = spec["fn"](db, **dict(params.arguments or {}))
        except Exception as exc:  # the call is undone; the server keeps serving
            db.execute("ROLLBACK TO standalone_call")
            db.execute("RELEASE standalone_call")
            return reply(str(exc) if isinstance(exc, ToolError) else f"internal error: {type(exc).__name__}: {exc}", True)
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


if __name__ == "__main__":
    _serve_standalone()
'''


def standalone_server(module_code: str) -> str:
    return module_code.rstrip("\n") + "\n" + BOOTSTRAP
