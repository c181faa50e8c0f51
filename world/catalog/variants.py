"""Seeded variants of catalog domains: the same kind of service under another name, with its own
vocabulary, rule parameters, tool subset and data, each a full catalog domain passing the checks.

A variant is named `<Qualifier><Base>` (HarborHospital: still a hospital). Its content is a pure
function of that name, so `get_domain("HarborHospital")` rebuilds it anywhere without state; which
qualifier the workspace's variant i of a base gets is drawn from (seed, base, i).
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from skiller.world.catalog.model import CatalogAttribute, CatalogDomain, CatalogRule
from skiller.world.catalog.check import check_domain
from skiller.world.catalog.load import load_catalog
from skiller.world.catalog.values import CITIES, sub_rng

__all__ = ["MAX_VARIANTS", "QUALIFIERS", "base_of", "build_variant", "cached_variant", "family", "variant_name",
           "variant_names"]

#: Place-like qualifiers (one PascalCase word each); the position gives the id-prefix letter (A, B, …).
QUALIFIERS = (
    "Harbor", "Summit", "Northgate", "Riverside", "Oakwood", "Lakeside", "Meadow", "Crestview", "Bayview",
    "Cedar", "Granite", "Willow", "Maple", "Silver", "Pinecrest", "Westfield", "Eastgate", "Highland",
    "Brookside", "Fairview", "Stonebridge", "Elmwood", "Sunrise", "Redwood", "Clearwater", "Ashford",
)
MAX_VARIANTS = len(QUALIFIERS)

_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_DROPPABLE = ("update", "set_status", "search", "pay")  # tool kinds a variant may go without
_FEE_FACTORS = (0.75, 0.85, 0.9, 1.1, 1.2, 1.35, 1.5)
_SPAN_FACTORS = (0.5, 0.6, 0.75, 1.25, 1.5, 2.0)


def variant_name(base: str, seed: int, index: int) -> str:
    """The name of variant `index` of `base` in a workspace seeded `seed` (distinct per index)."""
    if not 0 <= index < MAX_VARIANTS:
        raise ValueError(f"variant index {index} outside 0..{MAX_VARIANTS - 1}")
    order = list(QUALIFIERS)
    sub_rng("variants", seed, base).shuffle(order)
    return order[index] + base


def variant_names(base: str, seed: int, count: int) -> list[str]:
    return [variant_name(base, seed, i) for i in range(count)]


def base_of(name: str, bases: list[str]) -> tuple[str, str] | None:
    """(base, qualifier) when `name` is a variant of one of `bases` (exact, or ignoring case and '_')."""
    folded = name.replace("_", "").lower()
    for q in QUALIFIERS:
        if folded.startswith(q.lower()):
            rest = folded[len(q):]
            for b in bases:
                if b.lower() == rest:
                    return b, q
    return None


def family(name: str, bases: list[str]) -> str:
    """The catalog domain a domain is, or is a variant of."""
    found = base_of(name, bases)
    return found[0] if found else name


# ---------------------------------------------------------------- building one variant
def _restate(statement: str, changes: dict[float, float]) -> str | None:
    """The statement with each changed number rewritten (None when a number is missing or ambiguous)."""
    tokens = [(m, float(m.group(0).replace(",", ""))) for m in _NUMBER.finditer(statement)]
    for old in changes:
        if sum(v == old for _, v in tokens) != 1:
            return None
    out, last = [], 0
    for m, value in tokens:
        if value in changes:
            new = changes[value]
            text = f"{new:,.0f}" if "," in m.group(0) else (f"{new:g}" if not float(new).is_integer() else str(int(new)))
            out += [statement[last:m.start()], text]
            last = m.end()
    return "".join(out + [statement[last:]])


def _scaled(value: float, factor: float) -> float:
    return float(max(1, round(value * factor)))


def _rule_variant(rule: CatalogRule, rng, gen_ranges: dict[str, tuple[float, float]],
                  spans: dict[str, float]) -> CatalogRule:
    """New limits, windows or lead times for one rule, the statement saying the same (else the rule as is).
    `spans` holds one factor per field, so two rules on the same field keep agreeing."""
    update: dict[str, Any] = {}
    span = spans.setdefault(rule.field or "", rng.choice(_SPAN_FACTORS))
    if rule.kind == "max_active" and rule.limit:
        update["limit"] = rule.limit + (1 if rule.limit == 1 else rng.choice((-1, 1)))
    elif rule.kind == "date_window" and rule.max is not None and rule.min is not None and rule.max > max(rule.min, 1):
        update["max"] = max(rule.min + 1, _scaled(rule.max, span))
    elif rule.kind == "value_range" and rule.max is not None and rule.max > 1:
        lo = rule.min if rule.min is not None else 0
        floor = max(lo, gen_ranges.get(rule.field or "", (lo, lo))[0]) + 1
        update["max"] = max(floor, _scaled(rule.max, span))
    elif rule.kind == "lead_time" and rule.min is not None:
        update["min"] = rule.min + rng.choice((-1, 1)) if rule.min >= 2 else rule.min + 1
    changes = {float(getattr(rule, k)): float(v) for k, v in update.items() if float(getattr(rule, k)) != float(v)}
    others = [getattr(rule, k) for k in ("limit", "min", "max") if k not in update and getattr(rule, k) is not None]
    if not changes or any(abs(float(o)) in changes for o in others):
        return rule
    statement = _restate(rule.statement, changes)
    if statement is None:
        return rule
    if "limit" in update:
        update["limit"] = int(update["limit"])
    return rule.model_copy(update={**update, "statement": statement})


def _attr_variant(a: CatalogAttribute, rng, protected: set[str], fee: float, cities: list[str]) -> CatalogAttribute:
    """Another value pool (a subset of the choices, a regional set of cities), fees and rates."""
    (kind, arg), = a.gen.items()
    gen: dict[str, Any] | None = None
    if kind == "choice" and a.name not in protected:
        distinct = list(dict.fromkeys(arg))
        if len(distinct) > 2:
            keep = max(2, math.ceil(len(distinct) * rng.choice((0.6, 0.7, 0.8))))
            chosen = set(rng.sample(distinct, keep))
            gen = {"choice": [v for v in arg if v in chosen]}
    elif kind == "pick" and arg == "city":
        gen = {"choice": cities}
    elif kind == "money" and a.name not in protected:
        gen = {"money": [round(arg[0] * fee, 2), round(arg[1] * fee, 2)]}
    elif kind == "bool" and 0 < arg < 1 and a.name not in protected:
        gen = {"bool": round(min(0.95, max(0.1, arg + rng.choice((-0.1, -0.05, 0.05, 0.1)))), 2)}
    return a.model_copy(update={"gen": gen}) if gen is not None else a


def _protected(d: CatalogDomain) -> set[str]:
    """Attributes whose values the tools and rules name: their pools stay as they are."""
    names = {r.status_field for r in d.records} | {x for r in d.rules for x in (r.field, r.attribute) if x}  # tiers too
    for t in d.tools:
        names |= set(t.defaults) | ({*t.fields} if t.kind == "pay" else set())
    for r in d.records:  # categories a record's target must have (coherent data)
        names |= {x for m in r.matches for x in (m.field, m.target_field) if x}
    for e in d.entities:  # a paired attribute keeps every value its partners may need
        names |= {p.then for p in e.pairs}
    for b in d.bridges:  # what the rules on cross-domain references read
        names |= {x for x in (b.field, b.ref) if x}
    return names


def _with_items(d: CatalogDomain, fn) -> CatalogDomain:
    return d.model_copy(update={
        "role_attributes": [fn(a) for a in d.role_attributes],
        "entities": [e.model_copy(update={"attributes": [fn(a) for a in e.attributes]}) for e in d.entities],
        "records": [r.model_copy(update={"attributes": [fn(a) for a in r.attributes]}) for r in d.records]})


def _renamed(base: CatalogDomain, qualifier: str) -> CatalogDomain:
    letter = chr(ord("A") + QUALIFIERS.index(qualifier))
    spaced = re.sub(r"(?<!^)([A-Z])", r" \1", base.name).lower()
    return base.model_copy(update={
        "name": qualifier + base.name,
        "description": f"The {qualifier} {spaced}: {base.description[:1].lower()}{base.description[1:]}",
        "entities": [e.model_copy(update={"id_prefix": e.id_prefix + letter}) for e in base.entities],
        "records": [r.model_copy(update={"id_prefix": r.id_prefix + letter}) for r in base.records],
        "rules": [r.model_copy(update={"id": r.id.replace("-", letter + "-", 1)}) for r in base.rules],
        "bridges": [b.model_copy(update={"id": b.id.replace("-", letter + "-", 1)}) for b in base.bridges]})


def build_variant(base: CatalogDomain, qualifier: str, catalog: list[CatalogDomain]) -> CatalogDomain:
    """Variant `qualifier` of `base`. Each change is kept only if the domain still passes every catalog
    check, so a variant is always as valid as its base."""
    rng = sub_rng("variant", base.name, qualifier)
    d = _renamed(base, qualifier)
    if check_domain(d, catalog):
        raise ValueError(f"{d.name}: the renamed domain fails the catalog checks")

    def kept(candidate: CatalogDomain) -> bool:
        return not check_domain(candidate, catalog)

    # tool subset: drop up to two optional tools (and the rules that govern them)
    bridged = {b.tool for b in d.bridges}
    optional = [t.name for t in d.tools if t.kind in _DROPPABLE and t.name not in bridged]
    for name in rng.sample(optional, min(len(optional), rng.choice((0, 1, 1, 2)))):
        candidate = d.model_copy(update={"tools": [t for t in d.tools if t.name != name],
                                         "rules": [r for r in d.rules if r.tool != name]})
        if kept(candidate):
            d = candidate
    # vocabulary, fees and rates: one fee factor per variant, so copied amounts stay coherent
    protected, fee = _protected(d), rng.choice(_FEE_FACTORS)
    cities = sorted(rng.sample(CITIES, rng.randint(6, 10)))
    candidate = _with_items(d, lambda a: _attr_variant(a, rng, protected, fee, cities))
    if kept(candidate):
        d = candidate
    # rule parameters: limits, windows, ranges and lead times, one rule at a time
    ranges = {a.name: tuple(a.gen.get("int") or a.gen.get("money") or (0, 0))
              for item in [*d.entities, *d.records] for a in item.attributes}
    spans: dict[str, float] = {}
    for i, rule in enumerate(d.rules):
        changed = _rule_variant(rule, rng, ranges, spans)
        if changed is not rule:
            candidate = d.model_copy(update={"rules": [*d.rules[:i], changed, *d.rules[i + 1:]]})
            if kept(candidate):
                d = candidate
    return d


@lru_cache(maxsize=None)
def cached_variant(base_name: str, qualifier: str) -> CatalogDomain:
    catalog = load_catalog()
    base = next(d for d in catalog if d.name == base_name)
    return build_variant(base, qualifier, catalog)
