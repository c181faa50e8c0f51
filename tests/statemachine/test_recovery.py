"""Infrastructure is not the model's fault: a sandbox without pytest stops a domain with an
`infrastructure` failure that spends no repair, and the next run, once pytest is back, completes the
same workspace to outputs identical to a clean run's."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from skiller.store import Store
from tests.conftest import cli, make_workspace, small
from tests.fakes import MessagesServer
from tests.fixtures.hidden_pytest import python_without_pytest
from tests.statemachine.test_anthropic_pipeline import FakeModel, anthropic_workspace

TWO = ["--set", "steps.s01.num_domains=2", "--set", "steps.s01.min_sectors=2",
       "--set", "steps.s06.rows_per_table=30", "--set", "steps.s06.people=20"]


def skiller(python: Path | str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "KEY" not in k} | {"SKILLER_PROGRESS_SECONDS": "0"}
    return subprocess.run([str(python), "-m", "skiller", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.timeout(1800)
def test_missing_pytest_is_infrastructure_and_the_next_run_recovers(tmp_path):
    hidden = python_without_pytest(tmp_path / "no-pytest")
    root = make_workspace(tmp_path / "ws")

    broken = skiller(hidden, "run", "-w", str(root), *TWO)
    assert broken.returncode == 1, broken.stderr[-2000:]
    causes = [line for line in broken.stderr.splitlines() if line.startswith("failed (")]
    assert len(causes) == 1, broken.stderr[-2000:]  # one line per cause, naming it and the fix
    assert causes[0].startswith("failed (infrastructure, ")
    assert "pytest is not installed in this environment: pip install pytest" in causes[0]
    assert "Traceback" not in broken.stderr
    assert "machines done" in broken.stderr  # piped output still shows progress, as plain lines

    store = Store(root / "skiller.db")
    proj = store.projection()
    stopped = [m for m in proj.of_kind("domain") if m.failure_kind == "infrastructure"]
    assert stopped and all(m.state == "testing" and m.retryable for m in stopped)
    assert not [m for m in proj.of_kind("domain") if m.state == "failed"]
    rows = list(store.rows())
    assert not [r for r in rows if r.type == "Repaired"]  # no repair round spent on the harness
    failures = [json.loads(r.payload) for r in rows if r.type == "StepFailed"]
    assert {(f["step"], f["kind"]) for f in failures} == {("s09.test", "infrastructure")}
    assert not [r for r in rows if r.type == "TestsRan" and r.stream in {m.stream for m in stopped}
                and json.loads(r.payload)["step"] == "s09"]  # the generated tests never ran
    store.close()

    fixed = skiller(sys.executable, "run", "-w", str(root), *TWO)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    clean = make_workspace(tmp_path / "clean")
    done = skiller(sys.executable, "run", "-w", str(clean), *TWO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert tree(root / "outputs") == tree(clean / "outputs")
    store = Store(root / "skiller.db")
    assert [r for r in store.rows() if r.type == "StepFailed"]  # the history stays in the log
    assert all(m.failure_kind is None for m in store.projection().machines.values())
    store.close()


def test_an_unreachable_provider_stops_the_run_and_the_next_run_recovers(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = anthropic_workspace(tmp_path / "ws", f"http://127.0.0.1:{port}")
    stage = [*small(), "--set", "scheduler.stop_after=tools_listed", "--set", "provider.anthropic.max_retries=0"]
    capsys.readouterr()
    assert cli("run", "-w", str(root), *stage) == 1
    err = capsys.readouterr().err
    causes = [line for line in err.splitlines() if line.startswith("failed (")]
    assert len(causes) == 1 and causes[0].startswith("failed (provider, 1 machine, the next run retries): ")
    assert "connection error" in causes[0] and causes[0].endswith("[world]") and "Traceback" not in err
    world = Store(root / "skiller.db").projection().machines["world"]
    assert world.state == "seeded" and world.failure_kind == "provider" and world.retryable
    with MessagesServer(responder=FakeModel()) as server:
        cfg = root / "skiller.yaml"
        cfg.write_text(re.sub(r'base_url: "[^"]+"', f'base_url: "{server.base_url}"', cfg.read_text()))
        assert cli("run", "-w", str(root), *stage) == 0
    proj = Store(root / "skiller.db").projection()
    assert proj.machines["world"].failure_kind is None
    assert proj.of_kind("domain") and all(m.state == "tools_listed" for m in proj.of_kind("domain"))
