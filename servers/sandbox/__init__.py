"""Sandbox: runs LLM-written Python in a limited, network-less child process in a temp dir."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import structlog

__all__ = [
    "PytestResult",
    "Sandbox",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "network_namespace_available",
]

from skiller.servers.sandbox.models import PytestResult, SandboxLimits, SandboxResult, SandboxUnavailable
from skiller.servers.sandbox.process import (
    _CLONE_NEWNET,
    _GUARD_FLAGS,
    _SECRET_NAME,
    _guarded_python_argv,
    _is_python,
    _killpg,
    _libc_unshare,
    _read_head,
    _relative,
    _secret_values,
    _wait,
    network_namespace_available,
)

log = structlog.get_logger()

_KEEP_ENV = ("PATH", "LANG")
_PYTEST_CONFIGS = ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")
_PYTEST_SUMMARY = re.compile(r"\bin \d+(?:\.\d+)?s\b")
_MISSING = re.compile(r"^skiller-missing-module: (\S+)$", re.M)
# Asked of the sandbox's own interpreter, under its limits and guard, before blaming generated code.
_PROBE = """
import sys
for name in sys.argv[1:]:
    try:
        __import__(name)
    except ModuleNotFoundError as exc:
        print("skiller-missing-module: " + (exc.name or name))
        sys.exit(3)
