"""The log audit of `replay --verify`: the file, the hash chain, and every event against the machines.

Everything wrong is reported as drift with the seq it was found at; nothing here raises on a damaged
or hand-edited log, so the audit always finishes with a list a person can act on.
"""
from __future__ import annotations

import json
import sqlite3
import typing
from collections import Counter
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel

from skiller.events import EVENT_TYPES, EventRow, Projection, apply
from skiller.statemachine import STATES, transitions_of
from skiller.steps import StepOutput, load_all
from skiller.store import Store, chain_drift


@dataclass(frozen=True, order=True)
class Drift:
    """One thing wrong with the log; seq 0 is the database file as a whole."""

    seq: int
    kind: str  # corrupt, deleted, edited, reordered, unsealed, invalid JSON, illegal transition, ...
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq else "skiller.db"
        return f"{where}: {self.kind}: {self.detail}"


def prepare() -> None:
    """Load the machine definitions the audit checks against (importing every step takes a moment)."""
    for kind in STATES:
        _allowed(kind)


def audit_log(store: Store) -> tuple[list[Drift], Projection]:
    """Check the database file, the chain and each event; the projection folds every event that could be."""
    proj = Projection()
    conn = store.db.conn
    text_factory, conn.text_factory = conn.text_factory, _text  # a damaged byte in a cell is drift at its seq
    try:
        damage = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if damage != ["ok"]:
            return [Drift(0, "corrupt", "; ".join(damage[:3]))], proj
        rows = list(store.rows())
        kinds = dict(conn.execute("SELECT sha256, kind FROM artifacts"))
    except sqlite3.DatabaseError as exc:
        return [Drift(0, "corrupt", str(exc))], proj
    finally:
        conn.text_factory = text_factory
    drifts = [Drift(*d) for d in chain_drift(rows)]
    drifts += [Drift(r.seq, "corrupt", "the event holds bytes that are not UTF-8 text")
               for r in rows if any(isinstance(v, _Mangled) for v in r)]
    drifts += _events(rows, kinds, proj)
    return sorted(set(drifts)), proj


def _events(rows: list[EventRow], kinds: dict[str, str], proj: Projection) -> list[Drift]:
    """Each event's JSON, type, machine, transition and artifact kinds; folds the sound ones into `proj`."""
    drifts: list[Drift] = []
    spawned = _spawned_kinds(rows, kinds)
    orphans: set[str] = set()  # streams already reported as never created: one line each, not one per event
    for row in rows:
        payload, artifacts = _json(row.payload), _json(row.artifacts)
        bad = [c for c, v in (("payload", payload), ("artifacts", artifacts)) if not isinstance(v, dict)]
        if bad:
            drifts.append(Drift(row.seq, "invalid JSON", f"the {' and '.join(bad)} column is not a JSON object"))
            continue
        if row.type not in EVENT_TYPES:
            drifts.append(Drift(row.seq, "unknown type", f"'{row.type}' is not an event type"))
            continue
        moves = _machine_drift(row, payload, proj)
        orphan = any(d.kind == "unknown machine" for d in moves)
        if not (orphan and row.stream in orphans):
            drifts += moves
        drifts += _artifact_drift(row, artifacts, kinds, proj, spawned)
        if orphan:
            orphans.add(row.stream)
        if row.stream in orphans or (row.type == "MachineCreated" and moves):
            continue  # nothing to fold into, and a second creation must not reset the machine
        try:
            apply(proj, row)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            drifts.append(Drift(row.seq, "unreadable", f"{row.type} cannot be folded ({type(exc).__name__}: {exc})"))
    return drifts


class _Mangled(str):
    """Text decoded from bytes that were not UTF-8 (shown with replacement characters)."""


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return _Mangled(raw.decode(errors="replace"))


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _machine_drift(row: EventRow, payload: dict, proj: Projection) -> list[Drift]:
    """A machine is created once with a known kind and state, and moves only as its kind allows."""
    m = proj.machines.get(row.stream)
    if row.type == "MachineCreated":
        kind, initial = payload.get("kind"), payload.get("initial")
        if m is not None:
            return [Drift(row.seq, "illegal transition", f"{row.stream} is created a second time")]
        if kind not in STATES or initial not in STATES[kind]:
            return [Drift(row.seq, "unknown machine", f"{row.stream}: no {kind} machine starts in '{initial}'")]
        return []
    if row.type != "Transitioned":
        return []
    if m is None:
        return [Drift(row.seq, "unknown machine", f"{row.stream} moves before it was created")]
    if (row.trigger, row.source, row.dest) not in _allowed(m.kind):
        return [Drift(row.seq, "illegal transition",
                      f"a {m.kind} machine has no transition {row.source} --{row.trigger}--> {row.dest}")]
    if row.source != m.state:
        return [Drift(row.seq, "illegal transition", f"{row.stream} leaves {row.source} but was in {m.state}")]
    return []


@cache
def _allowed(kind: str) -> frozenset[tuple[str, str, str]]:
    return frozenset((t["trigger"], t["source"], t["dest"]) for t in transitions_of(kind))


def _artifact_drift(row: EventRow, artifacts: dict, kinds: dict[str, str], proj: Projection,
                    spawned: dict[str, str]) -> list[Drift]:
    """Every reference names a stored artifact of the kind its step writes under that name."""
    drifts = []
    expected = _step_kinds(row, proj) if row.type == "Transitioned" else {}
    for name, sha in artifacts.items():
        actual = kinds.get(sha) if isinstance(sha, str) else None
        want = expected.get(name) or ({spawned[name]} if row.type == "MachineCreated" and name in spawned else None)
        if actual is None:
            drifts.append(Drift(row.seq, "missing artifact", f"'{name}' points at {str(sha)[:12]}, which is not stored"))
        elif want and actual not in want:
            drifts.append(Drift(row.seq, "artifact kind",
                                f"'{name}' points at a {actual} ({sha[:12]}), expected a {' or '.join(sorted(want))}"))
    return drifts


def _step_kinds(row: EventRow, proj: Projection) -> dict[str, set[str]]:
    m = proj.machines.get(row.stream)
    return _output_kinds(m.kind, row.source) if m is not None else {}


@cache
def _output_kinds(machine: str, source: str | None) -> dict[str, set[str]]:
    """The artifact kinds the step of (machine, source) writes, by name, read off its output model."""
    spec = load_all().get((machine, source))
    if spec is None:
        return {}
    out: dict[str, set[str]] = {}
    for name, info in spec.output_model.model_fields.items():
        if name in StepOutput.model_fields:
            continue
        options = typing.get_args(info.annotation) or (info.annotation,)
        out[name] = {name if t in (bytes, str) else t.__name__ for t in options
                     if t in (bytes, str) or (isinstance(t, type) and issubclass(t, BaseModel))}
    return {n: k for n, k in out.items() if k}


def _spawned_kinds(rows: list[EventRow], kinds: dict[str, str]) -> dict[str, str]:
    """Artifacts a step hands to the machines it spawns have no declared type: the kind most
    references under a name point at is the one expected of all of them."""
    seen: dict[str, Counter] = {}
    for row in rows:
        if row.type == "MachineCreated":
            artifacts = _json(row.artifacts)
            for name, sha in (artifacts.items() if isinstance(artifacts, dict) else ()):
                if isinstance(sha, str) and sha in kinds:
                    seen.setdefault(name, Counter())[kinds[sha]] += 1
    return {name: c.most_common(1)[0][0] for name, c in seen.items()}
