"""One-line errors (the README's promise): no traceback reaches the user, nothing already written is lost."""
from __future__ import annotations

import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from skiller.store import Store
from tests.conftest import REPO, cli, make_workspace
from tests.skiller.conftest import TINY, sets


def skiller(*args: str, limit_bytes: int | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI as a real process; `limit_bytes` caps every file it writes (RLIMIT_FSIZE), like a full disk."""
    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    env = {k: v for k, v in os.environ.items() if "KEY" not in k}
    return subprocess.run([sys.executable, "-m", "skiller", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap if limit_bytes else None)


def one_line(text: str) -> str:
    assert "Traceback" not in text, text[-2000:]
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text[-2000:]
    assert lines[0].startswith("skiller: ")
    return lines[0]


def count(root: Path) -> int:
    return len(list(Store(root / "skiller.db").rows()))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- full disk ----------------------------------------------------------------------------------------

STAGE = [*TINY, "scheduler.stop_after=tools_listed"]


def test_a_full_disk_during_run_is_one_line_and_the_next_run_completes_as_a_clean_one(tmp_path):
    clean = make_workspace(tmp_path / "clean")
    assert cli("run", "-w", str(clean), *sets(STAGE)) == 0
    root = make_workspace(tmp_path / "ws")
    size = (root / "skiller.db").stat().st_size
    done = skiller("run", "-w", str(root), *sets(STAGE), limit_bytes=size + 60_000)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    # a write that fails at the commit stops the run with one line; one inside a step (the LLM cache) fails
    # that machine with one line naming the error: either way every line names the disk
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and all("disk" in line for line in lines), done.stderr
    assert "Traceback" in (root / "skiller.log").read_text()  # the details are in the log
    assert skiller("replay", "-w", str(root)).returncode == 0  # what was committed is intact
    assert cli("run", "-w", str(root), *sets(STAGE)) == 0
    assert tree(root / "outputs") == tree(clean / "outputs")


def test_a_full_disk_during_export_is_one_line_and_leaves_only_whole_files(finished, tmp_path):
    out = tmp_path / "out"
    # room for every database (export snapshots them) but not for the largest rollout files
    limit = max(p.stat().st_size for p in (finished / "outputs" / "mcp_servers").glob("*.sqlite")) + 1
    assert any(p.stat().st_size > limit for p in (finished / "outputs").rglob("*.jsonl"))
    done = skiller("export", "-w", str(finished), "--out", str(out), limit_bytes=limit)
    assert done.returncode == 2
    assert "no space left" in one_line(done.stderr)
    assert not list(out.rglob("*.tmp"))
    reference = tree(finished / "outputs")
    partial = tree(out)
    assert partial and all(reference[name] == content for name, content in partial.items())
    assert cli("export", "-w", str(finished), "--out", str(out)) == 0
    assert {k: v for k, v in tree(out).items() if not k.startswith("sft/")} == \
        {k: v for k, v in reference.items() if not k.startswith("sft/")}


def test_an_injected_enospc_at_the_file_write_edge_is_one_line(finished, tmp_path, monkeypatch, capsys):
    real = Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        if self.name.startswith("entity_graph"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    assert cli("export", "-w", str(finished), "--out", str(tmp_path / "out")) == 2
    line = one_line(capsys.readouterr().err)
    assert "no space left" in line and "entity_graph.json" in line


# --- serve --transport http -------------------------------------------------------------------------

def serve(finished: Path, *args: str) -> subprocess.CompletedProcess:
    domain = sorted(m.inputs["domain"] for m in Store(finished / "skiller.db").projection().of_kind("domain"))[0]
    return skiller("serve", "-w", str(finished), "--domain", domain, "--transport", "http", *args, timeout=120)


def test_serve_on_a_port_in_use_is_one_line(finished):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = serve(finished, "--port", str(port))
    assert done.returncode == 2 and "already in use" in one_line(done.stderr)


@pytest.mark.parametrize("args, says", [
    (["--port", "70000"], "out of range"),
    (["--port", "-1"], "out of range"),
    (["--host", "203.0.113.7"], "not an address of this machine"),  # TEST-NET-3: never local
    (["--host", "::ffff:999.1.1.1"], "cannot"),
])
def test_serve_on_a_bad_host_or_port_is_one_line(finished, args, says):
    done = serve(finished, *args)
    assert done.returncode == 2 and says in one_line(done.stderr)


# --- files in the way, dates, changed config -----------------------------------------------------------

def test_init_onto_an_existing_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    assert cli("init", str(target)) == 2
    assert "is a file" in one_line(capsys.readouterr().err)
    assert target.read_text() == "mine"
    assert cli("init", str(target / "below")) == 2
    one_line(capsys.readouterr().err)


def test_export_out_onto_a_file_is_one_line(finished, tmp_path, capsys):
    target = tmp_path / "taken.json"
    target.write_text("mine")
    assert cli("export", "-w", str(finished), "--out", str(target)) == 2
    assert "is a file" in one_line(capsys.readouterr().err)
    assert target.read_text() == "mine"


@pytest.mark.parametrize("where", ["set", "file"])
def test_an_invalid_date_names_its_key_in_one_line(tmp_path, capsys, where):
    root = make_workspace(tmp_path / "ws", "\nclock: 2026-02-30\n" if where == "file" else "")
    before = count(root)
    args = ["--set", "clock=2026-02-30"] if where == "set" else []
    assert cli("run", "-w", str(root), *args) == 2
    line = one_line(capsys.readouterr().err)
    assert "clock" in line and "2026-02-30" in line
    assert count(root) == before


def test_a_valid_date_in_the_file_is_still_a_date(tmp_path):
    from skiller.config import load_config
    root = make_workspace(tmp_path / "ws", "\nclock: 2026-02-28\n")
    assert load_config(root / "skiller.yaml").clock.isoformat() == "2026-02-28"


def test_a_changed_config_file_is_refused_unless_given_with_set_and_then_recorded(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    stage = sets([*TINY, "scheduler.stop_after=blueprinted"])
    assert cli("run", "-w", str(root), *stage) == 0
    cfg = root / "skiller.yaml"
    cfg.write_text(cfg.read_text().replace("seed: 7", "seed: 8").replace("s09: {max_repairs: 3}", "s09: {max_repairs: 2}"))
    before = count(root)
    capsys.readouterr()
    assert cli("run", "-w", str(root), *stage) == 2
    line = one_line(capsys.readouterr().err)
    assert "seed 7 -> 8" in line and "steps.s09.max_repairs 3 -> 2" in line and "--set seed=8" in line
    assert count(root) == before  # refused before anything was written
    assert cli("run", "-w", str(root), *stage, "--set", "seed=8") == 2  # every changed key must be explicit
    capsys.readouterr()
    assert cli("run", "-w", str(root), *stage, "--set", "seed=8", "--set", "steps.s09.max_repairs=2") == 0
    started = [json.loads(r.payload) for r in Store(root / "skiller.db").rows(stream="run")][-1]
    assert started["changed"] == ["seed", "steps.s09.max_repairs"] and "seed=8" in started["overrides"]
    assert cli("status", "-w", str(root)) == 0  # read commands never refuse
    assert cli("run", "-w", str(root), *stage) == 0  # the recorded change is now the workspace's config


def test_operational_keys_may_change_in_the_file(tmp_path):
    root = make_workspace(tmp_path / "ws")
    stage = sets([*TINY, "scheduler.stop_after=blueprinted"])
    assert cli("run", "-w", str(root), *stage) == 0
    cfg = root / "skiller.yaml"
    cfg.write_text(cfg.read_text() + "sandbox: {wall_seconds: 300}\nscheduler: {max_parallel_steps: 2}\n")
    assert cli("run", "-w", str(root), *stage) == 0
    started = [json.loads(r.payload) for r in Store(root / "skiller.db").rows(stream="run")][-1]
    assert started["changed"] == ["sandbox.wall_seconds", "scheduler.max_parallel_steps"]
