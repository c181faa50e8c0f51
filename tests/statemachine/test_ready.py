"""The scheduler's ready set, updated only from the streams each commit touches, equals a full re-scan."""
from __future__ import annotations

import json
import random

import pytest

from skiller.events import EventRow, Projection, fold
from skiller.config import Config
from skiller.statemachine import STATES, TERMINAL
from skiller.statemachine.ready import ReadySet
from skiller.steps import load_all
from skiller.steps.s18_rollout import campaign

CONFIG = Config()
REGISTRY = load_all()


def full_scan(proj: Projection, allow, blocked: set[str]) -> list[str]:
    """The definition of ready: what the scheduler computed by scanning every machine after every commit."""
    out = []
    for m in proj.machines.values():
        spec = REGISTRY.get((m.kind, m.state))
        if (spec is None or m.state in TERMINAL or m.stream in blocked or not allow(m, proj)
                or (spec.ready is not None and not spec.ready(m, CONFIG, proj))):
            continue
        out.append(m.stream)
    return sorted(out)


class Log:
    """Random but well-formed event rows: machines are created before they move."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.seq, self.kinds = rng, 0, {}

    def row(self, stream, type_, payload, trigger=None, source=None, dest=None) -> EventRow:
        self.seq += 1
        return EventRow(self.seq, stream, type_, trigger, source, dest, json.dumps(payload), "{}", "r", "")

    def create(self, stream: str, kind: str, parent: str | None = None) -> EventRow:
        self.kinds[stream] = kind
        inputs = {"domain": stream.partition(":")[2].split("/")[0]} | ({"parent": parent} if parent else {})
        return self.row(stream, "MachineCreated", {"kind": kind, "initial": STATES[kind][0], "inputs": inputs})

    def move(self, stream: str) -> EventRow:
        states = STATES[self.kinds[stream]]
        # Mostly late states, so the world often waits in `blueprinted` for every domain to settle.
        dest = self.rng.choice(states if self.rng.random() < 0.3 else states[-3:] if stream != "world" else ["blueprinted"])
        payload = {"campaign": self.rng.choice([campaign(CONFIG), "older"])} if self.rng.random() < 0.5 else {}
        return self.row(stream, "Transitioned", payload, "t", "?", dest)


@pytest.mark.parametrize("seed", range(8))
def test_ready_set_from_touched_streams_equals_a_full_rescan(seed):
    rng = random.Random(seed)
    log = Log(rng)
    allow = (lambda m, p: True) if seed % 2 else (lambda m, p: m.kind != "task" or m.state != "rolled_out")
    blocked: set[str] = set()
    proj = fold([log.create("world", "world")])
    ready = ReadySet(REGISTRY, CONFIG, allow, lambda s: s in blocked)
    ready.check(proj, proj.machines)
    domains: list[str] = []
    for _ in range(300):
        batch = []
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.1 or not domains:
                domains.append(f"domain:D{len(domains)}")
                batch.append(log.create(domains[-1], "domain"))
            elif roll < 0.3:
                parent = rng.choice(domains + ["fusion:F"])
                batch.append(log.create(f"task:{parent.split(':')[1]}/{log.seq:04d}", "task", parent))
            else:
                batch.append(log.move(rng.choice(sorted(log.kinds))))
        if rng.random() < 0.05:
            blocked.add(batch[-1].stream)  # a step failed: the stream stays out for the run
        fold(batch, into=proj)
        ready.check(proj, {r.stream for r in batch})
        assert list(ready) == full_scan(proj, allow, blocked)


def test_pop_gives_the_smallest_ready_stream_and_takes_it_out():
    log = Log(random.Random(0))
    proj = fold([log.create("world", "world"), log.create("domain:B", "domain"), log.create("domain:A", "domain")])
    ready = ReadySet(REGISTRY, CONFIG, lambda m, p: True, lambda s: False)
    ready.check(proj, proj.machines)
    assert [ready.pop(), ready.pop(), ready.pop(), ready.pop()] == ["domain:A", "domain:B", "world", None]
    ready.check(proj, ["domain:B"])  # checked again (its step committed or failed): back in the set
    assert list(ready) == ["domain:B"]
