"""Transport every network provider shares: adaptive per-endpoint concurrency, retries with backoff
(Retry-After honoured), one-line errors, and the guard that keeps tests off the network."""
from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog

from skiller.llm.interface import LLMError, ProviderUnavailable

__all__ = ["AdaptiveLimit", "EndpointLimits", "Failure", "RetryPolicy", "call_with_retries", "is_loopback",
           "one_line", "refuse_network_under_pytest", "retry_after", "sdk_failure"]

log = structlog.get_logger()
T = TypeVar("T")

_RETRY_AFTER_CAP_SECONDS = 60.0
_BACKOFF_CAP_SECONDS = 30.0
_RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx


@dataclass(frozen=True)
class Failure:
    """What one failed HTTP call means for the retry loop."""

    problem: str
    """One line, safe to log (never headers, never the key)."""
    retryable: bool
    rate_limited: bool = False
    retry_after: float | None = None
    unavailable: bool = False
    """The door is closed (a refused key): the next run retries, the model is not to blame."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    backoff_base: float


class AdaptiveLimit:
    """A concurrency limit that halves on 429 (never below 1) and creeps back up by one per
    `limit` successes (AIMD). Waiters are futures of the running loop, so it is loop-agnostic."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self._limit = float(ceiling)
        self._in_flight = 0
        self._generation = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def current(self) -> int:
        return max(1, int(self._limit))

    async def acquire(self) -> int:
        while self._in_flight >= self.current:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._wake()  # pass on a wake-up this waiter can no longer use
                raise
        self._in_flight += 1
        return self._generation

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def shrink(self, ticket: int) -> bool:
        """Halve once per generation: requests that were in flight together and all got a
        429 describe one overload, not several."""
        if ticket != self._generation:
            return False
        self._generation += 1
        self._limit = max(1.0, self._limit / 2)
        return True

    def grow(self) -> None:
        if self._limit < self.ceiling:
            self._limit = min(float(self.ceiling), self._limit + 1 / self._limit)
            self._wake()

    def _wake(self) -> None:
        free = self.current - self._in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


class EndpointLimits:
    """One provider's limits, one per (provider, model, base_url): concurrency belongs to the endpoint."""

    def __init__(self, provider: str, ceiling: int) -> None:
        self.provider, self.ceiling = provider, ceiling
        self._limits: dict[tuple[str, str, str], AdaptiveLimit] = {}

    def get(self, model: str, base_url: str) -> AdaptiveLimit:
        key = (self.provider, model, base_url)
        if key not in self._limits:
            self._limits[key] = AdaptiveLimit(self.ceiling)
        return self._limits[key]


async def call_with_retries(call: Callable[[], Awaitable[T]], *, provider: str, model: str, purpose: str,
                            limit: AdaptiveLimit, policy: RetryPolicy,
                            classify: Callable[[Exception], Failure | None]) -> T:
    """Run `call` under `limit`, retrying what `classify` calls retryable; an exception it does not
    know (None) propagates unchanged. Errors come out as one line `provider/model: purpose: problem`."""
    tries = 0
    while True:
        tries += 1
        ticket = await limit.acquire()
        try:
            result = await call()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            if not failure.retryable:
                error = ProviderUnavailable if failure.unavailable else LLMError
                raise error(f"{provider}/{model}: {purpose}: {failure.problem}") from None
            if failure.rate_limited and limit.shrink(ticket):
                log.warning("llm.concurrency_shrunk", provider=provider, model=model, limit=limit.current)
        else:
            limit.grow()
            return result
        finally:
            limit.release()
        if tries > policy.max_retries:
            raise ProviderUnavailable(f"{provider}/{model}: {purpose}: gave up after {tries} tries: {failure.problem}")
        wait = _backoff(tries, failure.retry_after, policy.backoff_base)
        log.warning("llm.retry", provider=provider, model=model, purpose=purpose, attempt=tries,
                    wait_seconds=round(wait, 3), problem=failure.problem)
        await asyncio.sleep(wait)


def sdk_failure(exc: Exception, sdk: ModuleType, base_error: type[Exception],
                timeout_seconds: float) -> Failure | None:
    """Classify an exception of a Stainless-generated SDK (`anthropic`, `openai`: same error tree)."""
    if isinstance(exc, sdk.APIStatusError):
        rate_limited = exc.status_code == 429
        return Failure(_status_problem(exc), _should_retry(exc), rate_limited, retry_after(exc.response.headers),
                       unavailable=exc.status_code in (401, 403))
    if isinstance(exc, sdk.APITimeoutError):
        return Failure(f"timed out after {timeout_seconds:g}s", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        return Failure(f"connection error: {one_line(str(exc.__cause__ or exc))}", retryable=True)
    if isinstance(exc, base_error):
        return Failure(one_line(str(exc)), retryable=False)
    return None


def _backoff(tries: int, retry_after_seconds: float | None, backoff_base: float) -> float:
    if retry_after_seconds is not None:
        return min(max(retry_after_seconds, 0.0), _RETRY_AFTER_CAP_SECONDS)
    # Jitter keeps many clients that failed together from retrying in lockstep.
    base = backoff_base * 2 ** (tries - 1)
    return min(base, _BACKOFF_CAP_SECONDS) * random.uniform(0.5, 1.0)


def _should_retry(exc: Any) -> bool:
    # The API may say explicitly whether a retry can help.
    hint = exc.response.headers.get("x-should-retry")
    if hint in ("true", "false"):
        return hint == "true"
    return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500


def _status_problem(exc: Any) -> str:
    body = exc.body
    # anthropic parses the message out of its envelope; openai hands over the inner `error` object.
    detail = getattr(exc, "api_message", None)
    if not detail and isinstance(body, Mapping) and isinstance(body.get("message"), str):
        detail = body["message"]
    detail = detail or (body if isinstance(body, str) else "") or exc.type or ""
    return one_line(f"HTTP {exc.status_code} {detail}".strip())


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `retry-after` (not HTTP dates)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                continue  # an HTTP date: fall back to our own backoff
    return None


def one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def refuse_network_under_pytest(base_url: str) -> None:
    """Tests never reach a paid model: under pytest only a loopback base_url may be called."""
    if _under_pytest() and not is_loopback(base_url):
        raise ProviderUnavailable("refusing to call a network model under pytest; point base_url at a local fake server")


def _under_pytest() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ or "pytest" in sys.modules


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
