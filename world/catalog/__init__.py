"""The builtin catalog: curated service domains (one YAML file per sector) centred on the shared Person."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from skiller.world.catalog.model import (
    CatalogAttribute,
    CatalogDomain,
    CatalogEntity,
    CatalogRecord,
    CatalogRule,
    CatalogTool,
)

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

DOMAINS_DIR = Path(__file__).parent / "domains"

#: Every sector of the catalog, one `domains/<sector>.yaml` file each (checked by the tests).
SECTORS = [
    "automotive",
    "education",
    "finance",
    "government",
    "health",
    "housing",
    "insurance",
    "leisure",
    "logistics",
    "pets",
    "travel",
    "utilities",
]


@lru_cache(maxsize=1)
def _load() -> tuple[CatalogDomain, ...]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same data, ~8x faster
    domains: list[CatalogDomain] = []
    for path in sorted(DOMAINS_DIR.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or []
        if not isinstance(data, list):
            raise ValueError(f"{path.name}: expected a list of domains")
        for item in data:
            try:
                domains.append(CatalogDomain.model_validate(item))
            except Exception as exc:
                name = item.get("name", "?") if isinstance(item, dict) else "?"
                raise ValueError(f"{path.name}: domain {name}: {exc}") from exc
    return tuple(domains)


def load_catalog() -> list[CatalogDomain]:
    """Every catalog domain, by file name then order within the file (parsed once, cached)."""
    return list(_load())


@lru_cache(maxsize=None)
def _variant(name: str) -> CatalogDomain | None:
    from skiller.world.catalog.variants import base_of, cached_variant

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
