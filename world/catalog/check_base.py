"""What every catalog check shares: limits, name patterns, generator value sets, and the per-domain
checker's state (the domain, the catalog it refers to, the problems found so far)."""
from __future__ import annotations

import re
from typing import Any

from skiller.contract.environment import table_name
from skiller.world.catalog.model import (
    CatalogAttribute,
    CatalogDomain,
    CatalogEntity,
    CatalogRecord,
    CatalogTool,
)

MIN_TOOLS = 10
MIN_RULES = 5
READ_KINDS = frozenset({"get_profile", "get", "search", "list_records", "summary", "browse"})
PERSON_COLUMNS = frozenset({"person_id", "first_name", "last_name", "email", "phone", "date_of_birth", "city"})

_PASCAL = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*$")  # no acronyms: every snake() agrees
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_TOOL_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")
_PREFIX = re.compile(r"^[A-Z]{2,5}$")
_RULE_ID = re.compile(r"^[A-Z]{2,5}-[0-9]+$")
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
# SQLite keywords: the compiled modules write column and table names unquoted.
_SQL_KEYWORDS = frozenset("""
abort action add after all alter always analyze and as asc attach autoincrement before begin between
by cascade case cast check collate column commit conflict constraint create cross current current_date
current_time current_timestamp database default deferrable deferred delete desc detach distinct do drop
each else end escape except exclude exclusive exists explain fail filter first following for foreign
from full generated glob group groups having if ignore immediate in index indexed initially inner insert
instead intersect into is isnull join key last left like limit match materialized natural no not nothing
notnull null nulls of offset on or order others outer over partition plan pragma preceding primary query
raise range recursive references regexp reindex release rename replace restrict returning right rollback
row rows savepoint select set table temp temporary then ties to transaction trigger unbounded union unique
update using vacuum values view virtual when where window with without
""".split())
_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "date": (str,)}


class CatalogCheckError(ValueError):
    """One or more catalog domains failed their sanity checks (the message lists every problem)."""


snake = table_name  # PascalCase -> snake_case, the contract's table naming


def gen_values(gen: dict[str, Any]) -> list[Any] | None:
    """The distinct values a finite generator can produce (choice, bool), else None."""
    if "choice" in gen and isinstance(gen["choice"], list):
        out: list[Any] = []
        for v in gen["choice"]:
            if v not in out:
                out.append(v)
        return out
    if "bool" in gen and isinstance(gen["bool"], (int, float)):
        p = float(gen["bool"])
        return [v for v, possible in ((True, p > 0), (False, p < 1)) if possible]
    return None


def _gen_range(gen: dict[str, Any]) -> tuple[float, float] | None:
    for kind in ("int", "money", "date"):
        if kind in gen and isinstance(gen[kind], list) and len(gen[kind]) == 2:
            return float(gen[kind][0]), float(gen[kind][1])
    values = gen_values(gen)
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return float(min(values)), float(max(values))
    return None


def _words(text: str) -> str:
    return " ".join(re.sub(r"[-_]", " ", text.lower()).split())


class DomainCheckerBase:
    def __init__(self, domain: CatalogDomain, catalog: list[CatalogDomain]) -> None:
        self.d = domain
        self.catalog = {c.name: c for c in catalog}
        self.problems: list[str] = []
        self.items: dict[str, CatalogEntity | CatalogRecord] = {i.name: i for i in [*domain.entities, *domain.records]}

    def err(self, where: str, message: str) -> None:
        self.problems.append(f"{self.d.name}: {where}: {message}")

    def attrs(self, name: str | None) -> dict[str, CatalogAttribute]:
        item = self.items.get(name or "")
        return {a.name: a for a in item.attributes} if item else {}

    def record(self, name: str | None) -> CatalogRecord | None:
        item = self.items.get(name or "")
        return item if isinstance(item, CatalogRecord) else None

    def creates_of(self, record: str) -> list[CatalogTool]:
        return [t for t in self.d.tools if t.kind == "create" and t.entity == record]
