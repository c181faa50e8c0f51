"""Sandbox: runs LLM-written Python in a limited, network-less child process in a temp dir."""

from __future__ import annotations

import ctypes
import functools
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PytestResult",
    "Sandbox",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "network_namespace_available",
]

log = structlog.get_logger()

_CLONE_NEWNET = 0x40000000
_KEEP_ENV = ("PATH", "LANG")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.IGNORECASE)
_PYTEST_CONFIGS = ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")
_PYTEST_SUMMARY = re.compile(r"\bin \d+(?:\.\d+)?s\b")
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?$")
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


class SandboxUnavailable(Exception):
    """The sandbox itself cannot run (its interpreter, a harness module such as pytest, its limits):
    infrastructure, not a failure of the code it was asked to run. One line naming cause and fix."""

# Runs inside the child before any untrusted code: installs an audit hook that cannot be removed,
# then runs the target. argv: -c, this source, root, mode (path|module|code), target, args...
# Everything the hook calls is bound at install time so the child cannot monkeypatch it away.
# Compiled as "<sandbox>" so denials read clearly in the child's tracebacks.
_BOOTSTRAP = r'''
import sys, posix

def _install(root):
    import stat, _socket, _posixsubprocess
    lstat, readlink, getcwd, fspath = posix.lstat, posix.readlink, posix.getcwd, posix.fspath
    getpid, getpgrp, is_link = posix.getpid, posix.getpgrp, stat.S_ISLNK
    enc, unix, inside_prefix = sys.getfilesystemencoding(), _socket.AF_UNIX, root + "/"
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    std_streams = ("/dev/null", "/dev/stdout", "/dev/stderr")

    def deny(what, detail=""):
        detail = ": " + detail if detail else ""
        raise PermissionError("sandbox: " + what + " is not allowed" + detail)

    def absolute(p, dir_fd=None):
        if type(p) not in (str, bytes, int):
            try:
                p = fspath(p)  # sqlite3.connect reports path-like objects unconverted
            except Exception:
                return None
        if type(p) is int:
            try:
                p = readlink("/proc/self/fd/%d" % p)
            except OSError:
                return None
        elif type(p) is bytes:
            p = p.decode(enc, "surrogateescape")
        elif type(p) is not str:
            return None
        if p.startswith("/"):
            return p
        try:
            base = getcwd() if dir_fd is None or dir_fd < 0 else readlink(
                "/proc/self/fd/%d" % dir_fd)
        except OSError:
            return None
        return base + "/" + p

    def resolve(p):
        out, pending, links = [], p.split("/")[::-1], 0
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if out:
                    out.pop()
                continue
            candidate = "/" + "/".join(out + [name])
            try:
                mode = lstat(candidate).st_mode
            except OSError:
                out.append(name)
                continue
            if not is_link(mode):
                out.append(name)
                continue
            links += 1
            if links > 40:
                return None
            target = readlink(candidate)
            if target.startswith("/"):
                out = []
            pending.extend(target.split("/")[::-1])
        return "/" + "/".join(out)

    def check_write(what, p, dir_fd=None):
        a = absolute(p, dir_fd)
        if a in std_streams:
            return
        r = a and resolve(a)
        if not r or not (r == root or r.startswith(inside_prefix)):
            deny(what + " outside the sandbox directory", a or type(p).__name__)

    def check_read(p):
        a = absolute(p)
        if a is None or "/proc" not in a:
            return
        r = resolve(a) or a
        if r.startswith("/proc/"):
            pid = r[6:].split("/", 1)[0]
            if pid.isdigit() and int(pid) != getpid():
                deny("reading another process's /proc entry", r)

    def on_open(a):
        path, mode, flags = a
        if type(path) is int:
            return
        if (flags or 0) & write_flags or (mode and any(c in mode for c in "wax+")):
            check_write("writing", path)
        else:
            check_read(path)

    def on_symlink(a):
        check_write("creating a link", a[1], a[2])
        target = a[0].decode(enc, "surrogateescape") if type(a[0]) is bytes else a[0]
        if type(target) is not str:
            deny("creating a link", type(target).__name__)
        if not target.startswith("/"):
            target = (absolute(a[1], a[2]) or "/").rpartition("/")[0] + "/" + target
        check_read(target)

    def on_sqlite(a):
        db = a[0]
        if type(db) is bytes:
            db = db.decode(enc, "surrogateescape")
        if type(db) is not str:
            return check_write("opening a database", db)
        if db in ("", ":memory:") or db.startswith("file::memory:") or "mode=memory" in db:
            return
        if db.startswith("file:"):
            db = db[5:].split("?", 1)[0]
            if db.startswith("//"):
                db = "/" + db[2:].split("/", 1)[-1]
        check_write("opening a database", db)

    def on_address(a):
        address = a[1]
        if address is None:
            return
        if type(address) not in (str, bytes) or address[:1] in ("\0", b"\0"):
            deny("network access", repr(address) if type(address) in (tuple, str, bytes) else "")
        check_write("using a unix socket", address)

    def on_kill(a):
        if a[0] not in (0, getpid(), -getpgrp()) and a[1] != 0:
            deny("signalling other processes", str(a[0]))

    def on_killpg(a):
        if a[0] not in (0, getpgrp()):
            deny("signalling other process groups", str(a[0]))

    def forbid(what):
        return lambda a: deny(what)

    processes = forbid("starting processes")
    handlers = {
        "open": on_open,
        "os.remove": lambda a: check_write("removing", a[0], a[1]),
        "os.rmdir": lambda a: check_write("removing", a[0], a[1]),
        "shutil.rmtree": lambda a: check_write("removing", a[0], a[1]),
        "os.mkdir": lambda a: check_write("creating a directory", a[0], a[2]),
        "os.chmod": lambda a: check_write("changing permissions", a[0], a[2]),
        "os.chown": lambda a: check_write("changing ownership", a[0], a[3]),
        "os.utime": lambda a: check_write("changing times", a[0], a[3]),
        "os.truncate": lambda a: check_write("truncating", a[0]),
        "os.setxattr": lambda a: check_write("changing attributes", a[0]),
        "os.removexattr": lambda a: check_write("changing attributes", a[0]),
        "os.rename": lambda a: (check_write("renaming", a[0], a[2]),
                                check_write("renaming", a[1], a[3])),
        "os.link": lambda a: (check_write("linking", a[0], a[2]),
                              check_write("linking", a[1], a[3])),
        "os.symlink": on_symlink,
        "sqlite3.connect": on_sqlite,
        "sqlite3.load_extension": forbid("loading sqlite extensions"),
        "sqlite3.enable_load_extension": lambda a: a[1] and deny("loading sqlite extensions"),
        "socket.__new__": lambda a: a[1] != unix and deny("network access", "family %s" % a[1]),
        "socket.connect": on_address,
        "socket.bind": on_address,
        "socket.sendto": on_address,
        "socket.sendmsg": on_address,
        "os.kill": on_kill,
        "os.killpg": on_killpg,
        # A fresh copy of these modules would bring back the originals replaced below.
        "import": lambda a: a[0] in ("posix", "_posixsubprocess") and deny("re-importing " + a[0]),
    }
    for event in ("getaddrinfo", "gethostbyname", "gethostbyaddr", "getnameinfo", "sethostname"):
        handlers["socket." + event] = forbid("network access")
    for event in ("os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
                  "subprocess.Popen"):
        handlers[event] = processes
    for event in ("resource.setrlimit", "resource.prlimit"):
        handlers[event] = forbid("changing resource limits")
    for event in ("ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
                  "gc.get_objects", "gc.get_referrers", "gc.get_referents"):
        handlers[event] = forbid(event)
    get = handlers.get

    def hook(event, args):
        handler = get(event)
        if handler is not None:
            handler(args)

    real_open = posix.open

    def guarded_open(path, flags, mode=0o777, *, dir_fd=None):
        # The "open" audit event does not carry dir_fd, so check dir_fd-relative writes here.
        if dir_fd is not None and flags & write_flags:
            check_write("writing", path, dir_fd)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    posix.open = sys.modules["os"].open = guarded_open
    _posixsubprocess.fork_exec = lambda *a: processes(a)
    sys.addaudithook(hook)

def _run(mode, target, args):
    import runpy
    if mode == "path":
        sys.argv = [target, *args]
        folder = target.rpartition("/")[0]
        if not target.startswith("/"):
            folder = (posix.getcwd() + "/" + folder).rstrip("/")
        sys.path.insert(0, folder)
        runpy.run_path(target, run_name="__main__")
    elif mode == "module":
        sys.argv = [target, *args]
        sys.path.insert(0, posix.getcwd())
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        sys.path.insert(0, "")
        code = compile(target, "<code>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})

_install(sys.argv[2])
del _install
try:
    _run(sys.argv[3], sys.argv[4], sys.argv[5:])
except (SystemExit, KeyboardInterrupt):
    raise
except BaseException as _exc:
    import runpy, traceback
    _tb, _ours = _exc.__traceback__, ("<string>", "<sandbox>", "<frozen runpy>", runpy.__file__)
    while _tb is not None and _tb.tb_frame.f_code.co_filename in _ours:
        _tb = _tb.tb_next
    traceback.print_exception(type(_exc), _exc, _tb or _exc.__traceback__)
    sys.exit(1)
'''


