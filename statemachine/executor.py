"""Where step work runs: the `Executor` seam the scheduler hands jobs to, and the in-process executor.

A job is a step with its inputs, already read from the log by the driver; its result is the step's
output and the events it recorded, never a write. So an executor may run the step anywhere (this
process, a Ray worker) while the driver stays the log's single writer, and steps never know where
they run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from pydantic import BaseModel

from skiller.events import StepFailed
from skiller.llm.client import LLMClient, RecordingChat, StepLLM
from skiller.llm.interface import LLMError, ProviderUnavailable
from skiller.servers.sandbox import SandboxUnavailable
from skiller.steps import REGISTRY, StepContext, StepError, StepOutput, StepSpec, load_all, seeded_rng

log = structlog.get_logger()


@dataclass(frozen=True)
class StepJob:
    """One step to run: picklable, so it can cross a process boundary."""

    stream: str
    machine: str  # with `source`, the registry key of the step
    source: str
    inputs: BaseModel


@dataclass
class CachePut:
    """An LLM answer computed away from the driver, for the driver to write into the store's cache."""

    key: str
    provider: str
    model: str
    purpose: str
    response: dict
    input_tokens: int
    output_tokens: int


@dataclass
class StepResult:
    """What running a step gives back: its output or its failure, and the events to commit with it."""

    output: StepOutput | None
    record: list
    error: StepFailed | None = None
    cache: list[CachePut] = field(default_factory=list)  # answers the driver still has to cache


@dataclass
class Resources:
    """What a step's context is built from, in the process that runs it."""

    config: Any
    llm: LLMClient
    sandbox: Any
    chat: dict = field(default_factory=dict)  # chat-capable providers by name
    environments: Any = None  # servers.EnvironmentPool


class Executor(Protocol):
    async def run(self, job: StepJob) -> StepResult: ...

    def close(self) -> None: ...


def step_of(job: StepJob) -> StepSpec:
    key = (job.machine, job.source)
    return REGISTRY.get(key) or load_all()[key]  # a fresh worker process registers the steps once


def failure(stream: str, step: str, kind: str, message: str) -> StepFailed:
    line = message.strip().splitlines()[0] if message.strip() else kind
    log.warning("step failed", stream=stream, step=step, kind=kind, error=line)
    return StepFailed(stream=stream, step=step, kind=kind, error=line)  # type: ignore[arg-type]


async def run_step(job: StepJob, res: Resources, llm: LLMClient | None = None) -> StepResult:
    """Run one step with a context built from `res` (asking `llm` when given); expected failures become data."""
    spec = step_of(job)
    record: list = []
    ctx = StepContext(stream=job.stream, config=res.config, llm=StepLLM(llm or res.llm, job.stream, record),
                      rng=seeded_rng(res.config.seed, job.stream, spec.name), clock=res.config.clock,
                      sandbox=res.sandbox, record=record,
                      chat={name: RecordingChat(p, job.stream, record) for name, p in (res.chat or {}).items()},
                      environments=res.environments)

    def failed(kind: str, message: str) -> StepResult:
        return StepResult(None, record, failure(job.stream, spec.name, kind, message))

    try:
        output = await spec.fn(job.inputs, ctx)
    except StepError as exc:
        return failed(exc.kind, str(exc))
    except SandboxUnavailable as exc:  # the harness, not the generated code: no repair round is spent
        return failed("infrastructure", str(exc))
    except ProviderUnavailable as exc:
        return failed("provider", str(exc))
    except LLMError as exc:  # the model answered, but never validly
        return failed("validation", str(exc))
    except Exception as exc:  # a bug, not an expected failure: one line here, traceback in the log
        log.exception("step crashed", stream=job.stream, step=spec.name)
        return failed("internal", f"{type(exc).__name__}: {exc}")
    return StepResult(output, record)


class LocalExecutor:
    """Runs steps in this process, on the scheduler's event loop (the default)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def run(self, job: StepJob) -> StepResult:
        return await run_step(job, self.resources)

    def close(self) -> None:
        pass  # the resources belong to whoever built them
