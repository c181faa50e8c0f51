"""Builtin code model: compiles a catalog domain into its implementation module (the environment contract)."""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, replace
from typing import Any

from skiller.contract.environment import table_name
from skiller.world.catalog.model import (
    CatalogAttribute,
    CatalogDomain,
    CatalogEntity,
    CatalogPricing,
    CatalogRecord,
    CatalogRule,
    CatalogTool,
)

__all__ = [
    "PAYMENT_METHODS", "READ_KINDS", "SEARCH_LIMIT", "Check", "amount_source", "browse_ceiling", "charged", "checks",
    "choices", "fee_check", "find", "formula", "id_column", "implementation_module", "label", "linked", "owned",
    "pay_field", "pricing", "snake", "tool_parameters", "words",
]

PAYMENT_METHODS = ["credit_card", "debit_card", "bank_transfer"]
READ_KINDS = {"get_profile", "get", "search", "list_records", "summary", "browse"}
SEARCH_LIMIT = 20
# Words that mark a target attribute as the price a record is billed at.
_MONEY_WORDS = ("fee", "price", "cost", "amount", "premium", "fare", "rate", "charge", "tuition", "rent", "total")


# ---------------------------------------------------------------- naming shared by db/code/test/policy generators
snake = table_name  # PascalCase -> snake_case, the contract's table naming


def words(name: str) -> str:
    """PascalCase -> lower-case words (InsurancePolicy -> insurance policy)."""
    return snake(name).replace("_", " ")


def label(name: str) -> str:
    """PascalCase -> a sentence-case label for messages (InsurancePolicy -> Insurance policy)."""
    text = words(name)
    return text[:1].upper() + text[1:]


def id_column(name: str) -> str:
    return f"{snake(name)}_id"


def find(domain: CatalogDomain, name: str) -> CatalogEntity | CatalogRecord:
    for item in [*domain.entities, *domain.records]:
        if item.name == name:
            return item
    raise KeyError(f"{domain.name}: no entity or record {name}")


def attribute(item: CatalogEntity | CatalogRecord, name: str) -> CatalogAttribute | None:
    return next((a for a in item.attributes if a.name == name), None)


def choices(attr: CatalogAttribute) -> list[Any] | None:
    """The distinct values of a `choice` generator, in catalog order (None for other generators)."""
    values = attr.gen.get("choice") if isinstance(attr.gen, dict) else None
    if not isinstance(values, list):
        return None
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def allowed_values(item: CatalogEntity | CatalogRecord, attr: CatalogAttribute) -> list[Any] | None:
    """Enum of an attribute: a record's statuses for its status field, else the choice values."""
    if isinstance(item, CatalogRecord) and attr.name == item.status_field:
        return list(item.statuses)
    return choices(attr)


_JSON_TYPE = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "string"}


def attribute_schema(item: CatalogEntity | CatalogRecord, attr: CatalogAttribute) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _JSON_TYPE[attr.type], "description": attr.description}
    if attr.type == "date":
        schema["format"] = "date"
        schema["description"] = f"{attr.description} (YYYY-MM-DD)"
    enum = allowed_values(item, attr)
    if enum and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in enum) and attr.type != "bool":
        schema["enum"] = enum
    return schema


def _id_schema(name: str, prefix: str) -> dict[str, Any]:
    return {"type": "string", "description": f"{label(name)} id, e.g. {prefix}-0001"}


def _person_schema(domain: CatalogDomain) -> dict[str, Any]:
    return {"type": "string", "description": f"The {words(domain.role)}'s person id, e.g. P-0001"}


def owned(domain: CatalogDomain, tool: CatalogTool) -> bool:
    """Whether an ownership rule guards the tool: it then takes the acting person's id besides the record's."""
    return any(r.tool == tool.name and r.kind == "ownership" for r in domain.rules)


def tool_parameters(domain: CatalogDomain, tool: CatalogTool) -> dict[str, Any]:
    """The JSON Schema object of a tool's arguments (shared by code, tests and policy)."""
    props: dict[str, Any] = {}
    required: list[str] = []
    item = find(domain, tool.entity) if tool.entity else None
    if tool.kind == "get_profile":
        props["person_id"] = _person_schema(domain)
        required.append("person_id")
    elif tool.kind in ("get", "set_status", "update", "pay"):
        assert item is not None
        props[id_column(item.name)] = _id_schema(item.name, item.id_prefix)
        required.append(id_column(item.name))
        if owned(domain, tool):  # who acts: the record must be theirs
            props["person_id"] = {"type": "string", "description": f"The acting {words(domain.role)}'s person id "
                                  f"(the owner of the {words(item.name)}), e.g. P-0001"}
            required.append("person_id")
    elif tool.kind in ("list_records", "summary"):
        assert isinstance(item, CatalogRecord)
        props["person_id"] = _person_schema(domain)
        required.append("person_id")
        status = attribute(item, item.status_field)
        props[item.status_field] = {"type": "string", "enum": list(item.statuses),
                                    "description": (status.description if status else "Status") + " (optional filter)"}
    elif tool.kind == "create":
        assert isinstance(item, CatalogRecord)
        target = find(domain, item.target)
        props["person_id"] = _person_schema(domain)
        props[id_column(target.name)] = _id_schema(target.name, target.id_prefix)
        required += ["person_id", id_column(target.name)]
    if tool.kind == "browse":
        assert item is not None and tool.amount_field
        ceiling = attribute_schema(item, attribute(item, tool.amount_field))  # type: ignore[arg-type]
        ceiling.pop("enum", None)
        props[browse_ceiling(tool)] = {**ceiling, "description": f"At most this {words(tool.amount_field)} (optional filter)"}
    if tool.kind in ("search", "create", "update", "browse"):
        assert item is not None
        for name in tool.fields:
            attr = attribute(item, name)
            if attr is None:
                raise ValueError(f"{domain.name}: tool {tool.name} names unknown field {name}")
            props[name] = attribute_schema(item, attr)
            if tool.kind in ("search", "browse"):
                props[name]["description"] += " (optional filter)"
        if tool.kind == "create" or (tool.kind == "update" and len(tool.fields) == 1):
            required += list(tool.fields)
    if tool.kind == "pay":
        props["payment_method"] = {"type": "string", "enum": list(PAYMENT_METHODS), "description": "How the amount is paid"}
        required.append("payment_method")
    # sorted like the s05 tool list, so the implementation and the published list agree exactly
    return {"type": "object", "properties": props, "required": sorted(required)}


