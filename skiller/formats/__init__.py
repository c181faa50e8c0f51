"""Exports into other tools' formats: τ²-bench domain packages and Hugging Face datasets."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from skiller.formats.common import ExportError
from skiller.formats.tau2 import export_tau2

if TYPE_CHECKING:
    from skiller.store import Store

__all__ = ["FORMATS", "ExportError", "export_format"]

FORMATS = ("tau2", "hf")


def export_format(name: str, store: Store, out: Path) -> list[Path]:
    """Write the workspace in format `name` into `out`; each exporter is imported only when chosen."""
    if name == "tau2":
        return export_tau2(store, out)
    if name == "hf":
        # deferred: an optional extra, the Parquet writer needs `pip install -e '.[hf]'`
        from skiller.formats.hf import export_hf
        return export_hf(store, out)
    raise ExportError(f"unknown export format {name!r} (known: {', '.join(FORMATS)})")
