"""Shared fixtures: small fresh workspaces and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skiller.cli import main
from skiller.workspace import Workspace

SMALL = ["steps.s01.num_domains=3", "steps.s01.min_sectors=3", "steps.s06.rows_per_table=30",
         "steps.s06.people=20"]
REPO = Path(__file__).resolve().parents[1]


_WIDER = {"module": 1, "package": 2, "session": 3}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n 2 --dist loadgroup` (the README's command) the tests sharing a workspace or process
    built once per module (or per folder, for a package or session fixture of a conftest) run on one xdist
    worker, so it is built once, not once per worker; every other test is scheduled on its own."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        shared = [(_WIDER[defs[-1].scope], defs[-1].baseid) for defs in
                  (info.name2fixturedefs.values() if info else ()) if defs and defs[-1].scope in _WIDER
                  and defs[-1].baseid]  # baseid "": a plugin's fixture, not one of ours
        if shared and not item.get_closest_marker("xdist_group"):
            scope, baseid = max(shared)
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0] if scope == 1 else baseid))


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch):
    """Tests never see a real key; a test that needs one sets a dummy."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def make_workspace(root: Path, extra_yaml: str = "") -> Path:
    Workspace.init(root)
    if extra_yaml:
        cfg = root / "skiller.yaml"
        cfg.write_text(cfg.read_text() + extra_yaml)
    return root


@pytest.fixture
def workspace(tmp_path) -> Path:
    return make_workspace(tmp_path / "ws")


def cli(*args: str) -> int:
    """Run the CLI in-process (fast path for most tests)."""
    return main(list(args))


def cli_process(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the CLI as a real process (for kill -9 and console-script checks)."""
    env = {k: v for k, v in os.environ.items() if "KEY" not in k}
    return subprocess.run([sys.executable, "-m", "skiller", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def small(*extra: str) -> list[str]:
    out = []
    for item in [*SMALL, *extra]:
        out += ["--set", item]
    return out
