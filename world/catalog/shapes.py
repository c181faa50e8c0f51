"""Catalog domain shapes: what a domain's schema and tools look like once every name is erased.

Two domains that differ only in names teach an agent nothing new, so the catalog keeps them apart:
- `schema_shape`: the tables (person excluded) as multisets of column types, with keys and references
  typed as `key`/`ref`, plus the multiset of tool kinds; no two catalog domains may share one.
- `structure`: the coarser signature the issue judges "unlike" by: table count, tool kinds, rule kinds.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from skiller.world.catalog.model import CatalogAttribute, CatalogDomain

__all__ = ["Shape", "Structure", "schema_shape", "shape_problems", "shape_summary", "structure", "unlike"]

TableShape = tuple[tuple[str, int], ...]
Shape = tuple[tuple[TableShape, ...], tuple[tuple[str, int], ...]]
Structure = tuple[int, tuple[str, ...], tuple[str, ...]]


def _types(attrs: list[CatalogAttribute], extra: list[str]) -> TableShape:
    kinds = [("ref" if "ref" in a.gen else a.type) for a in attrs] + extra
    return tuple(sorted(Counter(kinds).items()))


def schema_shape(d: CatalogDomain) -> Shape:
    """Tables x column types x tool kinds of `d`, with every name erased (person table excluded)."""
    tables = [_types(d.role_attributes, ["key"])]
    tables += [_types(e.attributes, ["key"]) for e in d.entities]
    # a record: its key, the person and its target (entity or record) as references
    tables += [_types(r.attributes, ["key", "ref", "ref"]) for r in d.records]
    # line items: key, record and target references, quantity, unit price, line amount, line status
    tables += [_types([], ["key", "ref", "ref", "int", "float", "float", "str"]) for r in d.records if r.lines]
    tools = tuple(sorted(Counter(t.kind for t in d.tools).items()))
    return tuple(sorted(tables)), tools


def structure(d: CatalogDomain) -> Structure:
    """(tables besides person, tool kinds, rule kinds): the signature 'unlike any other' is judged by."""
    rules = {r.kind for r in d.rules} | {f"bridge:{b.kind}" for b in d.bridges}
    return 1 + len(d.entities) + len(d.records) + sum(1 for r in d.records if r.lines), tuple(sorted({t.kind for t in d.tools})), tuple(sorted(rules))


def unlike(domains: list[CatalogDomain]) -> list[str]:
    """Domains whose `structure` no other domain of `domains` shares."""
    seen = Counter(structure(d) for d in domains)
    return [d.name for d in domains if seen[structure(d)] == 1]


def _family(name: str, names: set[str]) -> str:
    """The base a seeded variant is named after (LakesideHospital -> Hospital), else the name itself."""
    return min((n for n in names if name.endswith(n) and name[: len(name) - len(n)][:1].isupper()), key=len, default=name)


def shape_problems(domains: list[CatalogDomain]) -> list[str]:
    """One line per domain whose schema shape an earlier domain of another family already has (a seeded
    variant is the same kind of service as its base by design, skiller.world.catalog.variants)."""
    names = {d.name for d in domains}
    first: dict[Shape, CatalogDomain] = {}
    out = []
    for d in domains:
        shape = schema_shape(d)
        other = first.get(shape)
        if other is not None and _family(other.name, names) != _family(d.name, names):
            out.append(f"{d.name}: shape: same tables, column types and tool kinds as {other.name}")
        first.setdefault(shape, d)
    return out


def shape_summary(domains: list[CatalogDomain]) -> dict[str, Any]:
    """Counts a report prints: distinct shapes and structures, table counts, tool-kind sets."""
    tables = Counter(structure(d)[0] for d in domains)
    kinds = Counter(structure(d)[1] for d in domains)
    rules = Counter(structure(d)[2] for d in domains)
    return {
        "domains": len(domains),
        "distinct_shapes": len({schema_shape(d) for d in domains}),
        "distinct_structures": len({structure(d) for d in domains}),
        "unlike_any_other": len(unlike(domains)),
        "table_counts": dict(sorted(tables.items())),
        "tool_kind_sets": {" ".join(k): n for k, n in kinds.most_common()},
        "rule_kind_sets": len(rules),
    }