class SandboxLimits(BaseModel):
    """Resource limits applied to every sandboxed process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_seconds: int = Field(default=20, gt=0)
    """CPU time (user + system); SIGXCPU at the limit, SIGKILL one second later."""
    memory_mb: int = Field(default=1024, gt=0)
    """Address-space limit (RLIMIT_AS); also caps the size of any file the child writes."""
    wall_seconds: float = Field(default=60, gt=0)
    """Wall-clock limit for run_python / run_pytest; not applied to spawn."""
    max_output_bytes: int = Field(default=200_000, ge=0)
    """Bytes kept from each of stdout and stderr."""


class SandboxResult(BaseModel):
    """What a sandboxed run did; the child's misbehaviour is described here, never raised."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    """Process exit status; negative signal number when killed by a signal."""
    stdout: str
    stderr: str
    timed_out: bool
    """True when the wall-clock or CPU-time limit ended the run."""
    killed: str | None = None
    """Why the run ended abnormally: "wall timeout", "cpu limit", "memory limit", "signal N"."""
    outputs: dict[str, bytes] = Field(default_factory=dict)
    """Requested files collected from the temp dir after the run (absent when not produced)."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.killed is None


class PytestResult(SandboxResult):
    """A sandboxed pytest run with its counts parsed from the summary line."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    summary: str = ""
    """pytest's final line, e.g. "1 failed, 2 passed in 0.05s"; empty if none was printed."""


