"""The environment contract: what every implementation module (builtin-compiled or
model-written) provides, and what the runtime gives back for a tool call.

An implementation module is plain Python (stdlib only) and must define:

    SERVER = "Hospital"             # PascalCase server name
    CLOCK = "2026-03-02"            # fixed simulation date (ISO); never read the wall clock
    NAMESPACE = ""                  # table prefix; the runtime sets it (e.g. "hospital_") in fused DBs
    def _t(name: str) -> str        # table name for an unprefixed table; "person" is never prefixed
    class ToolError(Exception)      # raised for bad arguments and policy violations (one clear line)
    TOOLS: dict[str, dict]          # name -> {"fn": callable, "mode": "read"|"write",
                                    #          "description": str, "parameters": JSON Schema object}
    def <tool>(db: sqlite3.Connection, **arguments) -> dict | list   # one per tool

Rules for tool functions: SQL only through `db` and `_t(...)`; deterministic (CLOCK, ids derived
from DB state such as max id + 1, stable ORDER BY, floats rounded to 2 decimals); bad arguments
and policy violations raise ToolError before any write. The runtime wraps every call in a
SAVEPOINT and rolls it back on any exception, so a failed call never changes state.

Database conventions: one table per entity and per record (relationship), snake_case names;
primary key `<table>_id` (TEXT, e.g. "APT-0007"); `person(person_id, first_name, last_name,
email, phone, date_of_birth, city)` is shared by every domain; the role table (e.g. `patient`)
has `person_id` as primary and foreign key; records carry `person_id` and `<target>_id` foreign
keys. Booleans are stored as 0/1 integers, dates as ISO strings.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Mode = Literal["read", "write"]


@lru_cache(maxsize=4096)  # called per row and per task on a handful of names
def table_name(entity: str) -> str:
    """The snake_case table of a PascalCase entity (InsurancePolicy -> insurance_policy)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", entity).lower()


class ModuleSource(BaseModel):
    """One implementation module of an environment: its code, table namespace and tool-name prefix."""

    model_config = ConfigDict(frozen=True)
    server: str
    code: str
    namespace: str = ""
    prefix: str = ""


class ToolSpec(BaseModel):
    """One tool as the outside world sees it (OpenAI function format plus our mode tag)."""

    model_config = ConfigDict(frozen=True)
    name: str
    description: str
    mode: Mode
    parameters: dict[str, Any]  # JSON Schema object: {"type": "object", "properties", "required"}

    def openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


class ToolResult(BaseModel):
    """Outcome of one call. `error` is one line; `value` is the JSON-able return."""

    model_config = ConfigDict(frozen=True)
    ok: bool
    value: Any = None
    error: str | None = None
