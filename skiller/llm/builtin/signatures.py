"""Tool signatures of catalog domains: the one place a catalog tool becomes typed parameters."""
from __future__ import annotations

import re
from typing import Any

from skiller.catalog.model import CatalogAttribute, CatalogDomain, CatalogTool

PAYMENT_METHODS = ["card", "bank_transfer", "wallet"]
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "string"}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def id_column(entity: str) -> str:
    return f"{snake(entity)}_id"


def attributes_of(domain: CatalogDomain, entity: str) -> dict[str, CatalogAttribute]:
    for e in domain.entities:
        if e.name == entity:
            return {a.name: a for a in e.attributes}
    for r in domain.records:
        if r.name == entity:
            return {a.name: a for a in r.attributes}
    raise KeyError(f"{domain.name} has no entity {entity}")


def record_of(domain: CatalogDomain, name: str):
    return next((r for r in domain.records if r.name == name), None)


def _attr_param(attr: CatalogAttribute, required: bool) -> dict[str, Any]:
    p: dict[str, Any] = {"type": _JSON_TYPES[attr.type], "description": attr.description, "required": required}
    if attr.type == "date":
        p["description"] += " (YYYY-MM-DD)"
    choices = attr.gen.get("choice")
    if choices and attr.type == "str":
        p["enum"] = sorted(set(choices))
    return p


def tool_parameters(domain: CatalogDomain, tool: CatalogTool) -> dict[str, dict[str, Any]]:
    """name -> {type, description, required, enum?} for one tool, by its kind."""
    kind = tool.kind
    if kind == "get_profile":
        return {"person_id": {"type": "string", "description": "The person's id, e.g. P-0001", "required": True}}
    ent = tool.entity or ""
    key = {"type": "string", "description": f"The {snake(ent).replace('_', ' ')} id", "required": True}
    attrs = attributes_of(domain, ent)
    if kind in ("get", "set_status"):
        return {id_column(ent): key}
    if kind == "search":
        return {f: _attr_param(attrs[f], required=False) for f in tool.fields}
    if kind == "list_records":
        rec = record_of(domain, ent)
        status = {"type": "string", "description": "Only records in this status", "required": False,
                  "enum": sorted(rec.statuses) if rec else []}
        return {"person_id": {"type": "string", "description": "The person's id", "required": True},
                "status": status}
    if kind == "create":
        rec = record_of(domain, ent)
        params = {"person_id": {"type": "string", "description": "The person's id", "required": True}}
        if rec is not None:
            params[id_column(rec.target)] = {"type": "string", "required": True,
                                             "description": f"The {snake(rec.target).replace('_', ' ')} id"}
        params.update({f: _attr_param(attrs[f], required=True) for f in tool.fields})
        return params
    if kind == "update":
        return {id_column(ent): key} | {f: _attr_param(attrs[f], required=True) for f in tool.fields}
    if kind == "pay":
        return {id_column(ent): key,
                "payment_method": {"type": "string", "description": "How the person pays",
                                   "required": True, "enum": PAYMENT_METHODS}}
    raise ValueError(f"unknown tool kind {kind}")


def tool_mode(tool: CatalogTool) -> str:
    return "read" if tool.kind in ("get_profile", "get", "search", "list_records") else "write"


def json_schema(params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """JSON Schema object of a parameter table (OpenAI function `parameters`)."""
    props = {}
    for name, p in params.items():
        prop = {"type": p["type"], "description": p["description"]}
        if p.get("enum"):
            prop["enum"] = list(p["enum"])
        props[name] = prop
    return {"type": "object", "properties": props, "required": [n for n, p in params.items() if p["required"]]}
