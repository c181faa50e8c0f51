"""The ready set: which machines have a step to run, kept up to date from the streams each commit touches."""
from __future__ import annotations

import heapq
from typing import Any, Callable, Iterable

from skiller.events import MachineView, Projection
from skiller.statemachine.machines import TERMINAL
from skiller.steps import StepSpec

Allow = Callable[[MachineView, Projection], bool]


class ReadySet:
    """Machines ready to advance, smallest stream first.

    Readiness of a machine changes only when its own events are folded, except for steps whose
    `ready` reads other machines (`ready_scope="workspace"`, e.g. s10 waiting for every domain):
    those few are re-checked after every commit. So the cost of a commit is the streams it
    touched plus the watchers, never a scan of every machine. `allow` must likewise read only
    the machine it is given (and the projection only for machines committed with it).
    """

    def __init__(self, registry: dict[tuple[str, str], StepSpec], config: Any, allow: Allow,
                 blocked: Callable[[str], bool]) -> None:
        self._registry, self._config, self._allow, self._blocked = registry, config, allow, blocked
        self._ready: set[str] = set()
        self._heap: list[str] = []  # may hold streams no longer ready: skipped when popped
        self._watchers: set[str] = set()

    def __len__(self) -> int:
        return len(self._ready)

    def __iter__(self):
        return iter(sorted(self._ready))

    def check(self, proj: Projection, streams: Iterable[str]) -> None:
        """Re-decide the given streams and every watcher against the current projection."""
        for stream in set(streams) | self._watchers:
            m = proj.machines.get(stream)
            if m is not None and self._is_ready(m, proj):
                if stream not in self._ready:
                    self._ready.add(stream)
                    heapq.heappush(self._heap, stream)
            else:
                self._ready.discard(stream)

    def pop(self) -> str | None:
        """The smallest ready stream (it leaves the set until it is checked again), or None."""
        while self._heap:
            stream = heapq.heappop(self._heap)
            if stream in self._ready:
                self._ready.discard(stream)
                return stream
        return None

    def _is_ready(self, m: MachineView, proj: Projection) -> bool:
        spec = self._registry.get((m.kind, m.state))
        if spec is not None and spec.ready is not None and spec.ready_scope == "workspace":
            self._watchers.add(m.stream)
        else:
            self._watchers.discard(m.stream)
        return not (spec is None or m.state in TERMINAL or not m.retryable or self._blocked(m.stream)
                    or not self._allow(m, proj) or (spec.ready is not None and not spec.ready(m, self._config, proj)))