def _libc_unshare() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).unshare  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


@functools.cache
def network_namespace_available() -> bool:
    """Whether a child can be put in a fresh network namespace here (probed once per process)."""
    unshare = _libc_unshare()
    if unshare is None:
        return False

    def probe() -> None:
        if unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")

    try:
        subprocess.run([sys.executable, "-I", "-S", "-c", ""], preexec_fn=probe, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        available = True
    except (OSError, subprocess.SubprocessError):
        available = False
    log.info("sandbox.network_namespace", available=available)
    return available


def _relative(name: str, what: str) -> str:
    """Validate a path the caller names inside the temp dir (our misuse raises)."""
    norm = os.path.normpath(name) if name else ""
    if not norm or norm == "." or os.path.isabs(norm) or norm.split(os.sep)[0] == "..":
        raise ValueError(f"sandbox: {what} must be a relative path inside the temp dir: {name!r}")
    return norm


def _secret_values() -> list[str]:
    return [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8]


def _read_head(stream: IO[bytes], limit: int, secrets: Sequence[str]) -> str:
    stream.seek(0)
    data = stream.read(limit + 1)
    text = data[:limit].decode("utf-8", errors="replace")
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    if len(data) > limit:
        text += f"\n[sandbox: output truncated at {limit} bytes]"
    return text


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait(proc: subprocess.Popen[bytes], wall: float) -> tuple[bool, float | None]:
    """Wait for exit or the wall limit, kill the process group, reap; returns (timed_out, cpu)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            timed_out = not poller.poll(wall * 1000)
        finally:
            os.close(pidfd)
    else:
        try:
            proc.wait(wall)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
    # The exited leader stays a zombie until reaped, so its pgid cannot be reused yet.
    _killpg(proc.pid)
    if proc.returncode is not None:
        return timed_out, None
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # someone else reaped it (e.g. a waitpid(-1) child watcher)
        log.warning("sandbox.exit_status_lost", pid=proc.pid)
        proc.returncode = 255
        return timed_out, None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return timed_out, usage.ru_utime + usage.ru_stime


def _is_python(executable: str) -> bool:
    if _PYTHON_NAME.match(os.path.basename(executable)):
        return True
    return os.path.realpath(executable) == os.path.realpath(sys.executable)


def _guarded_python_argv(argv: Sequence[str], root: str) -> list[str]:
    """Rewrite `python [opts] (-m mod | -c code | script) args` to run through the bootstrap."""
    opts: list[str] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in ("-m", "-c") and i + 1 < len(argv):
            mode = "module" if arg == "-m" else "code"
            return [argv[0], *opts, *_GUARD_FLAGS, root, mode, argv[i + 1], *argv[i + 2:]]
        if arg in ("-X", "-W") and i + 1 < len(argv):
            opts += argv[i:i + 2]
            i += 2
        elif arg.startswith("-") and arg not in ("-", "-m", "-c"):
            opts.append(arg)
            i += 1
        else:
            return [argv[0], *opts, *_GUARD_FLAGS, root, "path", arg, *argv[i + 1:]]
    raise ValueError(f"sandbox: cannot find what to run in python argv {list(argv)!r}")


_GUARD_FLAGS = ("-I", "-B", "-X", "utf8", "-c",
                "import sys; exec(compile(sys.argv[1], '<sandbox>', 'exec'))", _BOOTSTRAP)


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
