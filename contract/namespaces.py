"""How a fusion names its members' tables and tools: one prefix per member, the shared `person` table
never prefixed. The database fusion, the fused tools and the builtin's fused task SQL all agree on it."""
from __future__ import annotations

import re

from skiller.contract.environment import table_name

SHARED = "person"  # the one table every member shares, never prefixed


def namespace_of(server: str) -> str:
    """`HealthInsurance` -> `health_insurance_`: the table and tool-name prefix inside a fusion."""
    return table_name(server) + "_"


def rename_tables(sql: str, tables: list[str], namespace: str) -> str:
    """Prefix every whole-word mention of a member table (never the shared `person`)."""
    names = sorted((t for t in tables if t != SHARED), key=len, reverse=True)
    if not names:
        return sql
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    return pattern.sub(lambda m: namespace + m.group(1), sql)
