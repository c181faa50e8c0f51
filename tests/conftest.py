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
