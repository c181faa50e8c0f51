"""The process executor: steps in spawned worker processes give the same outputs as in-process, and a
worker killed mid-step loses nothing."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from skiller.statemachine.ray_executor import HOLD_ENV
from skiller.store import Store
from tests.conftest import cli, make_workspace, small
from tests.statemachine.test_pipeline import assert_log_is_sound, tree

RUN = small("steps.s01.num_domains=2", "steps.s01.min_sectors=2", "steps.s06.rows_per_table=30",
            "steps.s06.people=20", "steps.s14.templates_per_domain=5")  # two domains, their fusion, rollouts
PROCESSES = ["--set", "scheduler.executor=processes", "--set", "scheduler.workers=2",
             "--set", "scheduler.max_parallel_steps=6"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    root = make_workspace(tmp_path_factory.mktemp("local") / "ws")
    assert cli("run", "-w", str(root), *RUN) == 0
    outputs = tree(root / "outputs")
    assert any(name.startswith("evaluation") for name in outputs)  # rolled out and evaluated, not only synthesized
    return outputs


def test_a_run_in_worker_processes_gives_byte_identical_outputs(tmp_path, reference):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *RUN, *PROCESSES) == 0
    assert tree(root / "outputs") == reference
    assert_log_is_sound(root / "skiller.db")
    assert "worker process died" not in (root / "skiller.log").read_text()


def test_a_worker_process_killed_mid_rollout_loses_nothing(tmp_path, reference, monkeypatch):
    """The first rollout parks in its worker process and reports the pid; the process is killed; the
    step runs again in a fresh worker and the run ends as if nothing happened."""
    pidfile = tmp_path / "held.pid"
    monkeypatch.setenv(HOLD_ENV, f"s18:{pidfile}")  # spawned workers inherit the environment
    killed: list[int] = []

    def kill_the_held_worker() -> None:
        deadline = time.monotonic() + 600
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # polling for a file, not waiting for an outcome
        if pidfile.exists():
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_the_held_worker, daemon=True)
    killer.start()
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *RUN, *PROCESSES) == 0
    killer.join(timeout=60)
    assert killed and killed[0] != os.getpid()  # a real worker process died mid-step
    assert tree(root / "outputs") == reference
    assert_log_is_sound(root / "skiller.db")
    store = Store(root / "skiller.db")
    assert [r.stream for r in store.rows() if r.type == "StepFailed"] == []  # retried, not recorded as a failure
    store.close()
    assert "worker process died" in (root / "skiller.log").read_text()
