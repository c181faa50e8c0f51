"""Failures of the machine under a command (full disk, I/O, permissions) as the one line a user reads.

The CLI prints the line; the traceback goes to the workspace's structlog log. Committed work is never
lost: every store write is one SQLite transaction and every exported file is written whole or not at all.
"""
from __future__ import annotations

import errno
import sqlite3

import structlog

__all__ = ["log_failure", "one_line_failure"]

_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_KEEP = "committed work is kept; run again to resume"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _where(exc: OSError) -> str:
    return f" writing {exc.filename}" if exc.filename else ""


def _describe(exc: BaseException) -> str | None:
    if isinstance(exc, OSError):
        if exc.errno in _FULL:
            return f"no space left on the device{_where(exc)} ({exc.strerror}); free some space: {_KEEP}"
        if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"permission denied{_where(exc)} ({exc.strerror}); {_KEEP}"
        return f"{exc.strerror or type(exc).__name__}{_where(exc)}; {_KEEP}"
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        if "disk is full" in text:
            return f"no space left on the device for the workspace database ({text}); free some space: {_KEEP}"
        if "readonly" in text or "read-only" in text:
            return f"the workspace database cannot be written ({text}); {_KEEP}"
        if "disk I/O error" in text:
            return f"the workspace database could not be written ({text}; is the disk full?); {_KEEP}"
        if "locked" in text:
            return f"the workspace database is busy ({text}); {_KEEP}"
    return None


def log_failure(exc: BaseException, line: str) -> None:
    """The details of a failure shown as one line, into the workspace's log (when a workspace is open)."""
    if structlog.is_configured():
        try:
            structlog.get_logger("skiller.cli").error("cli.failed", line=line, exc_info=exc)
        except Exception:  # noqa: BLE001 - the log itself may sit on the full disk
            pass


def one_line_failure(exc: BaseException) -> str | None:
    """The line for an environment failure, or None for anything else (a bug keeps its traceback)."""
    for leaf in _leaves(exc):
        line = _describe(leaf)
        if line is not None:
            log_failure(exc, line)
            return line
    return None