def amount_source(domain: CatalogDomain, record: CatalogRecord, amount_field: str) -> tuple[str | None, float]:
    """Where a new record's amount comes from: (target column, fallback).

    Rule: the target entity's attribute of the same name; else the target's first
    money attribute (a `money` generator, or a float whose name says fee/price/cost...);
    else no column and the fallback, the midpoint of the amount attribute's own range.
    """
    target = find(domain, record.target)
    numeric = [a for a in target.attributes if a.type in ("float", "int")]
    same = next((a for a in numeric if a.name == amount_field), None)
    money = next((a for a in numeric if "money" in a.gen), None)
    worded = next((a for a in numeric if a.type == "float" and any(w in a.name for w in _MONEY_WORDS)), None)
    column = (same or money or worded).name if (same or money or worded) else None
    attr = attribute(record, amount_field)
    fallback = 0.0
    if attr is not None:
        rng = attr.gen.get("money") or attr.gen.get("int")
        if isinstance(rng, list) and len(rng) == 2:
            fallback = round((float(rng[0]) + float(rng[1])) / 2, 2)
    return column, fallback


def pricing(domain: CatalogDomain, rec: CatalogRecord) -> CatalogPricing | None:
    """How the record's amount follows its target's price: the catalog's `pricing`, else what its
    create tool does (copy the target's price; pay tools just read the stored amount)."""
    if rec.pricing is not None:
        return rec.pricing
    for tool in domain.tools:
        if tool.kind == "create" and tool.entity == rec.name and tool.amount_field \
                and tool.amount_field not in tool.fields and attribute(rec, tool.amount_field) is not None:
            column, _ = amount_source(domain, rec, tool.amount_field)
            if column:
                return CatalogPricing(amount=tool.amount_field, price=column)
    return None


def charged(domain: CatalogDomain, tool: CatalogTool) -> CatalogPricing | None:
    """The pricing a write tool applies to the amount it sets: a create whose amount is priced by
    quantity or a fixed charge, or an update that changes the quantity (the amount follows it)."""
    item = find(domain, tool.entity) if tool.entity else None
    if not isinstance(item, CatalogRecord) or item.pricing is None or tool.kind not in ("create", "update"):
        return None
    price = item.pricing
    if price.amount in tool.fields or price.amount in tool.defaults:
        return None  # the caller (or the catalog) names the amount itself
    if tool.kind == "create":
        if tool.amount_field != price.amount or (price.quantity and price.quantity not in tool.fields):
            return None
        return price if price.quantity or price.fixed else None
    return price if price.quantity and price.quantity in tool.fields else None


def browse_ceiling(tool: CatalogTool) -> str:
    """The optional ceiling argument of a browse tool: `max_<amount_field>`."""
    return f"max_{tool.amount_field}"


def linked(domain: CatalogDomain, rec: CatalogRecord) -> bool:
    """Whether `rec` names another record (a refund naming a payment) rather than a catalogue entity."""
    return any(r.name == rec.target for r in domain.records)


def pay_field(tool: CatalogTool) -> str:
    return tool.fields[0] if tool.fields else "payment_status"


def rule_subject(domain: CatalogDomain, tool: CatalogTool, rule: CatalogRule) -> str:
    """Whose value a rule reads: 'arg' (a tool argument), 'row' (the row the tool acts on),
    'target' (the target entity row: the create's target, or the acted-on record's target),
    'person' (the person's other records, for max_active on a create), 'member' (the acting person's
    profile row: the role table, for attribute rules)."""
    item = find(domain, tool.entity or "") if tool.entity else None
    if rule.kind in ("max_active", "no_outstanding"):
        return "person" if tool.kind == "create" else "row"
    if rule.kind == "member_attr":
        return "member"
    if rule.kind == "tier_limit":
        return "arg"
    if rule.kind == "ownership":
        return "owner"
    if rule.kind == "computed_fee":
        return "arg" if rule.field in tool_parameters(domain, tool)["properties"] else "row"
    if rule.kind in ("value_range", "date_window", "lead_time") and rule.field in tool_parameters(domain, tool)["properties"]:
        return "arg"
    if tool.kind == "create":
        return "target"
    if isinstance(item, CatalogRecord) and rule.entity == item.target and rule.entity != item.name:
        return "target"
    if isinstance(item, CatalogRecord) and rule.entity is None and rule.field and attribute(item, rule.field) is None \
            and attribute(find(domain, item.target), rule.field) is not None:
        return "target"
    return "row"


