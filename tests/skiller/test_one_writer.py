"""One writer per workspace: a second writer is refused naming the holder, readers carry on, and a
read-only workspace is read without a byte written into it."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from skiller.store import WriterLock
from tests.conftest import REPO, cli, cli_process, make_workspace, small

FULL = small("steps.s01.num_domains=2", "steps.s01.min_sectors=2", "steps.s06.rows_per_table=40",
             "steps.s06.people=30", "steps.s14.templates_per_domain=8")
_SECONDS = re.compile(r" in \d+(\.\d+)?s\b")  # pytest's own timing inside test outputs


def log_of(root: Path) -> dict[str, list]:
    """The log per stream, artifacts by kind and content. Left out, as measurements rather than facts:
    the wall-clock `at`, `latency_ms`, pytest's durations, and how concurrent streams interleave."""
    conn = sqlite3.connect(root / "skiller.db")
    artifacts = {sha: (kind, _SECONDS.sub(" in <t>", content.decode(errors="replace")))
                 for sha, kind, content in conn.execute("SELECT sha256, kind, content FROM artifacts")}
    streams: dict[str, list] = defaultdict(list)
    for seq, stream, type_, trigger, source, dest, payload, refs, run_id in conn.execute(
            "SELECT seq, stream, type, trigger, source, dest, payload, artifacts, run_id FROM events ORDER BY seq"):
        data = json.loads(payload)
        data.pop("latency_ms", None)
        if isinstance(data.get("output"), str):
            data["output"] = _SECONDS.sub(" in <t>", data["output"])
        streams[stream].append((type_, trigger, source, dest, data, run_id,
                                {name: artifacts[sha] for name, sha in json.loads(refs).items()}))
    conn.close()
    return dict(streams)


def wait_for_lock(root: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    lock = root / "skiller.lock"
    while time.monotonic() < deadline and proc.poll() is None:
        if lock.exists() and lock.read_text().strip() == str(proc.pid):
            return
        time.sleep(0.005)  # polling a file for the holder's pid, not waiting for an outcome
    raise AssertionError(f"the first run never took the lock (exit {proc.poll()})")


def test_a_second_run_is_refused_while_the_first_writes_and_the_log_is_a_single_runs(tmp_path):
    ref = make_workspace(tmp_path / "ref")
    alone = cli_process("run", "-w", str(ref), *FULL, timeout=900)
    assert alone.returncode == 0, alone.stderr
    root = make_workspace(tmp_path / "ws")
    env = {k: v for k, v in os.environ.items() if "KEY" not in k}
    with open(tmp_path / "first.out", "w") as out:
        first = subprocess.Popen([sys.executable, "-m", "skiller", "run", "-w", str(root), *FULL], cwd=REPO, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_lock(root, first)
            for attempt in range(10):
                os.kill(first.pid, signal.SIGSTOP)  # hold it there, lock in hand, however loaded the machine is
                try:
                    second = cli_process("run", "-w", str(root), *FULL, timeout=300)
                    status = cli_process("status", "-w", str(root), timeout=300)
                    history = cli_process("log", "-w", str(root), timeout=300)
                finally:
                    os.kill(first.pid, signal.SIGCONT)
                # A writer frozen in the middle of resetting its WAL blocks readers (SQLite's "locking
                # protocol"); a real writer moves on, so let it, and freeze it again elsewhere.
                if "locking protocol" not in status.stderr + history.stderr or first.poll() is not None:
                    break
                time.sleep(0.2 * (attempt + 1))
            assert first.wait(timeout=900) == 0, (tmp_path / "first.out").read_text()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=60)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert second.stderr.count("\n") == 1 and f"in use by another skiller command (pid {first.pid})" in second.stderr
    assert status.returncode == 0 and "machines by state" in status.stdout, status.stderr
    assert history.returncode == 0 and "MachineCreated" in history.stdout, history.stderr
    concurrent, single = log_of(root), log_of(ref)
    assert sum(map(len, concurrent.values())) == sum(map(len, single.values()))
    assert len(concurrent["run"]) == 1  # the refused run did not even record that it started
    assert concurrent == single


@pytest.mark.parametrize("command", [["run"], ["advance", "--domain", "X"], ["rollout"], ["evaluate"]],
                         ids=lambda c: c[0])
def test_every_writing_command_is_refused_while_the_lock_is_held_and_reads_go_on(workspace, capsys, command):
    held = WriterLock(workspace / "skiller.lock").acquire()
    try:
        assert cli(*command, "-w", str(workspace)) == 2
        refused = capsys.readouterr().err
        assert refused.count("\n") == 1 and f"(pid {os.getpid()})" in refused
        assert cli("status", "-w", str(workspace)) == 0 and cli("log", "-w", str(workspace)) == 0
    finally:
        held.release()
    assert cli("run", "-w", str(workspace), *small(), "--set", "scheduler.stop_after=blueprinted") == 0


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


def test_a_read_only_workspace_is_read_and_never_written(tmp_path):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=tools_listed") == 0
    domain = json.loads((root / "outputs" / "blueprints.json").read_text())[0]["MCP_server_name"]
    for path in (root / "skiller.db", root):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        before = snapshot(root)
        for command in (["status"], ["log", "--domain", domain], ["replay"], ["replay", "--verify"],
                        ["export", "--out", str(tmp_path / "elsewhere")]):
            done = cli_process(*command, "-w", str(root))
            assert done.returncode == 0 and not done.stderr, (command, done.stderr)
        assert (tmp_path / "elsewhere" / "blueprints.json").exists()
        for command in (["run"], ["advance", "--domain", domain], ["rollout"], ["evaluate"], ["export"]):
            done = cli_process(*command, "-w", str(root))
            assert done.returncode == 2 and done.stderr.count("\n") == 1, (command, done.stderr)
            assert "read-only" in done.stderr and "Traceback" not in done.stderr
        assert snapshot(root) == before  # no log line, no -wal, no -shm, no lock file, not one byte
    finally:
        root.chmod(0o755)
        (root / "skiller.db").chmod(0o644)


def test_readers_in_a_writable_workspace_leave_no_wal_behind(tmp_path):
    root = make_workspace(tmp_path / "ws")
    assert cli("status", "-w", str(root)) == 0
    assert cli("replay", "--verify", "-w", str(root)) == 0
    assert sorted(p.name for p in root.iterdir()) == ["skiller.db", "skiller.lock", "skiller.log", "skiller.yaml"]
