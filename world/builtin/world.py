"""Builtin answers for the world steps (s01-s04), drawn from the curated catalog."""
from __future__ import annotations

from skiller.llm.interface import LLMRequest
from skiller.world.builtin.codegen import READ_KINDS, snake, tool_parameters
from skiller.world.builtin.fusion import journey_domains
from skiller.world.builtin.registry import answers
from skiller.world.builtin.seeding import rng as _rng
from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.variants import variant_name

_PERSON_ATTRS = [("first_name", "str", "Given name"), ("last_name", "str", "Family name"),
                 ("email", "str", "Email address"), ("phone", "str", "Phone number"),
                 ("date_of_birth", "date", "Date of birth"), ("city", "str", "City of residence")]


@answers("s01.domains")
def domains(request: LLMRequest) -> dict:
    """Round-robin over shuffled sectors so any prefix of the answer is sector-diverse; then, when asked,
    `variants` seeded variants of each (variant 0 of every domain in the same order, then 1, …)."""
    ctx = request.context
    rng = _rng(ctx["seed"], "s01")
    picked = [get_domain(name) for name in ctx.get("required", [])]  # named in the config: always in
    named = {d.name for d in picked}
    by_sector: dict[str, list] = {}
    for d in load_catalog():
        if d.name not in named:
            by_sector.setdefault(d.sector, []).append(d)
    sectors = sorted(by_sector)
    rng.shuffle(sectors)
    for s in sectors:
        rng.shuffle(by_sector[s])
    if not picked:  # Issue 12: with no names given, domains whose records pass between them come first
        picked = journey_domains(load_catalog(), ctx["count"], ctx.get("min_sectors", 1),
                                 _rng(ctx["seed"], "s01", "journeys"))
        for d in picked:
            by_sector[d.sector].remove(d)
    covered = {d.sector for d in picked}
    sectors.sort(key=lambda s: s in covered)  # the rest of the set spreads over sectors not yet covered
    while len(picked) < ctx["count"] and any(by_sector.values()):
        for s in sectors:
            if by_sector[s] and len(picked) < ctx["count"]:
                picked.append(by_sector[s].pop())
    picked += [get_domain(variant_name(base.name, ctx["seed"], index))
               for index in range(int(ctx.get("variants", 0))) for base in list(picked)]
    return {"domains": [{"name": d.name, "sector": d.sector, "description": d.description} for d in picked]}


@answers("s02.entities")
def entities(request: LLMRequest) -> dict:
    d = get_domain(request.context["domain"])
    out = [{"name": "Person", "description": "A person served by every service.", "is_person": True,
            "attributes": [{"name": n, "type": t, "description": s} for n, t, s in _PERSON_ATTRS],
            "domains": [d.name]},
           {"name": d.role, "description": f"A person in the role of {d.role.lower()} of {d.name}.",
            "is_person": True, "domains": [d.name],
            "attributes": [{"name": a.name, "type": a.type, "description": a.description} for a in d.role_attributes]}]
    for e in d.entities:
        out.append({"name": e.name, "description": e.description, "is_person": False, "domains": [d.name],
                    "attributes": [{"name": a.name, "type": a.type, "description": a.description} for a in e.attributes]})
    return {"entities": out}


@answers("s03.relationships")
def relationships(request: LLMRequest) -> dict:
    d = get_domain(request.context["domain"])
    rels = [{"name": f"{d.role}IsPerson", "description": f"Every {d.role.lower()} is a Person.",
             "source_entity": d.role, "target_entity": "Person", "domain": d.name, "attributes": []}]
    for r in d.records:
        attrs = []
        for a in r.attributes:
            ref = a.gen.get("ref")
            lo_hi = next((a.gen[k] for k in ("int", "money", "date") if k in a.gen), None)
            attrs.append({"name": a.name, "type": a.type, "description": a.description,
                          "value_from_entity": ref,
                          "range": f"{lo_hi[0]}..{lo_hi[1]}" if lo_hi else None})
        # a record naming another record (a refund naming a payment) is an edge to that record's entity
        target, names = r.target, ""
        while target not in {e.name for e in d.entities}:
            parent = next(x for x in d.records if x.name == target)
            names, target = names or f" It names one of the person's {snake(parent.name).replace('_', ' ')}s.", parent.target
        rels.append({"name": r.name, "description": r.description + names, "source_entity": d.role,
                     "target_entity": target, "domain": d.name, "attributes": attrs})
    return {"role": d.role, "relationships": rels}


@answers("s04.blueprint")
def blueprint(request: LLMRequest) -> dict:
    d = get_domain(request.context["domain"])
    rel = relationships(request)["relationships"]
    functions = []
    for t in d.tools:
        schema = tool_parameters(d, t)
        params = {name: {**prop, "required": name in schema["required"]} for name, prop in schema["properties"].items()}
        functions.append({"name": t.name, "description": t.description,
                          "mode": "read" if t.kind in READ_KINDS else "write",
                          "parameters": params, "returns": _returns(t)})
    return {"MCP_server_name": d.name, "description": d.description, "sector": d.sector,
            "core_entity": d.role, "peripheral_entities": [e.name for e in d.entities][:3],
            "relationships": rel, "functions": functions}


def _returns(tool) -> str:
    subject = snake(tool.entity or "profile").replace("_", " ")
    return {"get_profile": "the person's profile", "get": f"the {subject}",
            "search": f"matching {subject} rows (at most 20)", "list_records": f"the person's {subject} rows",
            "create": f"the new {subject}", "set_status": f"the updated {subject}",
            "update": f"the updated {subject}", "pay": "the payment receipt",
            "summary": f"the count, total and count per status of the person's {subject} rows",
            "browse": f"matching {subject} rows, cheapest first (at most 20)",
            "create_items": f"the new {subject} with its lines (items)",
            "cancel_item": f"the {subject} with its lines and its recomputed amount"}[tool.kind]
