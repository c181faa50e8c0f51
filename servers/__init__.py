"""Environment runtime: load a domain's implementation and database, execute calls, hash state, serve MCP."""
from skiller.contract.environment import Mode, ToolResult, ToolSpec
from skiller.servers.database import (
    ColumnSummary,
    DatabaseSummary,
    FKViolation,
    IntegrityReport,
    RowChange,
    TableSummary,
    dump_json,
    integrity_report,
    state_diff,
    state_hash,
    summarize,
)
from skiller.servers.environment import Environment, EnvironmentLoadError, ModuleSource
from skiller.servers.pool import EnvironmentPool
from skiller.servers.statehash import StateHasher

_MCP = ("build_mcp_server", "serve_http", "serve_stdio")


def __getattr__(name: str) -> object:
    # The MCP SDK (starlette, uvicorn...) is heavy: import it only when the transport is asked for.
    if name in _MCP:
        from skiller.servers import mcp_server  # deferred: start-up time (see above)

        return getattr(mcp_server, name)
    raise AttributeError(f"module 'servers' has no attribute {name!r}")


__all__ = [
    "ColumnSummary",
    "DatabaseSummary",
    "Environment",
    "EnvironmentLoadError",
    "EnvironmentPool",
    "FKViolation",
    "IntegrityReport",
    "Mode",
    "ModuleSource",
    "RowChange",
    "StateHasher",
    "TableSummary",
    "ToolResult",
    "ToolSpec",
    "build_mcp_server",
    "dump_json",
    "integrity_report",
    "serve_http",
    "serve_stdio",
    "state_diff",
    "state_hash",
    "summarize",
]