@dataclass(frozen=True)
class Check:
    """One condition a write tool verifies before writing, in a form that code (Python),
    tests (SQL) and data generation (forced rows) all derive from.

    kind: status_in (field in values) | eq (field == values[0]) | ne (field != values[0]) |
          date_range (field within clock + [lo, hi] days) | num_range (field within [lo, hi]) |
          count_lt (the person's rows of `table` with status in values number < limit) |
          owner (the acted-on row's person_id is the `person_id` argument; subject "owner")
    A check with `percent` bounds a computed fee (percent% of `field`): lo/hi bound `field` itself, so
    data, tests and tasks treat it as a range; the code computes and returns the fee.
    A check with `when` holds trivially for a person whose profile attribute differs: a tier rule
    becomes one check per tier, tightest limit first.
    """

    label: str  # rule id, or "guard" (allowed from-statuses) / "paid" (already paid)
    subject: str  # arg | row | target | person
    kind: str
    field: str | None = None
    values: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None
    limit: int | None = None
    table: str | None = None  # count_lt: the counted table
    key: str | None = None  # count_lt: its id column
    statement: str = ""
    optional: bool = False  # an optional argument: absent means nothing to check
    when: tuple[str, Any] | None = None  # (profile attribute, value): the check applies to that tier only
    percent: float | None = None  # a computed fee: percent% of `field`

    @property
    def is_rule(self) -> bool:
        return self.label not in ("guard", "paid")


def _rule_checks(domain: CatalogDomain, tool: CatalogTool, rule: CatalogRule) -> list[Check]:
    """The checks of one rule: one, or one per tier for a tier_limit (tightest first)."""
    if rule.kind != "tier_limit":
        return [_rule_check(domain, tool, rule)]
    optional = rule.field not in tool_parameters(domain, tool)["required"]
    tiers = sorted(rule.limits.items(), key=lambda kv: (kv[1], kv[0]))
    return [Check(rule.id, "arg", "num_range", rule.field, hi=limit, statement=rule.statement, optional=optional,
                  when=(rule.attribute or "", tier)) for tier, limit in tiers]


def _rule_check(domain: CatalogDomain, tool: CatalogTool, rule: CatalogRule) -> Check:
    subject = rule_subject(domain, tool, rule)
    params = tool_parameters(domain, tool)
    optional = subject == "arg" and rule.field not in params["required"]
    common = {"label": rule.id, "subject": subject, "statement": rule.statement, "field": rule.field, "optional": optional}
    if rule.kind in ("max_active", "no_outstanding"):
        rec = find(domain, rule.entity or tool.entity or "")
        assert isinstance(rec, CatalogRecord), f"{rule.id}: {rule.kind} needs a record"
        limit = rule.limit if rule.kind == "max_active" else 1
        return Check(**{**common, "field": rec.status_field}, kind="count_lt", values=tuple(rule.statuses),
                     limit=limit, table=snake(rec.name), key=id_column(rec.name))
    if rule.kind == "member_attr":
        attr = next((a for a in domain.role_attributes if a.name == rule.field), None)
        assert attr is not None, f"{rule.id}: {rule.field} is not a profile attribute"
        if rule.statuses:
            return Check(**common, kind="status_in", values=tuple(rule.statuses))
        return Check(**common, kind="date_range" if attr.type == "date" else "num_range", lo=rule.min, hi=rule.max)
    if rule.kind == "value_range":
        return Check(**common, kind="num_range", lo=rule.min, hi=rule.max)
    if rule.kind == "ownership":
        return Check(**{**common, "field": "person_id", "optional": False}, kind="owner")
    if rule.kind == "computed_fee":
        pct = float(rule.percent or 0)
        base = lambda fee: None if fee is None else round(fee * 100 / pct, 2)  # noqa: E731 - the fee's bound on `field`
        return Check(**common, kind="num_range", lo=base(rule.min), hi=base(rule.max), percent=pct)
    if rule.kind == "date_window":
        return Check(**common, kind="date_range", lo=rule.min, hi=rule.max)
    if rule.kind == "lead_time":
        return Check(**common, kind="date_range", lo=rule.min if rule.min is not None else 0)
    if rule.kind == "target_flag":
        return Check(**common, kind="eq", values=(rule.equals,))
    if rule.kind == "requires_status":
        owner = find(domain, rule.entity) if rule.entity else (
            find(domain, find(domain, tool.entity or "").target) if subject == "target" else find(domain, tool.entity or ""))  # type: ignore[union-attr]
        sf = owner.status_field if isinstance(owner, CatalogRecord) else "status"
        return Check(**{**common, "field": sf}, kind="status_in", values=tuple(rule.statuses))
    raise ValueError(f"{domain.name}: unknown rule kind {rule.kind}")


