"""Runs step work in local worker processes, so steps run on every core while this process commits.

The same contract as the Ray executor, without Ray: a worker gets a `StepJob` (inputs already read
from the log by the driver) and returns a `StepResult` with the LLM answers it computed, which the
driver caches when it commits. Each worker process builds its resources (provider, sandbox, warm
environment pool, the workspace's LLM cache read-only) once, from a picklable `build` callable.

Why: the driver is one thread, and a step that talks to a sandboxed environment worker waits for it
synchronously; run in the driver, the step's own Python work, the sandbox's and the driver's
commits all take turns on one core. Workers are spawned (never forked: the driver holds SQLite
connections) and each job goes to the least busy worker, preferring the one that last ran the same
environment, whose warm sandboxed worker is still waiting in its pool.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

import structlog

from skiller.llm.client import LLMClient
from skiller.statemachine.executor import Resources, StepJob, StepResult, failure, run_step, step_of
from skiller.statemachine.ray_executor import HOLD_ENV, PendingCache, _hold

log = structlog.get_logger()

STICKY_SLACK = 2  # jobs a worker may be behind the least busy one and still get its environments' steps
MAX_RETRIES = 3  # a worker process dying mid-step reruns the step (in a fresh worker) this often

# Per worker process: its resources and one event loop (async pools are bound to the loop that made them).
_RES: Resources | None = None
_LOOP: asyncio.AbstractEventLoop | None = None


def _start(build: Callable[[], Resources]) -> None:
    global _RES, _LOOP
    _RES, _LOOP = build(), asyncio.new_event_loop()


def _work(job: StepJob) -> StepResult:
    assert _RES is not None and _LOOP is not None, "worker started without its resources"
    hold = os.environ.get(HOLD_ENV)
    if hold:
        _hold(hold, job)
    cache = PendingCache(_RES.llm.store)
    result = _LOOP.run_until_complete(run_step(job, _RES, LLMClient(_RES.llm.provider, cache, _RES.llm.output_cap)))
    result.cache = cache.puts
    return result


def affinity(stream: str) -> str:
    """The environment a job's step runs in: its task's domain or fusion (`task:a+b/0042` -> `a+b`)."""
    return stream.split(":", 1)[-1].split("/", 1)[0]


class ProcessExecutor:
    """`workers` single-process pools; the caller closes the executor."""

    def __init__(self, build: Callable[[], Resources], workers: int) -> None:
        self._build = build
        self._pools = [self._pool() for _ in range(max(1, workers))]
        self._busy = [0] * len(self._pools)
        self._last: dict[str, int] = {}  # environment -> the worker that ran it last

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                                   initargs=(self._build,))

    def _choose(self, key: str) -> int:
        least = min(self._busy)
        last = self._last.get(key)
        # Staying with the worker whose pool holds this environment's warm sandboxed worker saves a start
        # (~70 ms of CPU, more than a step's own work), worth a short queue.
        if last is not None and self._busy[last] <= least + STICKY_SLACK:
            return last
        return self._busy.index(least)

    async def run(self, job: StepJob) -> StepResult:
        key = affinity(job.stream)
        index = self._choose(key)
        self._busy[index] += 1
        self._last[key] = index
        try:
            for attempt in range(MAX_RETRIES + 1):
                pool = self._pools[index]
                try:
                    return await asyncio.wrap_future(pool.submit(_work, job))
                except BrokenProcessPool as exc:  # the worker died (killed, out of memory): nothing was written
                    log.warning("worker process died", stream=job.stream, attempt=attempt)
                    if self._pools[index] is pool:  # the first job to notice replaces it
                        pool.shutdown(wait=False, cancel_futures=True)
                        self._pools[index] = self._pool()
                    error = exc
            return StepResult(None, [], failure(job.stream, step_of(job).name, "infrastructure",
                                                f"worker process died {MAX_RETRIES + 1} times: {error}"))
        finally:
            self._busy[index] -= 1

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
