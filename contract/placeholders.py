"""Placeholders of task templates: `<slot.column>`, `<clock+N>`, `<outK.field>`, resolved to concrete values.
`<outK.field.N.field>` walks into call K's output: `<out3.items.0.order_line_id>` is its first line's id."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

PLACEHOLDER = re.compile(r"<(?:([A-Za-z_]\w*)\.(\w+(?:\.\w+)*)|clock([+-]\d+))>")


class Unresolved(Exception):
    """A placeholder names a slot, column or output that does not exist."""


def _value(match: re.Match, bindings: dict[str, dict[str, Any]], outputs: list[Any], clock: dt.date) -> Any:
    slot, column, days = match.groups()
    if days is not None:
        return (clock + dt.timedelta(days=int(days))).isoformat()
    if slot.startswith("out") and slot[3:].isdigit():
        index = int(slot[3:]) - 1
        if not 0 <= index < len(outputs):
            raise Unresolved(f"<{slot}.{column}>: there is no call {index + 1} output yet")
        out = outputs[index]
        for part in column.split("."):  # a list is read at its first row unless the path gives the index
            if isinstance(out, list) and part.isdigit():
                out = out[int(part)] if int(part) < len(out) else None
                continue
            if isinstance(out, list):
                out = out[0] if out else {}
            if not isinstance(out, dict) or part not in out:
                raise Unresolved(f"<{slot}.{column}>: the output of call {index + 1} has no field {column}")
            out = out[part]
        if out is None and column.split(".")[-1].isdigit():
            raise Unresolved(f"<{slot}.{column}>: the output of call {index + 1} has no field {column}")
        return out
    if slot not in bindings or column not in bindings[slot]:
        raise Unresolved(f"<{slot}.{column}>: no selected value")
    return bindings[slot][column]


def resolve(value: Any, bindings: dict[str, dict[str, Any]], outputs: list[Any], clock: dt.date) -> Any:
    """A lone placeholder keeps its value's type; placeholders inside text become text."""
    if isinstance(value, dict):
        return {k: resolve(v, bindings, outputs, clock) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, bindings, outputs, clock) for v in value]
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value)
    if whole:
        return _value(whole, bindings, outputs, clock)
    return PLACEHOLDER.sub(lambda m: _text(_value(m, bindings, outputs, clock)), value)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# A placeholder someone already wrapped in quotes: '<person.person_id>'.
_QUOTED = re.compile(r"'(<(?:[A-Za-z_]\w*\.\w+|clock[+-]\d+)>)'")


def resolve_sql(sql: str, bindings: dict[str, dict[str, Any]], clock: dt.date) -> str:
    """The one quoting rule: a placeholder in SQL becomes a SQL literal that brings its own quotes, so it
    is written bare; one written inside quotes ('<person.person_id>') is read as the bare placeholder,
    never as ''P-0001''."""
    sql = _QUOTED.sub(r"\1", sql)
    return PLACEHOLDER.sub(lambda m: sql_literal(_value(m, bindings, [], clock)), sql)