"""
_HEALTHY: set[tuple[str, tuple[str, ...]]] = set()  # (interpreter, modules) probed fine in this process


class Sandbox:
    """Runs untrusted Python under the given limits; safe to share between threads."""

    def __init__(self, limits: SandboxLimits = SandboxLimits()) -> None:
        self.limits = limits
        self.network_isolated = network_namespace_available()
        self._unshare = _libc_unshare() if self.network_isolated else None
        self._rlimits = self._rlimit_table(limits)

    @staticmethod
    def _rlimit_table(limits: SandboxLimits) -> list[tuple[int, tuple[int, int]]]:
        memory = limits.memory_mb * 1024 * 1024
        wanted = [
            (resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1)),
            (resource.RLIMIT_AS, (memory, memory)),
            (resource.RLIMIT_FSIZE, (memory, memory)),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        table = []
        for which, (soft, hard) in wanted:
            current_hard = resource.getrlimit(which)[1]
            if current_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, current_hard), min(hard, current_hard)
            table.append((which, (soft, hard)))
        return table

    def _preexec(self) -> None:
        # Runs in the forked child before exec: no imports, no logging, nothing that takes locks.
        for which, pair in self._rlimits:
            resource.setrlimit(which, pair)
        if self._unshare is not None:
            self._unshare(_CLONE_NEWNET)

    def _env(self, home: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        for key, value in (extra or {}).items():
            if _SECRET_NAME.search(key):
                log.warning("sandbox.env_dropped", name=key)
            else:
                env[key] = value
        env.update(HOME=home, TMPDIR=home)
        return env

    @contextmanager
    def _workdir(self, files: Mapping[str, str | bytes]) -> Iterator[str]:
        work = os.path.realpath(tempfile.mkdtemp(prefix="skiller-sbx-"))
        try:
            for name, content in files.items():
                path = os.path.join(work, _relative(name, "file name"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as fh:
                    fh.write(content.encode() if isinstance(content, str) else content)
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _execute(self, argv: list[str], cwd: str, env: dict[str, str]) -> SandboxResult:
        limits = self.limits
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, close_fds=True, start_new_session=True,
                                        preexec_fn=self._preexec)
            except (OSError, subprocess.SubprocessError) as exc:
                raise SandboxUnavailable(f"the sandbox cannot start {argv[0]}: {exc}") from exc
            try:
                timed_out, cpu = _wait(proc, limits.wall_seconds)
            finally:
                if proc.returncode is None:  # interrupted while waiting: leave nothing running
                    _killpg(proc.pid)
                    proc.wait()
            secrets = _secret_values()
            stdout = _read_head(out, limits.max_output_bytes, secrets)
            stderr = _read_head(err, limits.max_output_bytes, secrets)
        code = proc.returncode
        tail = stderr[-2000:]
        killed: str | None = None
        if timed_out:
            killed = "wall timeout"
        elif code == -signal.SIGXCPU or (
            code == -signal.SIGKILL and cpu is not None and cpu >= limits.cpu_seconds
        ):
            killed, timed_out = "cpu limit", True
        elif code < 0:
            killed = f"signal {-code}"
        elif code != 0 and ("MemoryError" in tail or "Cannot allocate memory" in tail):
            killed = "memory limit"
        log.debug("sandbox.run", exit_code=code, killed=killed, cpu=cpu,
                  seconds=round(time.monotonic() - started, 3))
        return SandboxResult(exit_code=code, stdout=stdout, stderr=stderr, timed_out=timed_out,
                             killed=killed)

    @staticmethod
    def _collect(work: str, names: Sequence[str]) -> dict[str, bytes]:
        outputs: dict[str, bytes] = {}
        for name in names:
            rel = _relative(name, "collected file")
            path = os.path.join(work, rel)
            # The child controls the dir: refuse symlinks out of it and non-regular files (FIFOs).
            if not os.path.realpath(path).startswith(work + os.sep):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as fh:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    outputs[name] = fh.read()
        return outputs

    def require(self, modules: Sequence[str] = ()) -> None:
        """Raise SandboxUnavailable unless the sandbox's interpreter starts under its limits and
        imports `modules` (harness dependencies, e.g. pytest). Successes are remembered per process."""
        key = (sys.executable, tuple(modules))
        if key in _HEALTHY:
            return
        with self._workdir({}) as work:
            argv = [sys.executable, *_GUARD_FLAGS, work, "code", _PROBE, *modules]
            result = self._execute(argv, work, self._env(work, None))
        if result.ok:
            _HEALTHY.add(key)
            return
        missing = _MISSING.search(result.stdout)
        log.error("sandbox.unavailable", python=sys.executable, modules=list(modules), exit_code=result.exit_code,
                  killed=result.killed, stderr=result.stderr[-2000:])
        if missing:
            name = missing.group(1)
            raise SandboxUnavailable(f"{name} is not installed in this environment: pip install {name}")
        last = (result.stderr.strip().splitlines() or [result.killed or f"exit code {result.exit_code}"])[-1]
        raise SandboxUnavailable(f"the sandbox cannot start python ({sys.executable}): {last}")

    def run_python(
        self,
        files: Mapping[str, str | bytes],
        entry: str,
        args: Sequence[str] = (),
        collect: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> SandboxResult:
        """Write `files` into a fresh temp dir, run `python entry *args` there, collect files."""
        entry = _relative(entry, "entry")
        if entry not in {os.path.normpath(name) for name in files}:
            raise ValueError(f"sandbox: entry {entry!r} is not one of the files")
        for name in collect:
            _relative(name, "collected file")
        with self._workdir(files) as work:
            argv = [sys.executable, *_GUARD_FLAGS, work, "path", entry, *args]
            result = self._execute(argv, work, self._env(work, env))
            outputs = self._collect(work, collect)
        if not result.ok:
            self.require()  # a failure of the sandbox itself is not the code's
        return result.model_copy(update={"outputs": outputs})

    def run_pytest(self, files: Mapping[str, str | bytes], test_file: str | Sequence[str]) -> PytestResult:
        """Run `python -m pytest -q -p no:cacheprovider <test files>` in a fresh temp dir.

        Raises SandboxUnavailable when pytest itself cannot run here; a test module importing a
        missing module is the tests' own error (counted in `errors`)."""
        targets = [_relative(t, "test file") for t in ([test_file] if isinstance(test_file, str) else test_file)]
        known = {os.path.normpath(name) for name in files}
        for target in targets:
            if target not in known:
                raise ValueError(f"sandbox: test file {target!r} is not one of the files")
        if not any(name in files for name in _PYTEST_CONFIGS):
            # Pin rootdir and stop pytest from reading config or conftest files above the temp dir.
            files = {**files, "pytest.ini": "[pytest]\n"}
        env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        with self._workdir(files) as work:
            argv = [sys.executable, *_GUARD_FLAGS, work, "module", "pytest",
                    "-q", "-p", "no:cacheprovider", *targets]
            result = self._execute(argv, work, self._env(work, env))
        if not result.ok:
            self.require(["pytest"])
        summary = next((line.strip("= ") for line in reversed(result.stdout.splitlines())
                        if _PYTEST_SUMMARY.search(line)), "")
        counts = {"passed": 0, "failed": 0, "errors": 0}
        for number, word in _PYTEST_COUNT.findall(summary):
            counts["errors" if word.startswith("error") else word] += int(number)
        return PytestResult(**result.model_dump(), summary=summary, **counts)

    def spawn(
        self,
        argv: Sequence[str],
        cwd: str,
        *,
        env: Mapping[str, str] | None = None,
        stderr: int | IO[Any] | None = None,
    ) -> subprocess.Popen[str]:
        """Start a long-lived worker with the sandbox limits except wall time.

        A Python argv (`python [opts] script|-m mod|-c code ...`) also gets the in-process guard
        rooted at `cwd` and unbuffered stdio; other programs get only the OS-level limits.
        stdin/stdout are text pipes, line-buffered; stderr is inherited unless given. The caller
        owns the worker and ends it with `Sandbox.kill`.
        """
        root = os.path.realpath(cwd)
        argv = list(argv)
        if argv and _is_python(argv[0]):
            argv = _guarded_python_argv(argv, root)
            argv.insert(1, "-u")
        try:
            return subprocess.Popen(argv, cwd=root, env=self._env(root, env), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=stderr, text=True,
                                    encoding="utf-8", errors="replace", bufsize=1, close_fds=True,
                                    start_new_session=True, preexec_fn=self._preexec)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxUnavailable(f"the sandbox cannot start {argv[0] if argv else 'a worker'}: {exc}") from exc

    @staticmethod
    def kill(proc: subprocess.Popen[Any]) -> int:
        """Kill a spawned worker's whole process group and reap it; returns its exit status."""
        if proc.returncode is None:  # not reaped yet, so its pgid cannot have been reused
            _killpg(proc.pid)
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        return code
