"""MCP transport over an Environment: its tool table verbatim over stdio or streamable HTTP, calls to env.call."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import structlog
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server

from skiller.servers.environment import Environment, ModuleSource
from skiller.servers.listen import ServeError, listen
from skiller.servers.sandbox import Sandbox, SandboxLimits

__all__ = ["ServeError", "build_mcp_server", "listen", "main", "serve_http", "serve_stdio"]

log = structlog.get_logger(__name__)

# The lowlevel Server takes each tool's JSON Schema verbatim; MCPServer would derive schemas from Python
# signatures, which our tools (living in the sandboxed worker) do not have here. Argument checking stays
# in one place: the worker.


def _version() -> str:
    try:
        return metadata.version("skiller")
    except metadata.PackageNotFoundError:
        return ""


def build_mcp_server(env: Environment, name: str) -> Server[Any]:
    """An MCP server exposing exactly `env.tools` (names, descriptions, schemas); calls go to `env.call`."""
    tools = [types.Tool(name=t.name, description=t.description, input_schema=t.parameters,
                        annotations=types.ToolAnnotations(read_only_hint=t.mode == "read"))
             for t in env.tools]
    schemas = {t.name: t.parameters for t in env.tools}

    async def list_tools(_ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
                         ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)  # a fresh result: the SDK stamps metadata into it

    async def call_tool(_ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
                        ) -> types.CallToolResult:
        # env.call blocks on the worker pipe; run it off the event loop (the env's lock serializes calls).
        result = await anyio.to_thread.run_sync(env.call, params.name, params.arguments or {})
        if not result.ok:
            return types.CallToolResult(content=[types.TextContent(text=result.error or "tool failed")],
                                        is_error=True)
        text = json.dumps(result.value, ensure_ascii=False)
        return types.CallToolResult(content=[types.TextContent(text=text)])

    return Server(name, version=_version(), on_list_tools=list_tools, on_call_tool=call_tool,
                  get_tool_input_schema=schemas.get)


def serve_stdio(env: Environment, name: str) -> None:
    """Serve over stdin/stdout until the client closes the stream (blocks)."""
    server = build_mcp_server(env, name)

    async def run() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(run)


def serve_http(env: Environment, name: str, host: str = "127.0.0.1", port: int = 8000,
               on_ready: Callable[[str], None] | None = None, sock: socket.socket | None = None) -> None:
    """Serve streamable HTTP at http://host:port/mcp until interrupted (blocks).

    The socket is bound before `on_ready(url)` is called, so a client may connect at once (port 0 picks
    a free port; the URL names the real one). A caller may bind it first with `listen`, so a bad host or
    port is reported before the environment starts.
    """
    import uvicorn  # deferred: start-up time; only the HTTP transport needs the ASGI server

    server = build_mcp_server(env, name)
    app = server.streamable_http_app(host=host, streamable_http_path="/mcp")
    sock = sock if sock is not None else listen(host, port)
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}/mcp"
    log.info("mcp.http.listening", url=url, server=name, tools=len(env.tools))
    if on_ready is not None:
        on_ready(url)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


# --- command line: python -m servers.mcp_server ------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m servers.mcp_server",
                                description="Serve implementation module(s) and a SQLite DB over MCP.")
    p.add_argument("--module", action="append", required=True, type=Path,
                   help="implementation module file (repeat for a fused environment)")
    p.add_argument("--namespace", action="append", default=None,
                   help="table namespace per module, in --module order (e.g. library_)")
    p.add_argument("--prefix", action="append", default=None, help="tool-name prefix per module")
    p.add_argument("--db", required=True, type=Path, help="initial SQLite file (never modified)")
    p.add_argument("--name", default=None, help="server name (default: first module's file stem)")
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (0 picks a free one)")
    p.add_argument("--call-timeout", type=float, default=10.0, help="wall-clock seconds per tool call")
    p.add_argument("--cpu-seconds", type=int, default=3600, help="worker CPU budget (RLIMIT_CPU, whole life)")
    p.add_argument("--memory-mb", type=int, default=1024)
    return p


def _per_module(parser: argparse.ArgumentParser, values: list[str] | None, count: int, flag: str) -> list[str]:
    if values is None:
        return [""] * count
    if len(values) != count:
        parser.error(f"{flag} must be given once per --module ({count})")
    return values


def _configure_logging() -> None:
    # stdout belongs to the MCP protocol on stdio: every log line goes to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging()
    count = len(args.module)
    modules = [ModuleSource(server=path.stem, code=path.read_text(encoding="utf-8"), namespace=ns, prefix=px)
               for path, ns, px in zip(args.module, _per_module(parser, args.namespace, count, "--namespace"),
                                       _per_module(parser, args.prefix, count, "--prefix"))]
    name = args.name or args.module[0].stem
    # SIGTERM (uvicorn re-raises it after its graceful shutdown) must unwind the `with` so the worker and
    # its temp dir are cleaned up.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        sock = listen(args.host, args.port) if args.transport == "http" else None
    except ServeError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    sandbox = Sandbox(SandboxLimits(cpu_seconds=args.cpu_seconds, memory_mb=args.memory_mb))
    with Environment.start(modules, args.db.read_bytes(), sandbox, call_timeout=args.call_timeout) as env:
        if sock is None:
            serve_stdio(env, name)
        else:
            serve_http(env, name, host=args.host, port=args.port, sock=sock,
                       on_ready=lambda url: print(f"MCP server ready at {url}", file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
