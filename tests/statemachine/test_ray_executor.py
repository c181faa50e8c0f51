"""The Ray executor on a local Ray instance started here: the same outputs as in-process, and a worker
killed mid-step loses nothing."""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import ray

from skiller.statemachine.ray_executor import HOLD_ENV
from skiller.store import Store
from tests.conftest import cli, make_workspace, small
from tests.statemachine.test_pipeline import assert_log_is_sound, tree

RUN = small("steps.s01.num_domains=2", "steps.s01.min_sectors=2", "steps.s06.rows_per_table=30",
            "steps.s06.people=20", "steps.s14.templates_per_domain=5")  # two domains, their fusion, rollouts
RAY = ["--set", "scheduler.executor=ray"]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of this process (the executor attaches to it), gone with all its processes afterwards."""
    temp = tempfile.mkdtemp(prefix="skray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             object_store_memory=128 * 1024 * 1024, _temp_dir=temp)
    try:
        yield
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 60
        while _processes_mentioning(temp) and time.monotonic() < deadline:
            time.sleep(0.2)  # waiting for processes to exit, not for an outcome
        left = _processes_mentioning(temp)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
        assert left == [], f"Ray left processes behind: {left}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    root = make_workspace(tmp_path_factory.mktemp("local") / "ws")
    assert cli("run", "-w", str(root), *RUN) == 0
    outputs = tree(root / "outputs")
    assert any(name.startswith("evaluation") for name in outputs)  # rolled out and evaluated, not only synthesized
    return outputs


def test_a_run_through_ray_gives_byte_identical_outputs(tmp_path, local_ray, reference):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *RUN, *RAY) == 0
    assert tree(root / "outputs") == reference
    assert_log_is_sound(root / "skiller.db")


def test_a_worker_killed_mid_rollout_loses_nothing(tmp_path, local_ray, reference, monkeypatch):
    """The first rollout parks in its Ray worker and reports the worker's pid; the worker is killed;
    Ray runs the step again elsewhere and the run ends as if nothing happened."""
    pidfile = tmp_path / "held.pid"
    monkeypatch.setenv(HOLD_ENV, f"s18:{pidfile}")
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
    assert cli("run", "-w", str(root), *RUN, *RAY) == 0
    killer.join(timeout=60)
    assert killed and killed[0] != os.getpid()  # a real Ray worker process died mid-step
    assert tree(root / "outputs") == reference
    assert_log_is_sound(root / "skiller.db")
    store = Store(root / "skiller.db")
    assert [r.stream for r in store.rows() if r.type == "StepFailed"] == []  # retried, not recorded as a failure
    store.close()


def test_without_ray_installed_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *RUN, *RAY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e '.[ray]'" in err[0]
