"""Failed machines grouped by cause, one line per cause: what `skiller run` and `rollout` report."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from skiller.events import NOT_THE_MODELS_FAULT, RETRYABLE, MachineView, Projection

__all__ = ["Cause", "causes", "failed_machines", "format_causes"]

_SHOWN_STREAMS = 4


@dataclass(frozen=True)
class Cause:
    kind: str  # a StepFailed kind, or "tests" for a machine that ended in `failed`
    error: str
    streams: tuple[str, ...]

    @property
    def retried(self) -> bool:
        """Whether the next run tries these machines again."""
        return self.kind in RETRYABLE


def failed_machines(proj: Projection) -> list[MachineView]:
    return [m for m in proj.machines.values() if m.last_error or m.state == "failed"]


def causes(proj: Projection) -> list[Cause]:
    """Failed machines by (kind, error), the infrastructure and provider causes first."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for m in failed_machines(proj):
        if m.last_error:
            key = (m.failure_kind or "internal", m.last_error)
        else:
            key = ("tests", str(m.payload.get("reason") or m.state))
        groups[key].append(m.stream)
    out = [Cause(kind, error, tuple(sorted(streams))) for (kind, error), streams in groups.items()]
    return sorted(out, key=lambda c: (c.kind not in NOT_THE_MODELS_FAULT, -len(c.streams), c.kind, c.error))


def format_causes(found: list[Cause]) -> list[str]:
    """One line per cause: kind, count, the cause itself, what happens next, and the streams."""
    lines = []
    for c in found:
        shown = ", ".join(c.streams[:_SHOWN_STREAMS]) + (
            f", … (+{len(c.streams) - _SHOWN_STREAMS})" if len(c.streams) > _SHOWN_STREAMS else "")
        noun = "machine" if len(c.streams) == 1 else "machines"
        then = "the next run retries" if c.retried else "final"
        lines.append(f"failed ({c.kind}, {len(c.streams)} {noun}, {then}): {c.error} [{shown}]")
    return lines
