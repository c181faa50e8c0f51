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


class Unit:
    """The model a `transitions` machine drives: one stream of the log. Its state is only ever
    set from the fold; firing a trigger runs `on_commit`, which appends the event."""

    def __init__(self, stream: str, kind: str, state: str, on_commit: Callable[[Any], Any]) -> None:
        self.stream, self.kind = stream, kind
        self._on_commit = on_commit
        self.machine = AsyncMachine(
            model=self, states=STATES[kind], transitions=[dict(t) for t in transitions_of(kind)], initial=state,
            send_event=True, auto_transitions=False, after_state_change="_commit", model_attribute="state",
        )

    async def _commit(self, event) -> None:
        await self._on_commit(self, event)
