"""Small finished workspaces shared by the tests of this folder (exports, formats, naming, errors)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli, make_workspace

SMALL_RUN = ["--set", "steps.s01.num_domains=2", "--set", "steps.s01.min_sectors=2",
             "--set", "steps.s06.rows_per_table=30", "--set", "steps.s06.people=20"]

TINY = ["steps.s01.num_domains=2", "steps.s01.min_sectors=2", "steps.s06.rows_per_table=20", "steps.s06.people=10",
        "steps.s14.templates_per_domain=5", "fusion.num_combinations=1", "fusion.templates_per_fusion=2"]


def sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


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


@pytest.fixture(scope="package")
def finished(tmp_path_factory) -> Path:
    """2 domains and 1 fusion, rolled out, evaluated and exported with SFT rows. Tests only read it."""
    root = make_workspace(tmp_path_factory.mktemp("finished") / "ws")
    assert cli("run", "-w", str(root), *sets(TINY)) == 0
    assert cli("export", "-w", str(root), "--format", "sft") == 0
    return root
