"""Parent side of an environment: runs implementation modules in a sandboxed worker and talks JSON lines to it."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from pydantic import ValidationError

from skiller.contract.environment import ModuleSource, ToolResult, ToolSpec
from skiller.servers.pipe import WorkerGone, WorkerPipe
from skiller.servers.restore import FileId, restore
from skiller.servers.sandbox import Sandbox, SandboxLimits
from skiller.servers.statehash import StateHasher

__all__ = ["Environment", "EnvironmentLoadError", "ModuleSource"]

log = structlog.get_logger(__name__)

WORKER_SOURCE = Path(__file__).with_name("worker.py")
DB_FILE = "db.sqlite"
FRESH_FILE = "fresh.sqlite"
MAX_ERROR_CHARS = 1_000


class EnvironmentLoadError(Exception):
    """The worker could not start or load the modules (one line naming the module and the cause)."""


def _cleanup(procs: list[subprocess.Popen[str]], workdir: str) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()  # the sandbox forbids forking, so the worker is a single process
            proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)


def _cpu_seconds(pid: int) -> float | None:
    """CPU time a live process has used (Linux /proc), or None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _file_stem(index: int, server: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", server.lower()).strip("_") or "module"
    return f"m{index}_{slug}"


class Environment:
    """A running environment: tools, one SQLite state, and a sandboxed worker executing the calls.

    Use `Environment.start(...)` as a context manager. Calls are serialized by a lock, so several threads
    (e.g. the MCP server's) may share one environment.
    """

    def __init__(self, modules: list[ModuleSource], db_bytes: bytes, sandbox: Sandbox,
                 call_timeout: float, load_timeout: float) -> None:
        self._modules = list(modules)
        self._db_bytes = db_bytes
        self._sandbox = sandbox
        self._call_timeout = call_timeout
        self._load_timeout = load_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="skiller-env-"))
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[str]] = []
        self._finalizer = weakref.finalize(self, _cleanup, self._procs, str(self._workdir))
        self._proc: subprocess.Popen[str] | None = None
        self._dead_reason: str | None = "not started"
        self._pipe: WorkerPipe | None = None
        self._tools: list[ToolSpec] = []
        self._by_name: dict[str, ToolSpec] = {}
        self._files = [f"{_file_stem(i, m.server)}.py" for i, m in enumerate(self._modules)]
        self._hasher = StateHasher()  # outlives resets and respawns: the initial state stays known
        self._db_id: FileId | None = None  # the database file the worker opened
        self._used = False  # a call ran since the last reset
        self._settle = False  # the file was restored under the worker: its next call settles first
        self._budget_checked = 0.0

    # --- lifecycle -------------------------------------------------------------

    @classmethod
    def start(cls, modules: list[ModuleSource], db_bytes: bytes, sandbox: Sandbox | None = None, *,
              call_timeout: float = 10.0, load_timeout: float = 30.0) -> Environment:
        """Write the modules and DB into a temp dir, spawn the worker in the sandbox and load the tools."""
        if not modules:
            raise EnvironmentLoadError("an environment needs at least one module")
        if sandbox is None:  # default limits; callers normally inject one
            sandbox = Sandbox(SandboxLimits())
        env = cls(modules, db_bytes, sandbox, call_timeout, load_timeout)
        try:
            env._spawn()
        except BaseException:
            env.close()
            raise
        return env

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker and delete the temp dir (idempotent)."""
        with self._lock:
            proc = self._proc
            if proc is not None and self.alive:
                try:
                    self._exchange({"op": "close"}, timeout=2.0, what="close")
                    proc.wait(timeout=2.0)
                except (WorkerGone, subprocess.TimeoutExpired):
                    pass
            self._stop("closed")
            self._finalizer()

    def _spawn(self) -> None:
        # (Re)write every file: a previous worker could have changed anything in its directory.
        self._write("worker.py", WORKER_SOURCE.read_bytes())
        for file, module in zip(self._files, self._modules):
            self._write(file, module.code.encode("utf-8"))
        self._db_id, self._used, self._settle = self._write(DB_FILE, self._db_bytes), False, False
        for leftover in (f"{DB_FILE}-journal", FRESH_FILE):
            (self._workdir / leftover).unlink(missing_ok=True)
        began = time.perf_counter()
        proc = self._sandbox.spawn([sys.executable, "-I", "worker.py"], cwd=str(self._workdir),
                                   stderr=subprocess.PIPE)
        if proc.stdin is None or proc.stdout is None:
            proc.kill()
            raise EnvironmentLoadError("sandbox must give the worker stdin and stdout pipes")
        self._procs[:] = [proc]  # the finalizer's view: only the live worker
        self._proc, self._dead_reason = proc, None
        self._pipe = WorkerPipe(proc)
        request = {"op": "load", "db": DB_FILE, "modules": [
            {"file": f, "namespace": m.namespace, "prefix": m.prefix} for f, m in zip(self._files, self._modules)]}
        names = ", ".join(m.server for m in self._modules)
        try:
            reply = self._exchange(request, self._load_timeout, what=f"loading {names}")
        except WorkerGone as exc:
            raise EnvironmentLoadError(str(exc)) from None
        if reply.get("ok") is not True:
            self._stop("load failed")
            raise EnvironmentLoadError(f"{names}: {reply.get('error')}")
        try:
            tools = [ToolSpec.model_validate(t) for t in reply.get("value") or []]
        except ValidationError as exc:
            self._stop("bad tool table")
            raise EnvironmentLoadError(f"{names}: bad tool table ({exc.errors()[0]['msg']})") from None
        self._tools, self._by_name = tools, {t.name: t for t in tools}
        log.debug("environment.started", modules=names, tools=len(tools), pid=proc.pid,
                  ms=round((time.perf_counter() - began) * 1000, 1))

    def _write(self, name: str, data: bytes) -> FileId:
        # Never write through whatever the worker left at this name (a symlink could point anywhere).
        path = self._workdir / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            st = os.fstat(fh.fileno())
        return st.st_dev, st.st_ino

    def _stop(self, reason: str) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._sandbox.kill(proc)
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        if self._dead_reason is None:
            self._dead_reason = reason

    # --- public API --------------------------------------------------------------

    @property
    def tools(self) -> list[ToolSpec]:
        return list(self._tools)

    @property
    def alive(self) -> bool:
        """False once the worker crashed, timed out or was closed (until `reset()` respawns it)."""
        return self._dead_reason is None

    @property
    def db_path(self) -> Path:
        """The live SQLite file (read it only between calls)."""
        return self._workdir / DB_FILE

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """Run one tool call; every failure (bad arguments, policy, crash, timeout) is a ToolResult error."""
        request = self._request(name, arguments)
        if isinstance(request, ToolResult):
            return request
        with self._lock:
            return self._call_locked(name, request)

    def _call_locked(self, name: str, request: dict[str, Any], respawn: bool = False) -> ToolResult:
        if respawn:
            try:
                self._respawn()
            except Exception as exc:  # noqa: BLE001 - the call's failure, in one line
                return ToolResult(ok=False, error=f"environment could not be reset: {exc}")
        if not self.alive:
            return self._not_running()
        settle = self._mark(request)
        try:
            reply = self._exchange(request, self._call_timeout, what=name)
        except (WorkerGone, TypeError, ValueError) as exc:
            return self._failed(name, exc)
        if settle and self._unsettled(reply):  # a fresh worker has nothing to settle: this recurses once
            return self._call_locked(name, request, respawn=True)
        return self._result(name, reply)

    async def acall(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """`call` from a coroutine: the reply is awaited on the running loop (no thread per call).
        While another thread holds the environment, waits for it in a thread instead."""
        request = self._request(name, arguments)
        if isinstance(request, ToolResult):
            return request
        if not self._lock.acquire(blocking=False):
            return await asyncio.to_thread(self.call, name, arguments)
        try:
            if not self.alive:
                return self._not_running()
            settle = self._mark(request)
            try:
                reply = await self._aexchange(request, self._call_timeout, what=name)
            except (WorkerGone, TypeError, ValueError) as exc:
                return self._failed(name, exc)
            if settle and self._unsettled(reply):
                return await asyncio.to_thread(self._call_locked, name, request, True)
            return self._result(name, reply)
        finally:
            self._lock.release()

    def _mark(self, request: dict[str, Any]) -> bool:
        """Note a call is about to run; whether it carries the reset the worker has not seen yet."""
        self._used, request["settle"], self._settle = True, self._settle, False
        return request["settle"]

    def _unsettled(self, reply: dict[str, Any]) -> bool:
        """Whether the worker could not settle before the call (nothing ran): it is stopped, to be replaced."""
        if reply.get("settled") is not False:
            return False
        self._stop(f"reset failed: {reply.get('error')}")
        return True

    def _request(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any] | ToolResult:
        if name not in self._by_name:
            return ToolResult(ok=False, error=f"unknown tool: {name}")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return ToolResult(ok=False, error=f"invalid arguments for {name}: arguments must be a JSON object")
        return {"op": "call", "name": name, "arguments": arguments}

    def _not_running(self) -> ToolResult:
        return ToolResult(ok=False, error=f"environment is not running ({self._dead_reason}); reset it")

    @staticmethod
    def _failed(name: str, exc: Exception) -> ToolResult:
        """A call whose exchange failed: the worker is gone (its reason), or the arguments are not JSON."""
        if isinstance(exc, WorkerGone):
            return ToolResult(ok=False, error=str(exc))
        return ToolResult(ok=False, error=f"invalid arguments for {name}: not JSON ({exc})")

    def _result(self, name: str, reply: dict[str, Any]) -> ToolResult:
        ok, error = reply.get("ok"), reply.get("error")
        if ok is True:
            return ToolResult(ok=True, value=reply.get("value"))
        if ok is False and isinstance(error, str):
            return ToolResult(ok=False, error=" ".join(error.split())[:MAX_ERROR_CHARS])  # one line, always
        self._stop("malformed reply")
        return ToolResult(ok=False, error=f"environment worker sent a malformed reply to {name}; worker stopped")

    def reset(self) -> None:
        """Restore the initial database; a dead worker is replaced by a fresh one.

        The parent writes back the blocks the calls changed and the worker drops what its connection
        may hold beyond the file (a transaction, temporary tables) before its next call runs; failing
        that, the worker reopens a fresh copy swapped in for the file."""
        with self._lock:
            if self.alive and self._cpu_budget_left():
                try:
                    request, fresh = self._reset_request()
                    if request is None or self._reset_done(self._exchange(request, self._call_timeout, "reset"), fresh):
                        return
                except WorkerGone:
                    pass
            self._respawn()

    async def areset(self) -> None:
        """`reset` from a coroutine; only a respawn (a new worker) waits in a thread."""
        if self._lock.acquire(blocking=False):
            try:
                if self.alive and self._cpu_budget_left():
                    request, fresh = self._reset_request()
                    if request is None or self._reset_done(
                            await self._aexchange(request, self._call_timeout, "reset"), fresh):
                        return
            except WorkerGone:
                pass
            finally:
                self._lock.release()
        await asyncio.to_thread(self.reset)

    def _reset_request(self) -> tuple[dict[str, Any] | None, FileId | None]:
        """What to ask of the worker once the file is restored (None: nothing now), and the fresh copy's id.
        Restored in place, the worker settles (see `reset`) first thing in its next call: no round trip."""
        if restore(self.db_path, self._db_bytes, self._db_id):
            self._settle, self._used = self._settle or self._used, False
            return None, self._db_id
        return {"op": "reset", "db": FRESH_FILE}, self._write(FRESH_FILE, self._db_bytes)

    def _reset_done(self, reply: dict[str, Any], fresh: FileId | None) -> bool:
        if reply.get("ok") is not True:
            self._stop(f"reset failed: {reply.get('error')}")
            return False
        self._db_id, self._used, self._settle = fresh, False, False
        return True

    def _respawn(self) -> None:
        log.info("environment.respawn", reason=self._dead_reason)
        self._stop("respawning")
        try:
            self._spawn()
        except BaseException:
            self._stop("respawn failed")
            raise

    def _cpu_budget_left(self) -> bool:
        # RLIMIT_CPU counts the worker's whole life: recycle it between episodes before it runs out.
        # One process spends at most a CPU-second per second: reading /proc once a second is enough.
        now = time.monotonic()
        if now - self._budget_checked < 1.0:
            return True
        self._budget_checked = now
        used = _cpu_seconds(self._proc.pid) if self._proc is not None else None
        limit = getattr(getattr(self._sandbox, "limits", None), "cpu_seconds", None)
        if used is None or limit is None or used < 0.5 * limit:
            return True
        self._stop(f"recycled after {used:.1f} s of CPU")
        return False

    def state_hash(self) -> str:
        """Canonical SHA-256 of the current database state (see servers.database.state_hash); only tables
        whose pages changed since a known state are read again."""
        with self._lock:
            return self._hasher.digest(self._checked_db())

    def _checked_db(self) -> Path:
        path = self.db_path
        if path.is_symlink():  # the worker may rewrite its own dir; never follow it elsewhere
            raise RuntimeError(f"{path} is a symlink")
        return path

    # --- the pipe ------------------------------------------------------------------

    def _exchange(self, request: dict[str, Any], timeout: float, what: str) -> dict[str, Any]:
        """Send one request line and read one reply line, within `timeout` seconds."""
        assert self._pipe is not None
        try:
            return self._pipe.exchange(request, timeout, what)
        except WorkerGone as exc:
            self._gone(exc)
            raise

    async def _aexchange(self, request: dict[str, Any], timeout: float, what: str) -> dict[str, Any]:
        assert self._pipe is not None
        try:
            return await self._pipe.aexchange(request, timeout, what)
        except WorkerGone as exc:
            self._gone(exc)
            raise
        except asyncio.CancelledError:
            self._stop("cancelled mid-call")  # its reply would answer the next request
            raise

    def _gone(self, exc: WorkerGone) -> None:
        self._stop(exc.reason)
        self._dead_reason = exc.reason
