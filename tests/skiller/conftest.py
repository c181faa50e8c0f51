"""A tiny finished workspace shared by the export, naming and error tests of this folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli, make_workspace

TINY = ["steps.s01.num_domains=2", "steps.s01.min_sectors=2", "steps.s06.rows_per_table=20", "steps.s06.people=10",
        "steps.s14.templates_per_domain=3", "fusion.num_combinations=1", "fusion.templates_per_fusion=2"]


def sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="package")
def finished(tmp_path_factory) -> Path:
    """2 domains and 1 fusion, rolled out, evaluated and exported with SFT rows. Tests only read it."""
    root = make_workspace(tmp_path_factory.mktemp("finished") / "ws")
    assert cli("run", "-w", str(root), *sets(TINY)) == 0
    assert cli("export", "-w", str(root), "--format", "sft") == 0
    return root
