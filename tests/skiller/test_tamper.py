"""`replay --verify` audits the log itself: every manipulation of a finished workspace is drift at its
seq, with a non-zero exit and no traceback; a damaged database file is one line for every command."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from skiller.store import GENESIS, link
from tests.conftest import cli, cli_process, make_workspace, small


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("finished") / "ws")
    assert cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=tools_listed") == 0
    return root


@pytest.fixture
def ws(finished, tmp_path) -> Path:
    """A private copy of the finished workspace to damage."""
    return Path(shutil.copytree(finished, tmp_path / "copy"))


def sql(root: Path, *statements: tuple[str, tuple]) -> None:
    conn = sqlite3.connect(root / "skiller.db")
    with conn:
        for statement, params in statements:
            conn.execute(statement, params)
    conn.close()


def reseal(root: Path) -> None:
    """Recompute the whole chain, as a forger who knows the scheme would: only the meaning can betray him."""
    conn = sqlite3.connect(root / "skiller.db")
    prev = GENESIS
    with conn:
        for r in conn.execute("SELECT seq, stream, type, trigger, source, dest, payload, artifacts, run_id "
                              "FROM events ORDER BY seq").fetchall():
            prev = link(prev, *r)
            conn.execute("UPDATE events SET hash = ? WHERE seq = ?", (prev, r[0]))
    conn.close()


def event(root: Path, stream: str, type_: str) -> tuple[int, dict]:
    """The first event of a type on a stream: (seq, artifacts)."""
    conn = sqlite3.connect(root / "skiller.db")
    seq, artifacts = conn.execute("SELECT seq, artifacts FROM events WHERE stream LIKE ? AND type = ? ORDER BY seq",
                                  (stream, type_)).fetchone()
    conn.close()
    return seq, json.loads(artifacts)


def verify_drift(root: Path) -> list[str]:
    """Run `replay --verify` as a user would; it must fail cleanly. Returns the drift lines."""
    done = cli_process("replay", "--verify", "-w", str(root))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("drift ") for line in lines), done.stderr
    return lines


def test_the_untouched_copy_verifies_clean(ws):
    done = cli_process("replay", "--verify", "-w", str(ws))
    assert done.returncode == 0 and "no drift" in done.stdout, done.stderr
    assert "checked: log, artifacts, implementations, golden trajectories" in done.stdout


def test_an_edited_payload_is_drift_at_its_seq(ws):
    seq, _ = event(ws, "world", "Transitioned")
    sql(ws, ("UPDATE events SET payload = ? WHERE seq = ?", ('{"attempts": 2}', seq)))
    assert verify_drift(ws) == [f"drift seq {seq}: edited: the event does not match its hash"]


def test_a_deleted_event_is_drift_at_its_seq(ws):
    seq, _ = event(ws, "world", "LLMCalled")
    sql(ws, ("DELETE FROM events WHERE seq = ?", (seq,)))
    assert verify_drift(ws) == [f"drift seq {seq}: deleted: event(s) {seq} are missing from the log"]


def test_two_reordered_events_are_drift_at_their_seqs(ws):
    a, _ = event(ws, "domain:%", "MachineCreated")
    b = a + 1
    sql(ws, ("UPDATE events SET seq = -1 WHERE seq = ?", (a,)), ("UPDATE events SET seq = ? WHERE seq = ?", (a, b)),
        ("UPDATE events SET seq = ? WHERE seq = -1", (b,)))
    assert f"drift seq {a}: reordered: events {a} and {b} were swapped" in verify_drift(ws)


def test_an_artifact_re_pointed_at_another_kind_is_drift_even_with_a_forged_chain(ws):
    seq, artifacts = event(ws, "domain:%", "Transitioned")
    world_seq, world = event(ws, "world", "Transitioned")  # the world's first artifact is a DomainTopics
    artifacts["tool_list"] = next(iter(world.values()))
    sql(ws, ("UPDATE events SET artifacts = ? WHERE seq = ?", (json.dumps(artifacts, sort_keys=True), seq)))
    lines = verify_drift(ws)
    assert f"drift seq {seq}: edited: the event does not match its hash" in lines
    reseal(ws)
    [line] = verify_drift(ws)
    assert line.startswith(f"drift seq {seq}: artifact kind: 'tool_list' points at a DomainTopics")
    assert line.endswith("expected a ToolList")


def test_a_transition_the_machine_kind_does_not_allow_is_drift_even_with_a_forged_chain(ws):
    seq, _ = event(ws, "domain:%", "Transitioned")
    sql(ws, ("UPDATE events SET dest = 'implemented' WHERE seq = ?", (seq,)))
    reseal(ws)
    lines = verify_drift(ws)
    assert lines[0] == (f"drift seq {seq}: illegal transition: a domain machine has no transition "
                        "blueprinted --list_tools--> implemented")
    assert not any("edited" in line for line in lines)  # the chain was forged: only the meaning betrays it


def test_a_transition_from_a_state_the_machine_was_not_in_is_drift(ws):
    seq, _ = event(ws, "world", "Transitioned")
    sql(ws, ("UPDATE events SET source = 'graph_built', trigger = 'design_blueprints', dest = 'blueprinted' "
             "WHERE seq = ?", (seq,)))
    reseal(ws)
    assert f"drift seq {seq}: illegal transition: world leaves graph_built but was in seeded" in verify_drift(ws)


def test_a_payload_that_is_not_json_is_drift_at_its_seq(ws):
    seq, _ = event(ws, "world", "Transitioned")
    sql(ws, ("UPDATE events SET payload = ? WHERE seq = ?", ('{"attempts": ', seq)))
    lines = verify_drift(ws)
    assert f"drift seq {seq}: invalid JSON: the payload column is not a JSON object" in lines
    assert f"drift seq {seq}: edited: the event does not match its hash" in lines


def flip(root: Path, offset: int) -> None:
    path = root / "skiller.db"
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_inside_an_event_is_drift_at_that_seq(ws):
    conn = sqlite3.connect(ws / "skiller.db")
    rows = conn.execute("SELECT seq, payload FROM events WHERE type = 'Transitioned' ORDER BY seq").fetchall()
    conn.close()
    data = (ws / "skiller.db").read_bytes()
    seq, payload = next((s, p) for s, p in rows if len(p) > 8 and data.count(p.encode()) == 1)
    flip(ws, data.index(payload.encode()) + len(payload) // 2)
    lines = verify_drift(ws)
    assert f"drift seq {seq}: corrupt: the event holds bytes that are not UTF-8 text" in lines
    assert f"drift seq {seq}: edited: the event does not match its hash" in lines


def test_a_flipped_byte_in_a_page_header_is_reported_as_corrupt(ws):
    page_size = int.from_bytes((ws / "skiller.db").read_bytes()[16:18], "big")
    flip(ws, page_size)  # the b-tree type byte of page 2
    assert verify_drift(ws)[0].startswith("drift skiller.db: corrupt: ")


WRITERS = [["run"], ["advance", "--domain", "X"], ["rollout"], ["evaluate"]]
READERS = [["status"], ["log"], ["replay"], ["replay", "--verify"], ["export", "--out", "OUT"], ["serve", "--domain", "X"]]


@pytest.mark.parametrize("damage", ["flipped header byte", "not SQLite"])
@pytest.mark.parametrize("command", READERS + WRITERS, ids=lambda c: " ".join(c))
def test_every_command_on_a_damaged_database_file_is_one_line(ws, tmp_path, damage, command):
    if damage == "not SQLite":
        (ws / "skiller.db").write_bytes(b"a text file where the database was\n" * 200)
    else:
        flip(ws, 5)  # inside "SQLite format 3"
    done = cli_process(*[str(tmp_path / "out") if c == "OUT" else c for c in command], "-w", str(ws))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "corrupt" in done.stderr, done.stderr
