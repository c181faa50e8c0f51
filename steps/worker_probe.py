"""The runtime-contract probe of s09: the generated module, loaded by the real worker that serves it in
every later step, answers one call of each tool without an internal error and in the return shape task
placeholders (`<outK.field>`) read. Tool errors are fine here: the probe's arguments may break a rule."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from skiller.contract.environment import ModuleSource
from skiller.servers.database import DatabaseSummary
from skiller.servers.environment import Environment, EnvironmentLoadError

# Errors the worker gives for a broken contract, not for a refused call: an exception other than
# ToolError (e.g. a refused BEGIN/PRAGMA, rows read by name without setting row_factory), a read tool
# that wrote, a result that is not JSON, a crash or a timeout.
_CONTRACT_ERRORS = ("internal error in ", "environment is not running", "wall-clock limit; worker killed",
                    "worker stopped", "environment worker ")


def sample_arguments(schema: dict[str, Any], summary: DatabaseSummary, clock: dt.date) -> dict[str, Any]:
    """Plausible values for the required parameters: an existing id for `*_id`, the first enum value,
    the clock for dates, the minimum (or 1) for numbers."""
    samples = {c.name: t.sample_ids[0] for t in summary.tables if t.sample_ids and len(t.primary_key) == 1
               for c in t.columns if c.name == t.primary_key[0]}
    props = schema.get("properties") or {}
    args: dict[str, Any] = {}
    for name in schema.get("required") or []:
        prop = props.get(name) or {}
        kind = prop.get("type")
        if prop.get("enum"):
            args[name] = prop["enum"][0]
        elif name in samples:
            args[name] = samples[name]
        elif prop.get("format") == "date" or name.endswith("date"):
            args[name] = (clock + dt.timedelta(days=7)).isoformat()
        elif kind in ("integer", "number"):
            args[name] = prop.get("minimum", 1)
        elif kind == "boolean":
            args[name] = False
        else:
            args[name] = "test"
    return args


def _shape_problem(value: Any) -> str | None:
    if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        return None
    return f"returned {type(value).__name__} {json.dumps(value)[:80]}, not a dict or a list of dicts"


def probe(server: str, module: str, tools: list[dict[str, Any]], database: bytes, summary: DatabaseSummary,
          clock: dt.date, sandbox) -> list[str]:
    """Contract failures, one line each (empty when each tool answers through the worker as it must)."""
    try:
        env = Environment.start([ModuleSource(server=server, code=module)], database, sandbox=sandbox)
    except EnvironmentLoadError as exc:
        return [f"the worker cannot load impl.py: {exc}"]
    problems = []
    with env:
        for tool in tools:
            args = sample_arguments(tool["parameters"], summary, clock)
            result = env.call(tool["name"], args)
            call = f"{tool['name']}({json.dumps(args, sort_keys=True)})"
            if not result.ok and any(marker in (result.error or "") for marker in _CONTRACT_ERRORS):
                problems.append(f"{call}: {result.error}")
            elif result.ok and (shape := _shape_problem(result.value)):
                problems.append(f"{call}: {shape}")
            env.reset()  # each probe call starts from the initial database
    return problems
