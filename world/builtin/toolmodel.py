"""The tool model the builtin generators share: names, argument schemas, prices, literals."""
from __future__ import annotations

import json
from typing import Any

from skiller.contract.environment import table_name
from skiller.world.catalog.model import (
    CatalogAttribute,
    CatalogDomain,
    CatalogEntity,
    CatalogPricing,
    CatalogRecord,
    CatalogTool,
)


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
    elif tool.kind in ("create_items", "cancel_item"):
        from skiller.world.builtin.lineitems import line_parameters  # deferred: lineitems builds on this module
        lines, needed = line_parameters(domain, tool)
        props.update(lines)
        required += needed
    if tool.kind == "browse":
        assert item is not None and tool.amount_field
        ceiling = attribute_schema(item, attribute(item, tool.amount_field))  # type: ignore[arg-type]
        ceiling.pop("enum", None)
        props[browse_ceiling(tool)] = {**ceiling, "description": f"At most this {words(tool.amount_field)} (optional filter)"}
    if tool.kind in ("search", "create", "create_items", "update", "browse"):
        assert item is not None
        for name in tool.fields:
            attr = attribute(item, name)
            if attr is None:
                raise ValueError(f"{domain.name}: tool {tool.name} names unknown field {name}")
            props[name] = attribute_schema(item, attr)
            if tool.kind in ("search", "browse"):
                props[name]["description"] += " (optional filter)"
        if tool.kind in ("create", "create_items") or (tool.kind == "update" and len(tool.fields) == 1):
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


def formula(price: CatalogPricing, whose: str) -> str:
    """price x quantity (+ fixed) in words, for comments and the policy."""
    text = f"the {whose}'s `{price.price}`" + (f" x `{price.quantity}`" if price.quantity else "")
    return text + (f" + the {whose}'s `{price.fixed}`" if price.fixed else "") + ", rounded to cents"


def browse_ceiling(tool: CatalogTool) -> str:
    """The optional ceiling argument of a browse tool: `max_<amount_field>`."""
    return f"max_{tool.amount_field}"


def linked(domain: CatalogDomain, rec: CatalogRecord) -> bool:
    """Whether `rec` names another record (a refund naming a payment) rather than a catalogue entity."""
    return any(r.name == rec.target for r in domain.records)


def pay_field(tool: CatalogTool) -> str:
    return tool.fields[0] if tool.fields else "payment_status"


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


def new_row(tool: CatalogTool, rec: CatalogRecord, key: str, tkey: str) -> dict[str, str]:
    """The Python expressions of a create's new row: its id, the person, the target, the fields the caller
    gives, the tool's defaults and the record's first status."""
    row: dict[str, str] = {key: "new_id", "person_id": 'a["person_id"]', tkey: f"a[{lit(tkey)}]"}
    for f in tool.fields:
        row[f] = f"a[{lit(f)}]"
    for f, v in tool.defaults.items():
        row.setdefault(f, lit(v))
    row.setdefault(rec.status_field, lit(rec.statuses[0]))
    return row
