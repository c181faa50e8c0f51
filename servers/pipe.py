"""The JSON-lines pipe to a sandboxed worker: one request line out, one reply line back, within a deadline.

Two ways to wait for the reply: `exchange` blocks its thread in poll(2); `aexchange` waits on the
running event loop, so a coroutine (a rollout) pays no thread hand-off per tool call and the loop
serves other episodes while the worker works. While the loop has nothing else to do, `aexchange`
waits in poll(2) on the worker's pipes and the loop's own selector at once: the reply then costs no
trip through the loop, and any other event hands the wait back to the loop.
"""
from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import time
from collections import deque
from typing import Any

import structlog

__all__ = ["MAX_REPLY_BYTES", "WorkerGone", "WorkerPipe"]

log = structlog.get_logger("skiller.servers.environment")

MAX_REPLY_BYTES = 8_000_000
STDERR_TAIL_BYTES = 4_096
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode  # one for all lines


class WorkerGone(Exception):
    """The worker died, timed out or broke the protocol; `reason` says why it is no longer usable."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _wake(future: asyncio.Future[int], fd: int) -> None:
    if not future.done():
        future.set_result(fd)


class WorkerPipe:
    """The worker's stdin, stdout and stderr (non-blocking), with what was read and not yet used."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._buffer = bytearray()
        self._stderr_tail: deque[bytes] = deque()
        self._out, self._in = proc.stdin.fileno(), proc.stdout.fileno()
        self._err = proc.stderr.fileno() if proc.stderr is not None else -1
        for fd in (self._out, self._in, self._err):
            if fd >= 0:
                os.set_blocking(fd, False)

    # --- one request, one reply -------------------------------------------------------

    def exchange(self, request: dict[str, Any], timeout: float, what: str) -> dict[str, Any]:
        """Send one request line and read one reply line, within `timeout` seconds (blocks this thread)."""
        deadline = time.monotonic() + timeout
        view = memoryview(_line(request))
        poller = select.poll()
        poller.register(self._in, select.POLLIN)
        if self._err >= 0:
            poller.register(self._err, select.POLLIN)
        poller.register(self._out, select.POLLOUT)
        writing = True
        while True:
            reply = None if writing else self._take(what)
            if reply is not None:
                return reply
            for fd, event in poller.poll(self._remaining(deadline, timeout, what) * 1000):
                if fd == self._out:
                    view = self._write(view, event, what)
                    if not view:
                        writing = False
                        poller.unregister(self._out)
                elif not self._read(fd, what):
                    poller.unregister(fd)

    async def aexchange(self, request: dict[str, Any], timeout: float, what: str) -> dict[str, Any]:
        """`exchange` for a coroutine: the reply is awaited on the running loop, not in poll(2).
        Cancelled mid-call, the pipe is out of step: the caller must stop the worker."""
        deadline = time.monotonic() + timeout
        view = self._write(memoryview(_line(request)), 0, what)  # a request line nearly always fits at once
        while view:  # a huge one: wait for room in the pipe
            if select.select([], [self._out], [], self._remaining(deadline, timeout, what))[1]:
                view = self._write(view, 0, what)
        loop = asyncio.get_running_loop()
        fds = [fd for fd in (self._in, self._err) if fd >= 0]
        while True:
            reply = self._take(what)
            if reply is not None:
                return reply
            ready = self._wait_idle(loop, fds, self._remaining(deadline, timeout, what))
            if not ready:
                ready = [await _wait_loop(loop, fds, self._remaining(deadline, timeout, what))]
            for fd in ready:  # on the deadline (-1), `_remaining` raises on the next round
                if fd >= 0 and not self._read(fd, what):
                    fds.remove(fd)

    @staticmethod
    def _wait_idle(loop: asyncio.AbstractEventLoop, fds: list[int], remaining: float) -> list[int]:
        """Our pipes that became readable while the loop had nothing else to do, waited for in poll(2)
        together with the loop's own selector: a trip through the loop costs a rollout more than the
        worker's answer. Empty when the loop has work (a ready callback, a timer due first, an event on
        any of its file descriptors, a signal, a wake-up from another thread) or is not a selector loop:
        the caller then waits on the loop."""
        ready, timers, selector = (getattr(loop, name, None) for name in ("_ready", "_scheduled", "_selector"))
        if ready is None or ready or timers is None or selector is None:
            return []
        if timers:
            remaining = min(remaining, timers[0].when() - loop.time())
        if remaining <= 0:
            return []
        poller = select.poll()
        for fd in (*fds, selector.fileno()):
            poller.register(fd, select.POLLIN)
        return [fd for fd, _ in poller.poll(remaining * 1000) if fd in fds]

    # --- pieces -----------------------------------------------------------------------------

    def _take(self, what: str) -> dict[str, Any] | None:
        newline = self._buffer.find(b"\n")
        if newline < 0:
            return None
        line = bytes(self._buffer[:newline])
        del self._buffer[: newline + 1]
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise WorkerGone(f"environment worker broke the protocol during {what}; worker stopped", "protocol error")
        return reply

    def _remaining(self, deadline: float, timeout: float, what: str) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.warning("environment.timeout", what=what, seconds=timeout)
            raise WorkerGone(f"{what} exceeded the {timeout:g} s wall-clock limit; worker killed",
                             f"{what} exceeded {timeout:g} s")
        return remaining

    def _write(self, view: memoryview, event: int, what: str) -> memoryview:
        if event & (select.POLLERR | select.POLLHUP):
            raise self._died(what)
        try:
            sent = os.write(self._out, view)
        except BrokenPipeError:
            raise self._died(what) from None
        except BlockingIOError:
            return view
        return view[sent:]

    def _read(self, fd: int, what: str) -> bool:
        """Read what is ready on stdout or stderr; False once stderr is closed."""
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        if fd == self._in:
            if not chunk:
                raise self._died(what)
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise WorkerGone(f"{what} produced a reply over {MAX_REPLY_BYTES} bytes; worker stopped",
                                 "reply too large")
            return True
        if not chunk:
            return False
        self._stderr_tail.append(chunk)
        while sum(map(len, self._stderr_tail)) > STDERR_TAIL_BYTES and len(self._stderr_tail) > 1:
            self._stderr_tail.popleft()
        return True

    def _died(self, what: str) -> WorkerGone:
        try:
            code = self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            how = "closed its pipes"
        elif code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = {"SIGKILL": ", maybe a sandbox limit", "SIGXCPU": ", the CPU-time limit",
                    "SIGSEGV": ", a crash", "SIGSYS": ", a forbidden system call"}.get(name, "")
            how = f"killed by {name}{hint}"
        else:
            how = f"exited with code {code}"
        tail = b"".join(self._stderr_tail).decode("utf-8", "replace").strip().splitlines()
        last = f": {tail[-1][:200]}" if tail else ""
        log.warning("environment.worker_died", what=what, how=how)
        return WorkerGone(f"environment worker died during {what} ({how}{last}); reset the environment",
                          f"worker {how}")


async def _wait_loop(loop: asyncio.AbstractEventLoop, fds: list[int], remaining: float) -> int:
    """The first of `fds` to become readable, or -1 after `remaining` seconds, awaited on the loop
    (one future for both pipes and the deadline: cheaper per call than asyncio.wait_for)."""
    woke: asyncio.Future[int] = loop.create_future()
    for fd in fds:
        loop.add_reader(fd, _wake, woke, fd)
    timer = loop.call_later(remaining, _wake, woke, -1)
    try:
        return await woke
    finally:
        timer.cancel()
        for fd in fds:
            loop.remove_reader(fd)


def _line(request: dict[str, Any]) -> bytes:
    return _ENCODE(request).encode() + b"\n"