def checks(domain: CatalogDomain, tool: CatalogTool) -> list[Check]:
    """A write tool's checks in the order they run (after argument and existence validation):
    requires_status rules, the generic guards, then the other rules in catalog order."""
    rules = [r for r in domain.rules if r.tool == tool.name]
    # whose record it is comes first: nothing about another person's record is disclosed by a later check
    first = [_rule_check(domain, tool, r) for r in rules if r.kind == "ownership"]
    first += [_rule_check(domain, tool, r) for r in rules if r.kind == "requires_status"]
    rest = [c for r in rules if r.kind not in ("requires_status", "ownership") for c in _rule_checks(domain, tool, r)]
    guards: list[Check] = []
    item = find(domain, tool.entity) if tool.entity else None
    if tool.kind in ("set_status", "update", "pay") and isinstance(item, CatalogRecord):
        if tool.from_statuses:
            guards.append(Check("guard", "row", "status_in", item.status_field, tuple(tool.from_statuses)))
        elif tool.kind == "set_status" and tool.to:
            guards.append(Check("guard", "row", "ne", item.status_field, (tool.to,)))
    if tool.kind == "pay":
        guards.append(Check("paid", "row", "ne", pay_field(tool), (tool.to,)))

    def implied(guard: Check) -> bool:  # an earlier status rule already admits only rows the guard admits
        for rule in first:
            if rule.subject == "row" and rule.field == guard.field:
                if guard.kind == "status_in" and set(rule.values) <= set(guard.values):
                    return True
                if guard.kind == "ne" and guard.values[0] not in rule.values:
                    return True
        return False

    return [*first, *[g for g in guards if not implied(g)], *rest]


def fee_check(domain: CatalogDomain, tool: CatalogTool) -> Check | None:
    """The computed fee a write tool charges and returns (`fee`), if a rule sets one."""
    return next((c for c in checks(domain, tool) if c.percent is not None), None)


# ---------------------------------------------------------------- rendering helpers
def lit(value: Any) -> str:
    """A Python literal for JSON-like data (double-quoted strings, True/False/None)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {type(value).__name__}")


def block(value: Any, indent: int, column: int | None = None, width: int = 100) -> str:
    """Like lit() but breaks dicts/lists over lines (indented from `indent`) when they do not fit."""
    flat = lit(value)
    start = indent if column is None else column
    if start + len(flat) <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{lit(k)}: {block(v, indent + 4, indent + 4 + len(lit(k)) + 2, width)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{block(v, indent + 4, None, width)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + " " * indent + "]"


def _int(x: float | None) -> int:
    return int(x) if x is not None else 0


_PRELUDE = '''"""__SERVER__ environment (Skiller builtin implementation).

__DESCRIPTION__

Implementation module compiled by the Skiller builtin provider from the catalog and the
policy. Tool functions take a sqlite3 connection and keyword arguments; they validate every
argument and policy rule before writing, and raise ToolError with one clear line otherwise.
`skiller export` adds an MCP bootstrap: `python __FILE__ --db db.sqlite` serves the tools (stdio).
"""
from __future__ import annotations

import datetime
import math
import sqlite3
from typing import Any, NoReturn

SERVER = "__SERVER__"
CLOCK = "__CLOCK__"
NAMESPACE = ""

# Boolean columns per table: stored as 0/1, returned as True/False.
BOOL_COLUMNS: dict[str, frozenset[str]] = __BOOLS__


def _t(name: str) -> str:
    """Table name for an unprefixed table; the shared `person` table is never prefixed."""
    return name if name == "person" else NAMESPACE + name


class ToolError(Exception):
    """A bad argument or a policy violation, reported to the caller as one line."""


def _days(n: int) -> str:
    """The ISO date n days after CLOCK (ISO dates compare correctly as strings)."""
    return (datetime.date.fromisoformat(CLOCK) + datetime.timedelta(days=n)).isoformat()


def _violation(rule_id: str, statement: str) -> NoReturn:
    raise ToolError(f"Policy violation [{rule_id}]: {statement}")


# ---------------------------------------------------------------- argument validation
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def _check_args(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validate arguments against the tool's JSON Schema; returns every parameter (None when absent)."""
    schema = TOOLS[tool]["parameters"]
    props: dict[str, Any] = schema["properties"]
    for name in args:
        if name not in props:
            raise ToolError(f"Unknown parameter '{name}' for {tool}; expected: {', '.join(props)}")
    for name in schema["required"]:
        if args.get(name) is None:
            raise ToolError(f"Missing required parameter '{name}'")
    checked: dict[str, Any] = {}
    for name, spec in props.items():
        value = args.get(name)
        if value is not None:
            value = _check_value(name, spec, value)
        checked[name] = value
    return checked


def _check_value(name: str, spec: dict[str, Any], value: Any) -> Any:
    kind = spec["type"]
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 is a valid JSON integer
    # bool is an int subclass in Python, but not a JSON number
    if not isinstance(value, _JSON_TYPES[kind]) or (kind in ("integer", "number") and isinstance(value, bool)):
        raise ToolError(f"Parameter '{name}' must be of type {kind}, got {type(value).__name__}")
    if kind == "number":
        if not math.isfinite(value):
            raise ToolError(f"Parameter '{name}' must be a finite number")
        value = round(float(value), 2)
    if kind == "string" and not value.strip():
        raise ToolError(f"Parameter '{name}' must not be empty")
    if "enum" in spec and value not in spec["enum"]:
        raise ToolError(f"Parameter '{name}' must be one of: {', '.join(str(v) for v in spec['enum'])}")
    if spec.get("format") == "date":
        try:
            ok = len(value) == 10 and datetime.date.fromisoformat(value).isoformat() == value
        except ValueError:
            ok = False
        if not ok:
            raise ToolError(f"Parameter '{name}' must be an ISO date (YYYY-MM-DD), got {value!r}")
    return value


