"""When a record's status may hold, relative to its date: a lexicon of status words that the
catalog's `status_timing` overrides where a domain's dates mean something else."""
from __future__ import annotations

from typing import NamedTuple

from skiller.world.catalog.model import CatalogRecord

__all__ = ["FUTURE_STATUSES", "PAST_STATUSES", "RecordTiming", "status_timing"]

# A status naming what already happened needs its date to have come; one naming what is planned
# needs its date ahead. Words that depend on what the date means (submitted, issued, open...) are
# in neither list: a record whose date gives them a timing says so in `status_timing`.
PAST_STATUSES = frozenset({
    "activated", "active", "attended", "charging", "checked_in", "checked_out", "closed", "collected",
    "completed", "delivered", "dispatched", "ended", "ending", "expired", "failed", "held", "in_progress",
    "in_service", "in_transit", "lapsed", "missed", "no_show", "overdue", "passed", "paused", "picked_up",
    "ready_for_pickup", "resolved", "returned", "seated", "sent", "used",
})
FUTURE_STATUSES = frozenset({
    "applied", "booked", "confirmed", "label_created", "pending", "requested", "reserved", "scheduled",
})


class RecordTiming(NamedTuple):
    """A record's status/date rule: which statuses need `date` past, which need it ahead."""

    date: str
    past: list[str]
    future: list[str]


def status_timing(record: CatalogRecord) -> RecordTiming | None:
    """The record's status/date rule, or None when it has no date or no timed status."""
    dates = [a.name for a in record.attributes if a.type == "date"]
    date = record.status_date or (dates[0] if dates else None)
    if date is None:
        return None
    past, future = [], []
    for status in record.statuses:
        when = record.status_timing.get(status)
        if when is None:
            when = "past" if status in PAST_STATUSES else "future" if status in FUTURE_STATUSES else "any"
        if when == "past":
            past.append(status)
        elif when == "future":
            future.append(status)
    return RecordTiming(date, past, future) if past or future else None
