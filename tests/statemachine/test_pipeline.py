"""The event-sourced pipeline end to end on the builtin provider: determinism, resume, replay, export."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skiller.store import Store
from tests.conftest import REPO, cli, cli_process, make_workspace, small

STAGE = ["--set", "scheduler.stop_after=tools_listed"]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_fresh(root: Path, *extra: str) -> dict[str, bytes]:
    make_workspace(root)
    assert cli("run", "-w", str(root), *small(), *STAGE, *extra) == 0
    return tree(root / "outputs")


def assert_log_is_sound(db: Path) -> None:
    """Every stream is one chain of transitions; no machine created twice; no event half-written."""
    store = Store(db)
    created, last = set(), {}
    for row in store.rows():
        if row.type == "MachineCreated":
            assert row.stream not in created, f"{row.stream} created twice"
            created.add(row.stream)
            last[row.stream] = json.loads(row.payload)["initial"]
        elif row.type == "Transitioned":
            assert row.source == last[row.stream], f"{row.stream}: {row.trigger} from {row.source}, was {last[row.stream]}"
            last[row.stream] = row.dest
            for sha in json.loads(row.artifacts).values():
                store.artifact(sha)
    store.close()


def test_run_builds_world_and_domains_with_reference_outputs(tmp_path):
    out = run_fresh(tmp_path / "ws")
    topics = json.loads(out["domain_topics.json"])["domains"]
    assert len(topics) == 3 and len({d["sector"] for d in topics}) == 3
    blueprints = json.loads(out["blueprints.json"])
    assert [b["MCP_server_name"] for b in blueprints] == sorted(d["name"] for d in topics)
    for b in blueprints:
        assert len(b["functions"]) >= 10 and len(b["peripheral_entities"]) <= 3
        assert {f["mode"] for f in b["functions"]} == {"read", "write"}
        tools = [t["function"] for t in json.loads(out[f"tool_lists/{b['MCP_server_name']}.json"])]
        assert [t["name"] for t in tools] == [f["name"] for f in b["functions"]]
        assert all(t["parameters"]["type"] == "object" and "required" in t["parameters"] for t in tools)
    graph = json.loads(out["entity_graph.json"])
    person_links = [l for l in graph["links"] if l["target"] == "Person"]
    assert len(person_links) == 3  # every domain's role is a Person: the graph is person-centric
    entities = {e["name"]: e for e in json.loads(out["entities.json"])["entities"]}
    assert entities["Person"]["is_person"] and len(entities["Person"]["domains"]) == 3


def test_same_config_and_seed_give_byte_identical_outputs(tmp_path):
    assert run_fresh(tmp_path / "a") == run_fresh(tmp_path / "b")


def test_a_different_seed_gives_different_domains(tmp_path):
    a = run_fresh(tmp_path / "a")
    b = run_fresh(tmp_path / "b", "--set", "seed=8")
    assert a["domain_topics.json"] != b["domain_topics.json"]


def test_export_rebuilds_deleted_outputs_identically(tmp_path):
    root = tmp_path / "ws"
    before = run_fresh(root)
    shutil.rmtree(root / "outputs")
    assert cli("export", "-w", str(root)) == 0
    assert tree(root / "outputs") == before


def test_second_run_is_a_no_op_that_pays_nothing(tmp_path):
    root = tmp_path / "ws"
    before = run_fresh(root)
    store = Store(root / "skiller.db")
    events = store.projection().events
    store.close()
    assert cli("run", "-w", str(root), *small(), *STAGE) == 0
    store = Store(root / "skiller.db")
    assert store.projection().events == events + 1  # only the RunStarted record
    assert tree(root / "outputs") == before


FULL = ["--set", "steps.s01.num_domains=2", "--set", "steps.s01.min_sectors=2", "--set", "steps.s06.rows_per_table=40",
        "--set", "steps.s06.people=30", "--set", "steps.s14.templates_per_domain=8"]


@pytest.mark.parametrize("stage, log_bytes", [(STAGE, 60_000), (FULL, 400_000)], ids=["to-tools-listed", "whole-pipeline"])
def test_killed_run_resumes_identically(tmp_path, stage, log_bytes):
    """kill -9 at random points (of the whole pipeline too: sandboxed tests, tasks, fusion, rollouts),
    then run again: the same outputs as an uninterrupted run, and a sound log."""
    ref = make_workspace(tmp_path / "ref")
    assert cli("run", "-w", str(ref), *small(), *stage) == 0
    reference = tree(ref / "outputs")
    rng = random.Random(1234)
    killed = 0
    for i in range(2):
        root = make_workspace(tmp_path / f"k{i}")
        args = [sys.executable, "-m", "skiller", "run", "-w", str(root), *small(), *stage]
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        threshold = rng.randint(0, log_bytes)  # kill once the log has grown past a random size
        deadline = time.monotonic() + 120
        wal = root / "skiller.db-wal"
        while proc.poll() is None and time.monotonic() < deadline:
            if wal.exists() and wal.stat().st_size > threshold:
                break
            time.sleep(0.005)  # polling a file size, not waiting for an outcome
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        assert_log_is_sound(root / "skiller.db")
        done = cli_process("run", "-w", str(root), *small(), *stage)
        assert done.returncode == 0, done.stderr
        assert_log_is_sound(root / "skiller.db")
        assert tree(root / "outputs") == reference
    assert killed >= 1  # at least one run really died mid-way


def test_advance_moves_only_the_named_domain(tmp_path):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=blueprinted") == 0
    store = Store(root / "skiller.db")
    names = sorted(m.stream.split(":")[1] for m in store.projection().of_kind("domain"))
    store.close()
    assert cli("advance", "-w", str(root), *small(), "--domain", names[0], "--to", "tools_listed") == 0
    store = Store(root / "skiller.db")
    states = {m.stream: m.state for m in store.projection().of_kind("domain")}
    assert states == {f"domain:{n}": ("tools_listed" if n == names[0] else "blueprinted") for n in names}


def test_advance_unknown_domain_is_a_one_line_error(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    assert cli("advance", "-w", str(root), *small(), "--domain", "Nowhere", "--to", "tools_listed") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skiller: unknown domain 'Nowhere'") and "\n" not in err
    assert Store(root / "skiller.db").projection().events == 1  # checked before any work


def test_bad_override_is_a_one_line_error_and_writes_nothing(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), "--set", "steps.s06.rows=3") == 2
    assert capsys.readouterr().err.strip() == "skiller: config: unknown key 'steps.s06.rows'"
    store = Store(root / "skiller.db")
    assert store.projection().events == 1


def test_status_log_and_replay_report_the_run(tmp_path, capsys):
    root = tmp_path / "ws"
    run_fresh(root)
    capsys.readouterr()
    assert cli("status", "-w", str(root)) == 0
    status = capsys.readouterr().out
    assert "tools_listed" in status and "builtin/builtin-text" in status
    assert cli("log", "-w", str(root), "--domain", json.loads((root / "outputs/blueprints.json").read_text())[0]["MCP_server_name"]) == 0
    assert "list_tools: blueprinted -> tools_listed" in capsys.readouterr().out
    assert cli("replay", "--verify", "-w", str(root)) == 0
    assert "no drift" in capsys.readouterr().out


def test_replay_verify_detects_a_tampered_artifact(tmp_path, capsys):
    root = tmp_path / "ws"
    run_fresh(root)
    store = Store(root / "skiller.db")
    sha = store.projection().machines["world"].artifacts["domains"]
    with store.db.conn:
        store.db.conn.execute("UPDATE artifacts SET content = ? WHERE sha256 = ?", (b"{}", sha))
    store.close()
    assert cli("replay", "--verify", "-w", str(root)) == 1
    assert "does not match its hash" in capsys.readouterr().err
