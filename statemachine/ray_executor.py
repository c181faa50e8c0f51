"""Runs step work (and so rollouts and evaluations) as Ray tasks; the driver keeps the log's single writer.

A Ray task gets a `StepJob` (inputs already read from the log by the driver) and returns a
`StepResult`: the output, the events the step recorded, and the LLM answers it computed, which the
driver caches when it commits. What cannot cross a process boundary (the provider, the sandbox, the
warm environment pool) is rebuilt once per worker process by a picklable `build` callable. The
worker reads the workspace's LLM cache read-only when it can see the file (one machine, or shared
storage); elsewhere it asks its own provider (the builtin is pure, so the answer is the same).
A worker that dies mid-step is retried by Ray; nothing was written, so nothing is lost.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable

import structlog

from skiller.llm.client import LLMClient
from skiller.statemachine.executor import CachePut, Resources, StepJob, StepResult, failure, run_step, step_of

log = structlog.get_logger()

MAX_RETRIES = 3  # a worker process dying mid-step (killed, OOM, lost node) reruns the step this often
HOLD_ENV = "SKILLER_RAY_HOLD"  # tests only: "STEP:PATH" makes the first job of STEP park until killed
_HOLD_SECONDS = 600.0
_MISSING = "scheduler.executor=ray needs Ray: pip install -e '.[ray]'"


class RayUnavailable(Exception):
    """Ray is not installed or cannot be reached, as one line."""


class PendingCache:
    """The store's LLM cache as a worker sees it: lookups read the workspace, new answers wait for the driver."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader  # a read-only Store, or None when this machine cannot see the workspace
        self._new: dict[str, CachePut] = {}
        self.puts: list[CachePut] = []

    def cache_get(self, key: str) -> dict | None:
        put = self._new.get(key)
        if put is not None:
            return {"response": put.response, "input_tokens": put.input_tokens, "output_tokens": put.output_tokens}
        return self._reader.cache_get(key) if self._reader is not None else None

    def cache_put(self, key: str, provider: str, model: str, purpose: str, response: dict,
                  input_tokens: int, output_tokens: int) -> None:
        put = CachePut(key, provider, model, purpose, response, input_tokens, output_tokens)
        self._new[key] = put
        self.puts.append(put)


# Per worker process (Ray reuses processes across tasks): resources built on the first job, and one event
# loop, since async clients and pools are bound to the loop that made them.
_WARM: dict[str, Resources] = {}
_LOOP: asyncio.AbstractEventLoop | None = None


def _work(key: str, build: Callable[[], Resources], job: StepJob, hold: str | None) -> StepResult:
    """The body of a Ray task: run one step in this worker process and return what the driver commits."""
    global _LOOP
    res = _WARM.get(key)
    if res is None:
        res = _WARM[key] = build()
    if hold:
        _hold(hold, job)
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    cache = PendingCache(res.llm.store)
    result = _LOOP.run_until_complete(run_step(job, res, LLMClient(res.llm.provider, cache, res.llm.output_cap)))
    result.cache = cache.puts
    return result


def _hold(hold: str, job: StepJob) -> None:
    """Test hook: the first job of the named step publishes this worker's pid, then waits to be killed."""
    step, path = hold.split(":", 1)
    if step_of(job).name != step:
        return
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    try:
        os.link(tmp, path)  # atomic: only one job ever holds, and a reader never sees a half-written pid
    except FileExistsError:
        return  # the retry of the held job (or another job of the step): run normally
    finally:
        os.unlink(tmp)
    time.sleep(_HOLD_SECONDS)


class RayExecutor:
    """Hands each step to a Ray task; attaches to Ray already started in this process, else to `address`
    (None: a new local instance), and shuts down only what it started."""

    def __init__(self, key: str, build: Callable[[], Resources], address: str | None = None,
                 max_retries: int = MAX_RETRIES) -> None:
        try:
            import ray  # deferred: an optional extra (`pip install -e '.[ray]'`), absent from a plain install
        except ImportError:
            raise RayUnavailable(_MISSING) from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
            except Exception as exc:  # noqa: BLE001 - connection refused, bad address, version mismatch
                line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise RayUnavailable(f"scheduler.ray_address={address}: cannot start or reach Ray ({line})") from exc
        self._key, self._build = key, ray.put(build)  # shipped once, not with every job
        self._remote = ray.remote(max_retries=max_retries, retry_exceptions=False)(_work)
        self._hold = os.environ.get(HOLD_ENV) or None

    async def run(self, job: StepJob) -> StepResult:
        ref = self._remote.remote(self._key, self._build, job, self._hold)
        try:
            return await ref
        except self._ray.exceptions.RayError as exc:  # the worker died past its retries, or could not start
            log.exception("ray task failed", stream=job.stream)
            text = str(exc).strip().splitlines()
            return StepResult(None, [], failure(job.stream, step_of(job).name, "infrastructure",
                                                f"ray: {type(exc).__name__}: {text[0] if text else ''}"))

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
