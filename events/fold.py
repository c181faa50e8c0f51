"""Replay: a pure fold of stored event rows into the projection every reader uses."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from skiller.events.types import RETRYABLE


class EventRow(NamedTuple):
    """An event as stored: the columns of the `events` table."""

    seq: int
    stream: str
    type: str
    trigger: str | None
    source: str | None
    dest: str | None
    payload: str  # JSON
    artifacts: str  # JSON {name: sha256}
    run_id: str
    at: str  # wall clock, outside every hash
    hash: str = ""  # sha256 chained to the previous event (see store.chain)


@dataclass
class MachineView:
    stream: str
    kind: str
    state: str
    inputs: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # latest sha per artifact name
    last_seq: int = 0
    transitions: int = 0
    last_error: str | None = None
    failure_kind: str | None = None  # kind of the StepFailed since the last transition
    tests_ran: int = 0
    payload: dict[str, Any] = field(default_factory=dict)  # payload of the last transition

    @property
    def retryable(self) -> bool:
        """Whether the next run tries this machine again: it has not failed, or failed for a reason
        the model did not cause (infrastructure, provider, config, a bug)."""
        return self.failure_kind is None or self.failure_kind in RETRYABLE


@dataclass
class ModelUsage:
    calls: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


Group = tuple[str, str, str]  # (kind, parent kind or "", state)


@dataclass
class Projection:
    machines: dict[str, MachineView] = field(default_factory=dict)
    usage: dict[str, ModelUsage] = field(default_factory=dict)  # "provider/model" -> usage
    events: int = 0
    runs: int = 0
    config: dict[str, Any] | None = None
    # How many machines sit in each (kind, parent kind, state): kept by the fold so that questions
    # about all machines ("is every domain done?") cost O(states), not O(machines), per commit.
    census: dict[Group, int] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[MachineView]:
        return [m for m in self.machines.values() if m.kind == kind]

    def count(self, kind: str, states: Iterable[str] | None = None, parent: str | None = None) -> int:
        """Machines of `kind` (in `states`, under a parent of kind `parent`, when given)."""
        wanted = None if states is None else set(states)
        return sum(n for (k, pk, st), n in self.census.items()
                   if k == kind and (wanted is None or st in wanted) and (parent is None or pk == parent))


def _group(m: MachineView) -> Group:
    parent = m.inputs.get("parent")
    return (m.kind, parent.partition(":")[0] if isinstance(parent, str) else "", m.state)


def _move(p: Projection, before: Group | None, after: Group) -> None:
    if before is not None:
        left = p.census[before] - 1
        if left:
            p.census[before] = left
        else:
            del p.census[before]
    p.census[after] = p.census.get(after, 0) + 1


def apply(p: Projection, row: EventRow | tuple) -> None:
    """Fold one event into the projection (mutating it: replay speed matters).

    `row` is read by position (the `events` columns in `EventRow` order), so the store can hand over
    its cursor's plain tuples without building a named tuple per event."""
    p.events += 1
    t = row[2]
    if t == "Transitioned":
        m = p.machines[row[1]]
        before = _group(m)
        m.state = row[5]
        _move(p, before, _group(m))
        m.last_seq = row[0]
        m.transitions += 1
        if row[7] != "{}":
            m.artifacts.update(json.loads(row[7]))
        m.payload = json.loads(row[6]) if row[6] != "{}" else {}
        m.last_error = m.failure_kind = None
    elif t == "LLMCalled":
        d = json.loads(row[6])
        u = p.usage.get(key := f"{d['provider']}/{d['model']}")
        if u is None:
            u = p.usage[key] = ModelUsage()
        u.calls += 1
        u.cache_hits += d.get("cache_hit", False)
        u.input_tokens += d.get("input_tokens", 0)
        u.output_tokens += d.get("output_tokens", 0)
    elif t == "MachineCreated":
        d = json.loads(row[6])
        old = p.machines.get(row[1])
        m = p.machines[row[1]] = MachineView(
            stream=row[1], kind=d["kind"], state=d["initial"], inputs=d.get("inputs", {}),
            artifacts=json.loads(row[7]), last_seq=row[0],
        )
        _move(p, None if old is None else _group(old), _group(m))
    elif t == "TestsRan":
        p.machines[row[1]].tests_ran += 1
    elif t == "StepFailed":
        m = p.machines.get(row[1])
        if m is not None:
            d = json.loads(row[6])
            m.last_error, m.failure_kind = d["error"], d["kind"]
    elif t == "RunStarted":
        p.runs += 1
        p.config = json.loads(row[6])["config"]


def fold(rows: Iterable[EventRow], into: Projection | None = None) -> Projection:
    p = into or Projection()
    for row in rows:
        apply(p, row)
    return p
