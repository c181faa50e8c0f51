"""The one-writer lock of a workspace: an OS file lock the kernel drops when its holder dies.

`flock` belongs to the open file, so a process killed with -9 leaves a lock file behind but no lock:
the next writer takes it at once. The holder writes its pid into the file only for the message a
refused writer prints.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the workspace's writer lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(f"workspace {path.parent} is in use by another skiller command ({holder}); "
                         "wait for it to finish (status, log, replay and export work meanwhile)")
        self.pid = pid


class WriterLock:
    """Exclusive, non-blocking lock on `path`; `release()` (or the holder's exit) frees it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> "WriterLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, _holder(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the file drops the flock; the file itself stays (removing it would race)


def _holder(path: Path, patience: float = 1.0) -> int | None:
    """The pid the holder wrote; it writes right after locking, so wait briefly for it."""
    deadline = time.monotonic() + patience
    while True:
        try:
            text = path.read_text().strip()
        except OSError:
            text = ""
        if text.isdigit() or time.monotonic() > deadline:
            return int(text) if text.isdigit() else None
        time.sleep(0.02)