# ---------------------------------------------------------------- SQL helpers (all through _t)
def _row(table: str, cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    bools = BOOL_COLUMNS.get(table, frozenset())
    row: dict[str, Any] = {}
    for (column, *_), value in zip(cursor.description, values):
        if column in bools and value is not None:
            value = bool(value)
        elif isinstance(value, float):
            value = round(value, 2)
        row[column] = value
    return row


def _select(db: sqlite3.Connection, table: str, where: dict[str, Any] | None = None,
            order_by: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of `table` matching every `where` column exactly, in a stable order."""
    where = {k: v for k, v in (where or {}).items() if v is not None}
    sql = f"SELECT * FROM {_t(table)}"
    if where:
        sql += " WHERE " + " AND ".join(f"{column} = ?" for column in where)
    if order_by:
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    params = tuple(int(v) if isinstance(v, bool) else v for v in where.values())
    cursor = db.execute(sql, params)
    return [_row(table, cursor, values) for values in cursor.fetchall()]


def _get(db: sqlite3.Connection, table: str, key: str, value: Any) -> dict[str, Any] | None:
    rows = _select(db, table, {key: value})
    return rows[0] if rows else None


def _require(db: sqlite3.Connection, table: str, key: str, value: Any, what: str) -> dict[str, Any]:
    row = _get(db, table, key, value)
    if row is None:
        raise ToolError(f"{what} {value} not found")
    return row


def _count(db: sqlite3.Connection, table: str, person_id: str, status_field: str, statuses: list[str],
           key: str, exclude: str | None = None) -> int:
    """How many of a person's rows are in one of `statuses` (optionally not counting row `exclude`)."""
    marks = ", ".join("?" for _ in statuses)
    sql = f"SELECT COUNT(*) FROM {_t(table)} WHERE person_id = ? AND {status_field} IN ({marks}) AND {key} IS NOT ?"
    return db.execute(sql, (person_id, *statuses, exclude)).fetchone()[0]


def _next_id(db: sqlite3.Connection, table: str, key: str, prefix: str) -> str:
    """The id after the largest numeric suffix in use (APT-0041 -> APT-0042), zero-padded to 4."""
    top = 0
    for (value,) in db.execute(f"SELECT {key} FROM {_t(table)}"):
        head, _, tail = str(value).rpartition("-")
        if head == prefix and tail.isdigit():
            top = max(top, int(tail))
    return f"{prefix}-{top + 1:04d}"


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    values = tuple(int(v) if isinstance(v, bool) else v for v in row.values())
    db.execute(f"INSERT INTO {_t(table)} ({columns}) VALUES ({marks})", values)


def _update(db: sqlite3.Connection, table: str, key: str, value: Any, changes: dict[str, Any]) -> None:
    sets = ", ".join(f"{column} = ?" for column in changes)
    values = tuple(int(v) if isinstance(v, bool) else v for v in changes.values())
    db.execute(f"UPDATE {_t(table)} SET {sets} WHERE {key} = ?", (*values, value))
'''

_EPILOGUE = '''

def call_tool(db: sqlite3.Connection, name: str, arguments: dict[str, Any]) -> Any:
    """Run one tool like the runtime does: inside a SAVEPOINT, rolled back on any exception."""
    spec = TOOLS.get(name)
    if spec is None:
        raise ToolError(f"Unknown tool '{name}'")
    db.execute("SAVEPOINT tool_call")
    try:
        result = spec["fn"](db, **arguments)
    except BaseException:
        db.execute("ROLLBACK TO tool_call")
        db.execute("RELEASE tool_call")
        raise
    db.execute("RELEASE tool_call")
    return result

'''


# ---------------------------------------------------------------- tool compilers
class _Compiler:
    """Emits one tool function per catalog tool."""

    def __init__(self, domain: CatalogDomain) -> None:
        self.domain = domain
        self.role_table = snake(domain.role)

    def rules_of(self, tool: CatalogTool) -> list[CatalogRule]:
        return [r for r in self.domain.rules if r.tool == tool.name]

    def function(self, tool: CatalogTool) -> str:
        body = getattr(self, f"_{tool.kind}")(tool)
        fee = fee_check(self.domain, tool)
        if fee is not None:  # the computed fee is part of the answer: the caller must tell the customer
            source = f"a[{lit(fee.field)}]" if fee.subject == "arg" else f"row[{lit(fee.field)}]"
            assert body[-1].startswith("return "), tool.name
            body[-1:] = [f"# the fee is {_num(fee.percent)}% of {words(fee.field or '')}, rounded to cents",
                         f"return {{**{body[-1][len('return '):]}, \"fee\": _fee({source}, {_num(fee.percent)})}}"]
        head = [
            f"def {tool.name}(db: sqlite3.Connection, **args: Any) -> {'list[dict[str, Any]]' if tool.kind in ('search', 'list_records', 'browse') else 'dict[str, Any]'}:",
            f'    """{_doc(tool.description)}"""',
            f"    a = _check_args({lit(tool.name)}, args)",
        ]
        return "\n".join(head + ["    " + line if line else "" for line in body]) + "\n"

    # -- reads
    def _get_profile(self, tool: CatalogTool) -> list[str]:
        role = self.domain.role
        return [
            'person = _require(db, "person", "person_id", a["person_id"], "Person")',
            f'member = _require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(role))})',
            "return {**person, **member}",
        ]

    def _get(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key = id_column(item.name)
        return [f"return _require(db, {lit(snake(item.name))}, {lit(key)}, a[{lit(key)}], {lit(label(item.name))})"]

    def _search(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        filters = ", ".join(f"{lit(f)}: a[{lit(f)}]" for f in tool.fields)
        return [
            f"# exact match on every filter given; at most {SEARCH_LIMIT} rows, ordered by id",
            f"return _select(db, {lit(snake(item.name))}, {{{filters}}}, order_by={lit(id_column(item.name))}, limit={SEARCH_LIMIT})",
        ]

    def _list_records(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        assert isinstance(item, CatalogRecord)
        sf = item.status_field
        return [
            f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})',
            f'return _select(db, {lit(snake(item.name))}, {{"person_id": a["person_id"], {lit(sf)}: a[{lit(sf)}]}}, '
            f"order_by={lit(id_column(item.name))})",
        ]

    def _summary(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        assert isinstance(item, CatalogRecord) and tool.amount_field
        sf, amount = item.status_field, tool.amount_field
        return [
            f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})',
            f'rows = _select(db, {lit(snake(item.name))}, {{"person_id": a["person_id"], {lit(sf)}: a[{lit(sf)}]}})',
            "by_status: dict[str, int] = {}",
            "for r in rows:",
            f"    by_status[r[{lit(sf)}]] = by_status.get(r[{lit(sf)}], 0) + 1",
            f"# the total adds the stored {words(amount)} of every counted row (missing counts as 0), rounded to cents",
            f'return {{"person_id": a["person_id"], {lit(sf)}: a[{lit(sf)}], "count": len(rows),',
            f'        "total_{amount}": round(sum(float(r[{lit(amount)}] or 0) for r in rows), 2),',
            '        "by_status": dict(sorted(by_status.items()))}',
        ]

    def _browse(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, amount, ceiling = id_column(item.name), tool.amount_field or "", browse_ceiling(tool)
        filters = ", ".join(f"{lit(f)}: a[{lit(f)}]" for f in tool.fields)
        return [
            f"# exact match on every filter given, {words(amount)} at most the ceiling; cheapest first, then by id",
            f"rows = _select(db, {lit(snake(item.name))}, {{{filters}}})",
            f"rows = [r for r in rows if r[{lit(amount)}] is not None and (a[{lit(ceiling)}] is None or r[{lit(amount)}] <= a[{lit(ceiling)}])]",
            f"rows.sort(key=lambda r: (r[{lit(amount)}], r[{lit(key)}]))",
            f"return rows[:{SEARCH_LIMIT}]",
        ]

    # -- writes
    def _create(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        target = find(self.domain, rec.target)
        tkey, key, table = id_column(target.name), id_column(rec.name), snake(rec.name)
        lines = [
            f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})',
            f"target = _require(db, {lit(snake(target.name))}, {lit(tkey)}, a[{lit(tkey)}], {lit(label(target.name))})",
        ]
        if linked(self.domain, rec):  # a record naming another record: only that record's person may
            lines += ['if target["person_id"] != a["person_id"]:',
                      f'    raise ToolError(f"{label(target.name)} {{target[{tkey!r}]}} belongs to another person")']
        lines += self._checks(tool, rec)
        row: dict[str, str] = {key: "new_id", "person_id": 'a["person_id"]', tkey: f"a[{lit(tkey)}]"}
        for f in tool.fields:
            row[f] = f"a[{lit(f)}]"
        for f, v in tool.defaults.items():
            row.setdefault(f, lit(v))
        row.setdefault(rec.status_field, lit(rec.statuses[0]))
        amount_note: list[str] = []
        price = charged(self.domain, tool)
        if price is not None:
            amount_note = [f"# the amount is {formula(price, words(target.name))} at booking time"]
            row[price.amount] = self._charge(price, "target", f"a[{lit(price.quantity)}]" if price.quantity else "1")
        elif tool.amount_field and tool.amount_field not in row:
            column, fallback = amount_source(self.domain, rec, tool.amount_field)
            if column:
                amount_note = [f"# the amount is the {words(target.name)}'s {column.replace('_', ' ')} at booking time"]
                row[tool.amount_field] = f"target[{lit(column)}]"
            else:
                amount_note = [f"# no priced attribute on {words(target.name)}: fixed amount, the midpoint of the catalog range"]
                row[tool.amount_field] = lit(fallback)
        lines.append(f"new_id = _next_id(db, {lit(table)}, {lit(key)}, {lit(rec.id_prefix)})")
        lines += amount_note
        lines.append("row = {")
        lines += [f"    {lit(k)}: {v}," for k, v in row.items()]
        lines.append("}")
        lines.append(f"_insert(db, {lit(table)}, row)")
        lines.append(f"return _require(db, {lit(table)}, {lit(key)}, new_id, {lit(label(rec.name))})")
        return lines

    @staticmethod
    def _charge(price: CatalogPricing, target: str, quantity: str) -> str:
        fixed = f", {target}[{lit(price.fixed)}]" if price.fixed else ""
        return f"_charge({target}[{lit(price.price)}], {quantity}{fixed})"

    def _load_row(self, item: CatalogEntity | CatalogRecord) -> list[str]:
        key = id_column(item.name)
        return [f"row = _require(db, {lit(snake(item.name))}, {lit(key)}, a[{lit(key)}], {lit(label(item.name))})"]

    def _set_status(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, table = id_column(item.name), snake(item.name)
        sf = item.status_field if isinstance(item, CatalogRecord) else "status"
        return [
            *self._load_row(item),
            *self._checks(tool, item),
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {{{lit(sf)}: {lit(tool.to)}}})",
            f"return _require(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {lit(label(item.name))})",
        ]

    def _update(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, table = id_column(item.name), snake(item.name)
        lines = [*self._load_row(item)]
        if len(tool.fields) > 1:
            names = ", ".join(tool.fields)
            lines += [
                f"changes = {{k: a[k] for k in {lit(list(tool.fields))} if a[k] is not None}}",
                "if not changes:",
                f"    raise ToolError({lit('Nothing to change: give at least one of ' + names)})",
            ]
        else:
            lines.append(f"changes = {{{lit(tool.fields[0])}: a[{lit(tool.fields[0])}]}}")
        lines += self._checks(tool, item)
        price = charged(self.domain, tool)
        if price is not None:
            assert isinstance(item, CatalogRecord) and price.quantity
            target = find(self.domain, item.target)
            tkey, qty = id_column(target.name), lit(price.quantity)
            step = [f"# the amount follows the new {words(price.quantity)}: {formula(price, words(target.name))}"]
            if not any(c.subject == "target" for c in checks(self.domain, tool)):
                step.append(f"target = _require(db, {lit(snake(target.name))}, {lit(tkey)}, row[{lit(tkey)}], "
                            f"{lit(label(target.name))})")
            step.append(f"changes[{lit(price.amount)}] = {self._charge(price, 'target', f'changes[{qty}]')}")
            lines += [f"if {qty} in changes:", *["    " + x for x in step]] if len(tool.fields) > 1 else step
        lines += [
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], changes)",
            f"return _require(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {lit(label(item.name))})",
        ]
        return lines

    def _pay(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, table = id_column(item.name), snake(item.name)
        lines = [*self._load_row(item), *self._checks(tool, item)]
        amount = f"row[{lit(tool.amount_field)}]" if tool.amount_field else "None"
        if tool.amount_field:
            lines += [
                f"if row[{lit(tool.amount_field)}] is None or row[{lit(tool.amount_field)}] <= 0:",
                f'    raise ToolError(f"{label(item.name)} {{row[{key!r}]}} has nothing to pay")',
            ]
        lines += [
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {{{lit(pay_field(tool))}: {lit(tool.to)}}})",
            f"paid = _require(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {lit(label(item.name))})",
            f'return {{**paid, "amount_paid": {amount}, "payment_method": a["payment_method"]}}',
        ]
        return lines

    # -- guards and policy rules, in checks() order
    def _checks(self, tool: CatalogTool, item: CatalogEntity | CatalogRecord) -> list[str]:
        lines: list[str] = []
        found = checks(self.domain, tool)
        if tool.kind != "create" and any(c.subject == "target" for c in found):
            # a rule about the record's target entity (e.g. the provider of a booking)
            assert isinstance(item, CatalogRecord)
            target = find(self.domain, item.target)
            tkey = id_column(target.name)
            lines.append(f"target = _require(db, {lit(snake(target.name))}, {lit(tkey)}, row[{lit(tkey)}], {lit(label(target.name))})")
        if any(c.kind == "owner" for c in found):  # the acting person exists (else: not found, not a violation)
            lines.append(f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})')
        if any(c.subject == "member" or c.when for c in found):  # a rule on who asks: their profile row
            person = 'a["person_id"]' if tool.kind == "create" else 'row["person_id"]'
            lines.append(f'member = _require(db, {lit(self.role_table)}, "person_id", {person}, {lit(label(self.domain.role))})')
        for check in found:
            if check.is_rule:
                lines.append(f"# {check.label}: {check.statement}")
                fail = f"    _violation({lit(check.label)}, {lit(check.statement)})"
            else:
                fail = "    " + self._guard_error(tool, item, check)
            lines += [f"if {self._failed(tool, item, check)}:", fail]
        return lines

    def _guard_error(self, tool: CatalogTool, item: CatalogEntity | CatalogRecord, check: Check) -> str:
        key = id_column(item.name)
        if check.kind == "status_in":
            suffix = "_" + snake(item.name)
            if tool.name.endswith(suffix):  # cancel_appointment -> "Cannot cancel appointment APT-0003"
                what = f"{tool.name.removesuffix(suffix).replace('_', ' ')} {words(item.name)}"
            else:  # accept_loan_offer -> "Cannot accept loan offer for loan application LAP-0003"
                what = f"{tool.name.replace('_', ' ')} for {words(item.name)}"
            allowed = ", ".join(str(v) for v in check.values)
            return (f'raise ToolError(f"Cannot {what} {{row[{key!r}]}} '
                    f'in status {{row[{check.field!r}]}} (allowed: {allowed})")')
        return f'raise ToolError(f"{label(item.name)} {{row[{key!r}]}} is already {check.values[0]}")'

    def _failed(self, tool: CatalogTool, item: CatalogEntity | CatalogRecord, check: Check) -> str:
        """The Python condition under which `check` fails."""
        if check.when is not None:  # a tier's check: only for people of that tier
            tier = f"member[{lit(check.when[0])}] == {lit(check.when[1])}"
            return f"{tier} and {self._failed(tool, item, replace(check, when=None))}"
        if check.kind == "count_lt":
            person = 'a["person_id"]' if check.subject == "person" else 'row["person_id"]'
            exclude = f", exclude=row[{lit(id_column(item.name))}]" if check.subject == "row" else ""
            return (f"_count(db, {lit(check.table)}, {person}, {lit(check.field)}, {lit(list(check.values))}, "
                    f"{lit(check.key)}{exclude}) >= {check.limit}")
        if check.kind == "owner":
            return 'row["person_id"] != a["person_id"]'
        ref = {"arg": "a", "row": "row", "target": "target", "member": "member"}[check.subject]
        x = raw = f"{ref}[{lit(check.field)}]"
        if check.percent is not None:  # bound the computed fee itself, as the policy states it
            x = f"_fee({x}, {_num(check.percent)})"
            check = replace(check, lo=None if check.lo is None else round(check.lo * check.percent / 100, 2),
                            hi=None if check.hi is None else round(check.hi * check.percent / 100, 2))
        if check.kind == "status_in":
            return f"{x} not in {lit(list(check.values))}"
        if check.kind == "eq":
            value = check.values[0]
            return f"{x} {'is not' if isinstance(value, bool) or value is None else '!='} {lit(value)}"
        if check.kind == "ne":
            return f"{x} == {lit(check.values[0])}"
        if check.kind == "date_range":
            lo = f"_days({_int(check.lo)})" if check.lo is not None else None
            hi = f"_days({_int(check.hi)})" if check.hi is not None else None
        else:
            lo = _num(check.lo) if check.lo is not None else None
            hi = _num(check.hi) if check.hi is not None else None
        if lo and hi and lo == hi:  # a single allowed day/value
            cond = f"{x} != {lo}"
        elif lo and hi:
            cond = f"not ({lo} <= {x} <= {hi})"
        elif lo:
            cond = f"{x} < {lo}"
        elif hi:
            cond = f"{x} > {hi}"
        else:
            cond = "False"
        if check.optional:
            return f"{raw} is not None and {cond}"
        if check.subject != "arg":  # a missing stored value cannot prove the rule holds
            return f"{raw} is None or {cond}"
        return cond


def formula(price: CatalogPricing, whose: str) -> str:
    """price x quantity (+ fixed) in words, for comments and the policy."""
    text = f"the {whose}'s `{price.price}`" + (f" x `{price.quantity}`" if price.quantity else "")
    return text + (f" + the {whose}'s `{price.fixed}`" if price.fixed else "") + ", rounded to cents"


_CHARGE = '''

def _charge(price: Any, quantity: Any, fixed: Any = None) -> float | None:
    """price x quantity + a fixed charge, rounded to cents (the data rule every stored amount obeys)."""
    if price is None or quantity is None:
        return None
    return round(float(price) * float(quantity) + float(fixed or 0), 2)
'''


_FEE = '''

def _fee(amount: Any, percent: float) -> float | None:
    """percent% of an amount, rounded to cents (a fee the policy states and bounds)."""
    if amount is None:
        return None
    return round(float(amount) * percent / 100, 2)
'''


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(x)


def _doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''").strip()


def bool_columns(domain: CatalogDomain) -> dict[str, list[str]]:
    """Per table, the columns stored as 0/1 that tools return as booleans."""
    bools: dict[str, list[str]] = {}
    for item in [*domain.entities, *domain.records]:
        cols = [a.name for a in item.attributes if a.type == "bool"]
        if cols:
            bools[snake(item.name)] = cols
    role_bools = [a.name for a in domain.role_attributes if a.type == "bool"]
    if role_bools:
        bools[snake(domain.role)] = role_bools
    return bools


def implementation_module(domain: CatalogDomain, clock: str) -> str:
    """The Python source of `domain`'s implementation module (deterministic text, stdlib only)."""
    compiler = _Compiler(domain)
    bools = bool_columns(domain)
    bool_src = "{" + "".join(f"\n    {lit(t)}: frozenset({lit(c)})," for t, c in sorted(bools.items())) + ("\n}" if bools else "}")
    prelude = (_PRELUDE.replace("__SERVER__", domain.name).replace("__CLOCK__", clock)
               .replace("__DESCRIPTION__", "\n".join(textwrap.wrap(_doc(domain.description), 95))).replace("__BOOLS__", bool_src)
               .replace("__FILE__", f"{domain.name}.py"))
    priced = any(charged(domain, tool) is not None for tool in domain.tools)
    fees = any(fee_check(domain, tool) is not None for tool in domain.tools)
    parts = [prelude, _CHARGE if priced else "", _FEE if fees else "",
             "\n# ---------------------------------------------------------------- tools\n"]
    for tool in domain.tools:
        parts.append("\n" + compiler.function(tool) + "\n")
    parts.append("\nTOOLS: dict[str, dict[str, Any]] = {\n")
    for tool in domain.tools:
        entry = {
            "mode": "read" if tool.kind in READ_KINDS else "write",
            "description": tool.description,
            "parameters": tool_parameters(domain, tool),
        }
        parts.append(f"    {lit(tool.name)}: {{\n        \"fn\": {tool.name},\n")
        for k, v in entry.items():
            parts.append(f"        {lit(k)}: {block(v, 8, 8 + len(lit(k)) + 2)},\n")
        parts.append("    },\n")
    parts.append("}\n")
    parts.append(_EPILOGUE)
    source = "".join(parts)
    compile(source, f"{domain.name}.py", "exec")  # fail here, not in the sandbox
    return source
