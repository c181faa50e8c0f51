"""Targets a record holds alone (a rented storage unit, a suite with a pet checked in): which writes take or
free the target, and how the policy says so. The code, its tests and the policy all read it from here."""
from __future__ import annotations

from typing import NamedTuple

from skiller.world.catalog.model import CatalogDomain, CatalogRecord, CatalogTool
from skiller.world.builtin.toolmodel import find, words

__all__ = ["Holding", "holding", "holding_effects"]


class Holding(NamedTuple):
    record: CatalogRecord
    taking: bool  # the write takes the target (its flag turns false), else frees it
    always: bool  # whatever status the row was in (else only when it did not already / did hold it)


def holding(domain: CatalogDomain, tool: CatalogTool) -> Holding | None:
    """How `tool` changes the target its record holds alone, or None when it does not."""
    if tool.kind not in ("create", "set_status") or not tool.entity:
        return None
    rec = find(domain, tool.entity)
    if not isinstance(rec, CatalogRecord) or rec.holds is None:
        return None
    held = set(rec.holds.statuses)
    if tool.kind == "create":
        status = tool.defaults.get(rec.status_field, rec.statuses[0])
        return Holding(rec, True, True) if status in held else None
    taking = tool.to in held
    crossing = {(s in held) != taking for s in tool.from_statuses or rec.statuses}
    return None if crossing == {False} else Holding(rec, taking, crossing == {True})


def holding_effects(domain: CatalogDomain, tool: CatalogTool) -> list[str]:
    """'- Takes the storage unit: sets its `available` to false (a storage rental in status reserved, active or
    ending holds its storage unit alone).'"""
    h = holding(domain, tool)
    if h is None:
        return []
    rec, target = h.record, words(h.record.target)
    states = h.record.holds.statuses
    states_text = states[0] if len(states) == 1 else f"{', '.join(states[:-1])} or {states[-1]}"
    when = "" if h.always else (" when it did not hold it already" if h.taking else " when it held it")
    return [f"- {'Takes' if h.taking else 'Frees'} the {target}{when}: sets its `{rec.holds.flag}` to "
            f"{'false' if h.taking else 'true'} (a {words(rec.name)} in status {states_text} holds its {target} alone)."]
