"""The builtin catalog: curated service domains (one YAML file per sector) centred on the shared Person."""
from __future__ import annotations

from functools import lru_cache

from skiller.world.catalog.model import (
    CatalogAttribute,
    CatalogDomain,
    CatalogEntity,
    CatalogRecord,
    CatalogRule,
    CatalogTool,
)
from skiller.world.catalog.load import DOMAINS_DIR, SECTORS, _load, load_catalog
from skiller.world.catalog.variants import base_of, cached_variant

__all__ = [
    "SECTORS",
    "CatalogAttribute",
    "CatalogDomain",
    "CatalogEntity",
    "CatalogRecord",
    "CatalogRule",
    "CatalogTool",
    "DOMAINS_DIR",
    "get_domain",
    "load_catalog",
]

@lru_cache(maxsize=None)
def _variant(name: str) -> CatalogDomain | None:
    found = base_of(name, [d.name for d in _load()])
    return cached_variant(*found) if found is not None else None


def get_domain(name: str) -> CatalogDomain:
    """The catalog domain called `name` (exact, else case-insensitive: `hospital` finds Hospital), or the
    seeded variant of one (`HarborHospital`, see skiller.catalog.variants)."""
    domains = _load()
    for d in domains:
        if d.name == name:
            return d
    folded = name.replace("_", "").lower()
    for d in domains:
        if d.name.lower() == folded:
            return d
    variant = _variant(name)
    if variant is not None:  # a seeded variant (HarborHospital): rebuilt from its name, cached
        return variant
    raise KeyError(f"no catalog domain named {name!r}; known: {', '.join(sorted(d.name for d in domains))}")
