"""Warm environments: one sandboxed worker per environment kept between steps, reset by swapping its database file."""
from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import structlog

from skiller.contract.environment import ModuleSource
from skiller.servers.environment import Environment

if TYPE_CHECKING:
    from skiller.servers.sandbox import Sandbox

__all__ = ["EnvironmentPool"]

log = structlog.get_logger(__name__)


def _key(modules: list[ModuleSource], db_bytes: bytes) -> str:
    digest = hashlib.sha256(json.dumps([m.model_dump(mode="json") for m in modules], sort_keys=True).encode())
    digest.update(b"\0" + hashlib.sha256(db_bytes).digest())
    return digest.hexdigest()


class EnvironmentPool:
    """Hands out environments by content (modules and initial database), each reset to that database.

    Starting a sandboxed worker costs far more than a tool call; a reset (the worker reopens a fresh
    copy of the database file) costs about one. An environment is leased by one holder at a time;
    concurrent leases of the same content get distinct workers. At most `max_idle` workers wait
    between leases (least recently used are closed first). A holder that raised returns nothing: its
    worker is closed, since its state is unknown.
    """

    def __init__(self, sandbox: Sandbox | None = None, max_idle: int = 32) -> None:
        self._sandbox = sandbox
        self._max_idle = max_idle
        self._idle: OrderedDict[str, list[Environment]] = OrderedDict()
        self._starting: dict[str, asyncio.Event] = {}  # workers starting for brief holders, by content
        self.started = 0  # workers spawned (for benchmarks and tests)
        self.reused = 0

    @contextmanager
    def lease(self, modules: list[ModuleSource], db_bytes: bytes) -> Iterator[Environment]:
        key = _key(modules, db_bytes)
        env = self._take(key)
        fresh = env is None
        if env is None:
            env = Environment.start(modules, db_bytes, sandbox=self._sandbox)
        with self._held(key, env, fresh) as held:
            yield held

    @asynccontextmanager
    async def alease(self, modules: list[ModuleSource], db_bytes: bytes, *,
                     brief: bool = False) -> AsyncIterator[Environment]:
        """`lease` from a coroutine: a worker that has to start does so in a thread, since starting takes
        a few hundred milliseconds during which the event loop (other steps, model requests) would stand
        still. A `brief` holder awaits nothing while it holds the environment (validation, evaluation by
        rules): rather than start another worker while one for the same content is starting, it waits
        for that one, which is free again by the time the waiter runs."""
        key = _key(modules, db_bytes)
        env = self._take(key)
        while env is None and brief and key in self._starting:
            await self._starting[key].wait()
            env = self._take(key)
        fresh = env is None
        if env is None:
            starting = self._starting.setdefault(key, asyncio.Event()) if brief else None
            try:
                env = await asyncio.to_thread(Environment.start, modules, db_bytes, sandbox=self._sandbox)
            finally:
                if starting is not None:
                    del self._starting[key]
                    starting.set()
        with self._held(key, env, fresh) as held:
            yield held

    @contextmanager
    def _held(self, key: str, env: Environment, fresh: bool) -> Iterator[Environment]:
        """One holder's time with `env`: back to the idle workers after, closed if the holder raised."""
        self.started += fresh
        self.reused += not fresh
        try:
            yield env
        except BaseException:
            env.close()
            raise
        self._give(key, env)

    def _take(self, key: str) -> Environment | None:
        waiting = self._idle.get(key)
        while waiting:
            env = waiting.pop()
            if not waiting:
                del self._idle[key]
            try:
                env.reset()  # a dead worker is respawned by reset
                return env
            except Exception as exc:  # noqa: BLE001 - a worker that cannot reset is dropped, never reused
                log.warning("pool.reset_failed", error=str(exc))
                env.close()
            waiting = self._idle.get(key)
        return None

    def _give(self, key: str, env: Environment) -> None:
        self._idle.setdefault(key, []).append(env)
        self._idle.move_to_end(key)
        while sum(map(len, self._idle.values())) > self._max_idle:
            oldest, envs = next(iter(self._idle.items()))
            envs.pop(0).close()
            if not envs:
                del self._idle[oldest]

    def close(self) -> None:
        """Stop every idle worker (idempotent)."""
        if self._idle:
            log.info("pool.closed", started=self.started, reused=self.reused)
        while self._idle:
            _, envs = self._idle.popitem(last=False)
            for env in envs:
                env.close()

    def __enter__(self) -> EnvironmentPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
