"""The hash chain that seals the event log: each event's hash covers its content and the previous hash.

The wall-clock `at` is left out, so a rerun with the same config and seed gives the same chain.
Checking is local: link i holds iff sha256(hash[i-1] + canonical(row i)) == hash[i], so an edit
breaks exactly the edited event's link, a deletion leaves a gap in `seq`, and two events swapped
break links that a swap would mend.
"""
from __future__ import annotations

import hashlib
import json
from typing import Sequence

from skiller.events import EventRow

GENESIS = ""  # the "previous hash" of the first event


def link(prev: str, seq: int, stream: str, type_: str, trigger: str | None, source: str | None,
         dest: str | None, payload: str, artifacts: str, run_id: str) -> str:
    """The hash of one event: payload and artifacts as their stored JSON text, so any byte edit shows."""
    canonical = json.dumps([seq, stream, type_, trigger, source, dest, payload, artifacts, run_id],
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def row_link(prev: str, row: EventRow, seq: int | None = None) -> str:
    return link(prev, row.seq if seq is None else seq, row.stream, row.type, row.trigger, row.source, row.dest,
                row.payload, row.artifacts, row.run_id)


def chain_drift(rows: Sequence[EventRow]) -> list[tuple[int, str, str]]:
    """(seq, kind of drift, detail) for every place the chain does not hold, in seq order."""
    problems: list[tuple[int, str, str]] = []
    broken: list[int] = []  # positions whose link fails
    prev_seq, prev_hash = 0, GENESIS
    for i, row in enumerate(rows):
        if row.seq != prev_seq + 1:
            # the row after a gap cannot be checked: the hash it chains to was deleted with the gap
            missing = f"{prev_seq + 1}" if row.seq == prev_seq + 2 else f"{prev_seq + 1}-{row.seq - 1}"
            problems.append((prev_seq + 1, "deleted", f"event(s) {missing} are missing from the log"))
        elif not row.hash:
            problems.append((row.seq, "unsealed", "the event carries no hash"))
        elif row_link(prev_hash, row) != row.hash:
            broken.append(i)
        prev_seq, prev_hash = row.seq, row.hash or ""
    explained: set[int] = set()
    for i, j in _swaps(rows, broken):
        problems.append((rows[i].seq, "reordered", f"events {rows[i].seq} and {rows[j].seq} were swapped"))
        explained |= {i, i + 1, j, j + 1}
    for i in broken:
        if i not in explained:
            problems.append((rows[i].seq, "edited", "the event does not match its hash"))
    return sorted(problems)


def _swaps(rows: Sequence[EventRow], broken: list[int], limit: int = 64) -> list[tuple[int, int]]:
    """Pairs of broken positions that, exchanged back, mend every link they touch."""
    candidates = broken[:limit]  # a log broken in many places is reported as edits, not searched for swaps
    found: list[tuple[int, int]] = []
    used: set[int] = set()
    for a, i in enumerate(candidates):
        for j in candidates[a + 1:]:
            if i in used or j in used:
                continue
            order = {i: rows[j], j: rows[i]}
            if all(_mended(rows, order, p) for p in {i, i + 1, j, j + 1} if p < len(rows)):
                found.append((i, j))
                used |= {i, j}
    return found


def _mended(rows: Sequence[EventRow], order: dict[int, EventRow], p: int) -> bool:
    row = order.get(p, rows[p])
    prev = order.get(p - 1, rows[p - 1]).hash if p > 0 else GENESIS
    return row_link(prev, row, seq=rows[p].seq) == row.hash
