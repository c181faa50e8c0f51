"""Reset in place: write the initial bytes back over the blocks of a database file that calls changed.

A reset that swaps in a fresh copy makes the worker close and reopen its database and the parent
write the whole file; most episodes change a few pages of it. Between calls the worker holds no lock
and leaves no journal, so the parent may rewrite the file under it: the next statement the worker
runs sees the file change counter (header bytes 24-39) differ from the one it cached and drops its
page cache. The parent does the writing, so what the worker finds afterwards is the initial state,
whatever the worker did.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileId", "file_id", "restore"]

BLOCK = 4096
FileId = tuple[int, int]  # (device, inode) of the file the worker opened


def file_id(path: str | Path) -> FileId | None:
    """The identity of a regular file at `path` (never following a link), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def restore(path: Path, initial: bytes, expected: FileId | None) -> bool:
    """Make the file at `path` hold exactly `initial`, writing only the blocks that differ.

    False when the file is not plainly the one the worker opened (another inode, a link, not a
    regular file), a journal lies beside it (only SQLite knows what a hot journal means) or a write
    fell short; the caller then swaps in a fresh copy."""
    if expected is None or any(os.path.lexists(f"{path}{suffix}") for suffix in ("-journal", "-wal")):
        return False
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != expected:
            return False
        data = os.pread(fd, max(st.st_size, len(initial)) + 1, 0)
        if data == initial:
            return True
        for start in range(0, len(initial), BLOCK):
            block = initial[start:start + BLOCK]
            if data[start:start + BLOCK] != block and os.pwrite(fd, block, start) != len(block):
                return False  # a short write: the caller swaps in a fresh copy
        if len(data) != len(initial):
            os.ftruncate(fd, len(initial))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
