"""Event types of the log: small tagged models, one per kind of fact."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    stream: str  # "world", "domain:Hospital", "fusion:Hospital+Insurance", "task:Hospital/0042"
    artifacts: dict[str, str] = Field(default_factory=dict)  # name -> sha256


class RunStarted(_Event):
    type: Literal["RunStarted"] = "RunStarted"
    command: str
    config: dict[str, Any]  # resolved config, secrets never included
    overrides: list[str] = Field(default_factory=list)  # the command's `--set key=value`s, as given
    file_config: dict[str, Any] = Field(default_factory=dict)  # the config file alone, resolved (change detection)
    changed: list[str] = Field(default_factory=list)  # file keys changed since the last run, applied by --set


class MachineCreated(_Event):
    type: Literal["MachineCreated"] = "MachineCreated"
    kind: Literal["world", "domain", "fusion", "task"]
    initial: str
    inputs: dict[str, Any] = Field(default_factory=dict)


class Transitioned(_Event):
    type: Literal["Transitioned"] = "Transitioned"
    trigger: str
    source: str
    dest: str
    payload: dict[str, Any] = Field(default_factory=dict)


FailureKind = Literal["infrastructure", "provider", "validation", "sandbox", "tool", "config", "internal"]
# Not the model's fault: the harness or the provider could not do the work. Nothing is spent (no
# repair round, no transition); the machine stays where it was and the next run retries it.
NOT_THE_MODELS_FAULT: frozenset[str] = frozenset({"infrastructure", "provider"})
# Worth retrying on the next run: the above, plus what a fixed config or a fixed bug changes. The
# model's own failures (validation, sandbox, tool) would only repeat from the cache: they are final.
RETRYABLE: frozenset[str] = NOT_THE_MODELS_FAULT | {"config", "internal"}


class StepFailed(_Event):
    type: Literal["StepFailed"] = "StepFailed"
    step: str
    kind: FailureKind
    error: str  # one line


class LLMCalled(_Event):
    type: Literal["LLMCalled"] = "LLMCalled"
    provider: str
    model: str
    purpose: str
    request_hash: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    cache_hit: bool = False
    attempts: int = 1


class TestsRan(_Event):
    type: Literal["TestsRan"] = "TestsRan"
    step: str
    attempt: int
    passed: int
    failed: int
    ok: bool
    output: str  # excerpt


class Repaired(_Event):
    type: Literal["Repaired"] = "Repaired"
    step: str
    attempt: int


Event = Annotated[
    Union[RunStarted, MachineCreated, Transitioned, StepFailed, LLMCalled, TestsRan, Repaired],
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_TYPES = ("RunStarted", "MachineCreated", "Transitioned", "StepFailed", "LLMCalled", "TestsRan", "Repaired")
