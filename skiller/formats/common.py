"""What the format exporters share: their error, name helpers and the atomic file writer."""
from __future__ import annotations

import os
import pprint
from pathlib import Path
from typing import Any


class ExportError(Exception):
    """The workspace cannot be exported in this format (one line naming the environment or field)."""


def pascal(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)


def py_literal(value: Any) -> str:
    """A Python literal for JSON-like data: deterministic, dicts in their own order, long ones wrapped."""
    return pprint.pformat(value, width=110, sort_dicts=False)


def write_files(files: dict[str, bytes], out: Path) -> list[Path]:
    """Write every file atomically (temp file + rename), in path order; returns the paths written."""
    written = []
    for rel, content in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
        written.append(path)
    return written
