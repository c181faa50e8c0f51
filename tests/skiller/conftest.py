"""Small finished workspaces shared by the export-format tests (one run, and a rerun of the same config)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli, make_workspace

SMALL_RUN = ["--set", "steps.s01.num_domains=2", "--set", "steps.s01.min_sectors=2",
             "--set", "steps.s06.rows_per_table=30", "--set", "steps.s06.people=20"]


def _run(root: Path) -> Path:
    make_workspace(root)
    assert cli("run", "-w", str(root), *SMALL_RUN) == 0
    return root


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """Two domains and their fusion, run to the end (tasks rolled out by the oracle and evaluated)."""
    return _run(tmp_path_factory.mktemp("formats") / "ws")


@pytest.fixture(scope="session")
def small_rerun(tmp_path_factory) -> Path:
    """The same config run again in a fresh workspace."""
    return _run(tmp_path_factory.mktemp("formats-rerun") / "ws")
