"""How facts several prompts need are written into them: the database summary (tables, columns, value
sets, ranges, sample ids), the tool list (types, enums, required, what each returns) and policy rules."""
from __future__ import annotations

import json
import re
from typing import Any

from skiller.servers.database import DatabaseSummary


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def database_text(summary: DatabaseSummary) -> str:
    """One line per table: rows, key, each column with its type and values (or range), sample ids."""
    lines = []
    for t in summary.tables:
        cols = []
        for c in t.columns:
            if c.values is not None:
                spread = " in {" + ", ".join(_value(v) for v in c.values) + "}"
            elif c.min is not None:
                spread = f" {_value(c.min)}..{_value(c.max)}"
            else:
                spread = ""
            cols.append(f"{c.name} {c.type or 'ANY'}{spread}" + (f" ({c.nulls} null)" if c.nulls else ""))
        samples = ", ".join(_value(s) for s in t.sample_ids)
        lines.append(f"- {t.name} ({t.rows} rows, key {', '.join(t.primary_key) or 'none'}): " + "; ".join(cols)
                     + (f". Sample ids: {samples}" if samples else ""))
    return "\n".join(lines)


def _param_type(schema: dict[str, Any]) -> str:
    """`type` of an array element's field, with its minimum when it has one."""
    return schema.get("type", "any") + (f" >= {schema['minimum']}" if "minimum" in schema else "")


def _param(name: str, schema: dict[str, Any], required: bool) -> str:
    extra = []
    if schema.get("enum"):
        extra.append("one of " + "|".join(_value(v) for v in schema["enum"]))
    if schema.get("format"):
        extra.append(f"format {schema['format']}")
    for key in ("minimum", "maximum", "default"):
        if key in schema:
            extra.append(f"{key} {_value(schema[key])}")
    if schema.get("range"):
        extra.append(f"range {schema['range']}")
    if schema.get("items"):  # an array of objects (line items): what one element holds, and how many
        props = schema["items"].get("properties", {})
        extra.append("each {" + ", ".join(f"{k}: {_param_type(v)}" for k, v in props.items()) + "}")
    for key in ("minItems", "maxItems"):
        if key in schema:
            extra.append(f"{key} {schema[key]}")
    text = f"{name}: {schema.get('type', 'any')}{'' if required else ' (optional)'}"
    return text + (f" [{'; '.join(extra)}]" if extra else "") + (f" - {schema['description']}" if schema.get("description") else "")


def tools_text(functions: list) -> str:
    """Blueprint functions, one per line: name [mode], description, typed parameters, what it returns."""
    lines = []
    for f in functions:
        params = "; ".join(_param(n, p.model_dump(exclude_none=True), p.required) for n, p in f.parameters.items())
        lines.append(f"- {f.name} [{f.mode}]: {f.description} Parameters: {params or 'none'}. Returns: {f.returns}.")
    return "\n".join(lines)


def rules_text(rules: list) -> str:
    """Policy rules with their machine-checkable fields."""
    lines = []
    for r in rules:
        fields = {k: v for k, v in r.model_dump(exclude={"id", "tool", "statement", "kind"}).items() if v not in (None, [])}
        lines.append(f"- {r.id} on {r.tool} ({r.kind}{', ' + json.dumps(fields, sort_keys=True) if fields else ''}): {r.statement}")
    return "\n".join(lines)


_SECTION = re.compile(r"<!-- TOOL: (\w+) -->\n(.*?)<!-- TOOL_END: \1 -->", re.S)


def _bullets(body: str, heading: str) -> list[str]:
    block = re.search(rf"\*\*{heading}\.\*\*\n((?:- .*\n?)*)", body)
    return block[1].splitlines() if block else []


def tool_effects_text(markdown: str) -> str:
    """What each tool does and the refusals that are not numbered rules (status guards, already paid), as the
    policy words them: a model writing tasks must know the status a write sets, the statuses it accepts, the
    defaults a creation sets and how an amount is priced."""
    lines = []
    for name, body in _SECTION.findall(markdown):
        refusals = [b for b in _bullets(body, "Permission outcomes") if b.startswith("- Rejected: ")
                    and not b.startswith("- Rejected: unknown ids or invalid arguments")]  # said of every tool
        lines += [f"{name}:", *_bullets(body, "Effects"), *refusals]
    return "\n".join(lines)


def attributes_text(entities: list, relationships: list) -> str:
    """`- Entity.attribute (type[, an id of Domain.Record][, range lo..hi]): description`, one line each: the meaning of each
    column, which a task's wording uses (entity and relationship attributes as s02 and s03 describe them)."""
    return "\n".join(f"- {e.name}.{a.name} ({a.type}"
                     + (f", an id of {a.value_from_entity}" if getattr(a, "value_from_entity", None) else "")
                     + (f", range {a.range}" if getattr(a, "range", None) else "")
                     + f"): {a.description}" for e in [*entities, *relationships] for a in e.attributes)


def ranges_text(relationships: list) -> str:
    """`- Record.column (type, range lo..hi): description` for each record column with a stated range, else "none"."""
    ranged = [r.model_copy(update={"attributes": [a for a in r.attributes if getattr(a, "range", None)]})
              for r in relationships]
    return attributes_text([], ranged) or "none"
