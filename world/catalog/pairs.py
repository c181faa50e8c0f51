"""Paired vocabularies of an entity (a medication's name and its dosage forms): the pool a paired attribute draws
from, and the catalog checks that every value of the first has values of the second to go with."""
from __future__ import annotations

import itertools
from typing import Any

from skiller.world.catalog.model import CatalogAttribute, CatalogEntity, CatalogPair
from skiller.world.catalog.values import pair_key

__all__ = ["pair_pool", "pair_problems"]

_MAX_NAMES = 20_000  # composed names checked one by one (the catalog's largest pools are a few thousand)


def pair_pool(attr: CatalogAttribute | None) -> list[Any] | None:
    """The distinct values an attribute's generator draws: a choice's values, an int range's integers."""
    if attr is None:
        return None
    gen = attr.gen
    if isinstance(gen.get("choice"), list):
        return list(dict.fromkeys(gen["choice"]))
    rng = gen.get("int")
    if isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) for v in rng):
        return list(range(rng[0], rng[1] + 1))
    return None


def _names(attr: CatalogAttribute) -> list[str] | None:
    """Every value a choice or compose attribute can take (None: too many, or another generator)."""
    if isinstance(attr.gen.get("choice"), list):
        return [str(v) for v in dict.fromkeys(attr.gen["choice"])]
    parts = attr.gen.get("compose")
    if not isinstance(parts, list) or not all(isinstance(p, list) for p in parts):
        return None
    size = 1
    for part in parts:
        size *= len(part)
    return [" ".join(map(str, c)) for c in itertools.product(*parts)] if size <= _MAX_NAMES else None


def _problems(pair: CatalogPair, attrs: dict[str, CatalogAttribute]) -> list[str]:
    field, then = attrs.get(pair.field), attrs.get(pair.then)
    if field is None or then is None or pair.field == pair.then:
        return [f"pair {pair.field} -> {pair.then}: needs two different attributes of the entity"]
    names, pool = _names(field), pair_pool(then)
    if names is None:
        return [f"pair {pair.field} -> {pair.then}: {pair.field} must be a choice or compose attribute"]
    if pool is None:
        return [f"pair {pair.field} -> {pair.then}: {pair.then} must be a choice or int attribute"]
    out = [f"pair {pair.field} -> {pair.then}: {key!r} allows {bad!r}, not values of {pair.then}"
           for key, values in pair.allowed.items() if (bad := [v for v in values if v not in pool]) or not values]
    lonely = [n for n in names if pair_key(n, pair.allowed) is None]
    if lonely:
        out.append(f"pair {pair.field} -> {pair.then}: no key (nor '*') names {lonely[0]!r}"
                   + (f" and {len(lonely) - 1} more" if len(lonely) > 1 else ""))
    return out


def pair_problems(entity: CatalogEntity) -> list[str]:
    """One line per problem of the entity's pairs: attributes unknown or of the wrong generator, an allowed value
    the attribute never takes, a value of `field` that no key names."""
    attrs = {a.name: a for a in entity.attributes}
    return [p for pair in entity.pairs for p in _problems(pair, attrs)]
