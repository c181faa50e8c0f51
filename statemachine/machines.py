"""Machine definitions: the state vocabulary per kind, and `transitions` machines built from the step registry."""
from __future__ import annotations

import functools
from typing import Any, Callable

from transitions.extensions.asyncio import AsyncMachine

from skiller.steps import load_all

STATES: dict[str, list[str]] = {
    "world": ["seeded", "domains_expanded", "entities_extracted", "graph_built", "blueprinted", "combined"],
    "domain": ["blueprinted", "tools_listed", "database_generated", "policy_written", "tool_graph_built",
               "implementing", "testing", "repairing", "implemented", "failed", "templated"],
    "fusion": ["selected", "trajectories_fused", "databases_fused", "policies_merged", "templated", "failed"],
    "task": ["templated", "instances_selected", "validated", "rejected", "instantiated", "rolled_out", "evaluated"],
}
TERMINAL = {"failed", "rejected"}


@functools.cache
def transitions_of(kind: str) -> tuple[dict[str, str], ...]:
    """Every legal transition of a kind, as declared by the steps registered for it (computed once:
    a machine is built for every commit)."""
    out = []
    for (machine, source), spec in sorted(load_all().items()):
        if machine == kind:
            out.extend({"trigger": t, "source": source, "dest": d} for t, d in spec.triggers.items())
    return tuple(out)


@functools.cache
def machine_of(kind: str) -> AsyncMachine:
    """One `transitions` machine per kind, built once; each commit's `Unit` joins it for its transition (building
    a machine per commit was a tenth of the scheduler's CPU at volume)."""
    return AsyncMachine(
        model=None, states=STATES[kind], transitions=[dict(t) for t in transitions_of(kind)],
        initial=STATES[kind][0], send_event=True, auto_transitions=False, after_state_change="_commit",
        model_attribute="state",
    )


class Unit:
    """The model a `transitions` machine drives: one stream of the log. Its state is only ever
    set from the fold; firing a trigger runs `on_commit`, which appends the event. Use it as an async
    context manager: it joins its kind's machine at its state and leaves it on exit."""

    def __init__(self, stream: str, kind: str, state: str, on_commit: Callable[[Any], Any]) -> None:
        self.stream, self.kind, self._state = stream, kind, state
        self._on_commit = on_commit
        self.machine = machine_of(kind)

    async def __aenter__(self) -> "Unit":
        self.machine.add_model(self, initial=self._state)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.machine.remove_model(self)

    async def _commit(self, event) -> None:
        await self._on_commit(self, event)
