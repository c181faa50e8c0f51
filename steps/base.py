"""What every step shares: its context, its error type, and the registry its decorator fills."""
from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorKind = Literal["infrastructure", "provider", "validation", "sandbox", "tool", "config", "internal"]


class StepError(Exception):
    """An expected failure of a step, as one line; `kind` names the boundary crossed."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Frozen(BaseModel):
    """Base of every artifact model: frozen, strict, canonical JSON is what the store hashes."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Spawn(Frozen):
    """A machine a step brings into being (e.g. one Domain machine per blueprint)."""

    stream: str
    kind: Literal["domain", "fusion", "task"]
    initial: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    artifacts: dict[str, Any] = Field(default_factory=dict)  # name -> model | bytes | str


class MachineSummary(Frozen):
    """What a step may know of another machine: where it is, not its artifacts' content."""

    kind: str
    state: str
    inputs: dict[str, Any]
    payload: dict[str, Any]


class MachineIndex(Frozen):
    """Every machine of the workspace by stream (for a fusion's steps, its members' machines: those whose
    `domain` input is a member); a step asks for it by naming an input `machines`."""

    machines: dict[str, MachineSummary]

    def of_kind(self, kind: str) -> dict[str, MachineSummary]:
        return {s: m for s, m in self.machines.items() if m.kind == kind}


class StepOutput(BaseModel):
    """Base of step outputs. Extra fields are artifacts named after the field."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    trigger: str | None = None  # which of the step's triggers fired (when it has several)
    payload: dict[str, Any] = Field(default_factory=dict)  # small facts kept in the event
    spawn: list[Spawn] = Field(default_factory=list)


@dataclass
class StepContext:
    """Everything a step may use. No globals, no wall clock, no unseeded randomness."""

    stream: str
    config: Any  # the whole Config; steps read their own section
    llm: Any  # StepLLM
    rng: random.Random
    clock: dt.date
    sandbox: Any
    record: list = field(default_factory=list)  # events committed with the transition
    chat: Any = None  # chat-capable providers by name ("anthropic", "openai") for model agents/users in rollouts
    environments: Any = None  # servers.EnvironmentPool: warm workers shared by s16/s18/s19 (None: start one each)


def seeded_rng(seed: int, stream: str, step: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{stream}|{step}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# An input `members_x: dict[str, X]` gathers artifact `x` of each member domain of a fusion
# (of every domain holding it, for the world).
MEMBERS_PREFIX = "members_"
StepFn = Callable[[BaseModel, StepContext], Awaitable[StepOutput]]


Ready = Callable[[Any, Any, Any], bool]  # (machine view, config, projection) -> whether the step has work to do
# What a `ready` function reads: only its own machine (re-checked when that machine changes), or other
# machines too (re-checked after every commit, so it must be cheap: ask `Projection.count`, never scan).
ReadyScope = Literal["machine", "workspace"]


@dataclass(frozen=True)
class StepSpec:
    name: str  # "s04"
    machine: str  # world | domain | fusion | task
    source: str
    triggers: dict[str, str]  # trigger -> dest
    fn: StepFn
    input_model: type[BaseModel]
    output_model: type[StepOutput]
    ready: Ready | None = None  # for steps that only sometimes have work (e.g. a new rollout campaign)
    ready_scope: ReadyScope = "machine"


REGISTRY: dict[tuple[str, str], StepSpec] = {}


def step(name: str, machine: str, source: str, triggers: dict[str, str], ready: Ready | None = None,
         ready_scope: ReadyScope = "machine"):
    """Register a step for (machine, source). The decorator only records."""

    def register(fn: StepFn) -> StepFn:
        hints = fn.__annotations__
        spec = StepSpec(name, machine, source, triggers, fn,
                        _resolve(fn, hints["inputs"]), _resolve(fn, hints["return"]), ready, ready_scope)
        key = (machine, source)
        if key in REGISTRY and REGISTRY[key].fn.__qualname__ != fn.__qualname__:
            raise RuntimeError(f"two steps registered for {machine}:{source}")
        REGISTRY[key] = spec
        return fn

    return register


def _resolve(fn: Callable, hint: Any) -> Any:
    if isinstance(hint, str):
        return eval(hint, fn.__globals__)  # annotations are strings under `from __future__`
    return hint
