"""The process mechanics under the sandbox: a network namespace when the kernel allows one, the guarded
python command line (the child bootstrap first), bounded output capture, waiting and killing groups."""
from __future__ import annotations

import ctypes
import functools
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import structlog

log = structlog.get_logger()

_CLONE_NEWNET = 0x40000000
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.IGNORECASE)
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?$")

# The child's bootstrap is a module of its own (child.py), read once and handed to `python -c`.
_BOOTSTRAP = (Path(__file__).with_name("child.py")).read_text(encoding="utf-8")


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
