"""Everything the answer needs is in the prompt: in a builtin run, every `request.context` value the builtin
actually reads to answer (recorded as it reads) appears in the text a model would be sent."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from skiller.world.builtin import BuiltinProvider
from skiller.llm.interface import LLMRequest, LLMResponse
from skiller.workspace import Workspace
from tests.conftest import cli, make_workspace, small

# Context keys a model does not need, each with why: they steer the builtin's own determinism.
CONTROL = {
    "seed": "the run's seed feeds the builtin's RNG; a model makes its own choices",
    "stream": "the task's stream name seeds the builtin's phrasing RNG",
    "attempt": "which re-ask this is; a model sees the conversation itself",
}
CONTROL_OF = {  # (purpose, path) -> why a model does not need it
    ("s11.fuse", "combination.name"): "the joined member names seed the builtin's pairing RNG",
}
# Gaps in prompts, named so they are fixed (a fixed gap still passes). None today.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


class _Reads:
    def __init__(self) -> None:
        self.leaves: list[tuple[str, Any]] = []


def _wrap(value: Any, path: str, reads: _Reads) -> Any:
    if isinstance(value, dict):
        return _RecordingDict(value, path, reads)
    if isinstance(value, list):
        return _RecordingList(value, path, reads)
    reads.leaves.append((path, value))
    return value


class _RecordingDict(dict):
    """A context dict that records every value read through it (nested containers are wrapped too)."""

    def __init__(self, data: dict, path: str, reads: _Reads) -> None:
        super().__init__(data)
        self._path, self._reads = path, reads

    def __getitem__(self, key: Any) -> Any:
        return _wrap(super().__getitem__(key), f"{self._path}.{key}".lstrip("."), self._reads)

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self):  # type: ignore[override]
        return [(k, self[k]) for k in super().keys()]

    def values(self):  # type: ignore[override]
        return [self[k] for k in super().keys()]


class _RecordingList(list):
    def __init__(self, data: list, path: str, reads: _Reads) -> None:
        super().__init__(data)
        self._path, self._reads = path, reads

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [_wrap(v, f"{self._path}[]", self._reads) for v in super().__getitem__(index)]
        return _wrap(super().__getitem__(index), f"{self._path}[]", self._reads)

    def __iter__(self):
        for value in super().__iter__():
            yield _wrap(value, f"{self._path}[]", self._reads)


class RecordingBuiltin:
    """The builtin provider, answering through a context that records what it reads."""

    name = "builtin"

    def __init__(self) -> None:
        self.inner = BuiltinProvider()
        self.missing: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.purposes: set[str] = set()

    def model_for(self, role):
        return self.inner.model_for(role)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        reads = _Reads()
        watched = request.model_copy(update={"context": _RecordingDict(request.context, "", reads)})
        response = await self.inner.complete(watched)
        text = request.system + "\n" + "\n".join(m.content for m in request.messages)
        self.purposes.add(request.purpose)
        for path, value in reads.leaves:
            exempt = path.split(".")[0].split("[")[0] in CONTROL or (request.purpose, path) in CONTROL_OF
            if not exempt and not _present(value, text):
                self.missing[request.purpose].add((path, repr(value)[:80]))
        return response


def _present(value: Any, text: str) -> bool:
    if value is None or value == "":
        return True
    forms = {str(value), json.dumps(value, ensure_ascii=False)}
    if isinstance(value, str):
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])  # inside a JSON dump in the prompt
    if isinstance(value, bool):
        forms |= {str(value).lower(), str(int(value))}
    elif isinstance(value, float) and value.is_integer():
        forms.add(str(int(value)))
    return any(form in text for form in forms)


@pytest.fixture
def recording(monkeypatch) -> RecordingBuiltin:
    provider = RecordingBuiltin()
    monkeypatch.setattr(Workspace, "provider", lambda self: provider)
    return provider


def test_every_context_value_the_builtin_reads_is_in_the_prompt(tmp_path, recording):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *small(), "--set", "steps.s14.templates_per_domain=12",
               "--set", "fusion.num_combinations=2", "--set", "rollout.in_run=false") == 0
    # the run asked every kind of synthesis request (s15 re-plans only when a selector finds nothing)
    expected = {"s01.domains", "s02.entities", "s03.relationships", "s04.blueprint", "s06.database_code",
                "s07.policy", "s08.tool_graph", "s09.implementation", "s10.fit", "s11.fuse", "s13.policy_merge",
                "s14.templates", "s14.judge", "s17.persona", "s17.query"}
    assert expected <= recording.purposes
    missing = {(purpose, path): value for purpose, found in recording.missing.items() for path, value in found}
    assert {key: value for key, value in missing.items() if key not in KNOWN_GAPS} == {}
