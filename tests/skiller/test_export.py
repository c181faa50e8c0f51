"""`skiller export`: every exported server runs on its own against its exported database; tool lists,
rollout lines and SFT rows carry what their readers need; reruns are byte-identical."""
from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import cli


@pytest.fixture(scope="module")
def exported(finished) -> Path:
    return finished / "outputs"


def servers(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / "mcp_servers").glob("*.py"))


def test_every_domain_and_fusion_gets_a_server_its_database_and_a_tool_list(exported):
    names = servers(exported)
    assert len([n for n in names if "_" not in n]) >= 2 and len([n for n in names if "_" in n]) >= 1, names
    for name in names:
        assert (exported / "mcp_servers" / f"{name}.sqlite").is_file(), name
        tools = json.loads((exported / "tool_lists" / f"{name}.json").read_text())
        assert tools and all(set(t) == {"type", "function"} and t["type"] == "function" for t in tools), name
        assert all(set(t["function"]) == {"name", "description", "parameters"} for t in tools), name
        assert all(t["function"]["parameters"]["type"] == "object" for t in tools), name


async def _serve_and_read(script: Path, db: Path | None, tools: list[dict], cwd: Path) -> dict:
    """tools/list and one read call (the profile of the database's first person) over stdio."""
    args = [str(script)] + (["--db", str(db)] if db is not None else [])
    params = StdioServerParameters(command=sys.executable, args=args, cwd=str(cwd))
    with anyio.fail_after(120):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            assert [t.name for t in listed.tools] == [t["function"]["name"] for t in tools]
            profile = next(t["function"]["name"] for t in tools if t["function"]["name"].endswith("_profile"))
            person = sqlite3.connect(db or script.with_suffix(".sqlite")).execute(
                "SELECT person_id, first_name, last_name FROM person ORDER BY person_id LIMIT 1").fetchone()
            result = await session.call_tool(profile, {"person_id": person[0]})
            assert not result.is_error, result.content[0].text
            value = json.loads(result.content[0].text)
            assert (value["person_id"], value["first_name"], value["last_name"]) == person
            return value


def test_every_exported_server_answers_over_stdio_against_its_exported_database(exported, tmp_path):
    for name in servers(exported):
        tools = json.loads((exported / "tool_lists" / f"{name}.json").read_text())
        script, db = exported / "mcp_servers" / f"{name}.py", exported / "mcp_servers" / f"{name}.sqlite"
        anyio.run(_serve_and_read, script, db, tools, tmp_path)


def test_a_copied_server_serves_the_database_beside_it_by_default(exported, tmp_path):
    fused = next(n for n in servers(exported) if "_" in n)
    for suffix in (".py", ".sqlite"):
        shutil.copy(exported / "mcp_servers" / f"{fused}{suffix}", tmp_path / f"{fused}{suffix}")
    tools = json.loads((exported / "tool_lists" / f"{fused}.json").read_text())
    anyio.run(_serve_and_read, tmp_path / f"{fused}.py", None, tools, tmp_path)


def test_a_server_without_its_database_says_so_in_one_line(exported, tmp_path):
    import subprocess
    name = servers(exported)[0]
    shutil.copy(exported / "mcp_servers" / f"{name}.py", tmp_path / f"{name}.py")
    done = subprocess.run([sys.executable, str(tmp_path / f"{name}.py")], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / f"{name}.sqlite").exists()  # no empty database was created


def test_every_rollout_line_names_its_query_and_sft_rows_carry_ids_and_reward(exported):
    queries = {json.loads(line)["id"] for p in (exported / "queries").glob("*.jsonl")
               for line in p.read_text().splitlines()}
    results = {json.loads(line)["transcript_id"]: json.loads(line)["reward"]
               for line in (exported / "evaluation" / "results.jsonl").read_text().splitlines()}
    rollouts = sorted((exported / "rollouts").glob("*.jsonl"))
    assert len(rollouts) >= 3
    for path in rollouts:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            assert row["query_id"] in queries and row["query_id"] == row["task_id"]
    sft = sorted((exported / "sft").glob("*.jsonl"))
    assert [p.name for p in sft] == [p.name for p in rollouts]
    for path in sft:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            assert {"id", "task_id", "environment", "reward", "messages", "tools"} <= set(row)
            assert row["environment"] == path.stem and row["task_id"] in queries
            assert row["reward"] == results[row["id"]]


def test_export_reruns_are_byte_identical(exported, tmp_path):
    root = exported.parent
    assert cli("export", "-w", str(root), "--format", "sft", "--out", str(tmp_path / "again")) == 0
    first = {p.relative_to(exported): p.read_bytes() for p in exported.rglob("*") if p.is_file()}
    again = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in (tmp_path / "again").rglob("*") if p.is_file()}
    assert first.keys() == again.keys() and first == again


def test_export_through_worker_processes_writes_the_same_bytes(exported, tmp_path):
    root = exported.parent
    spread = ["--set", "scheduler.executor=processes", "--set", "scheduler.workers=2"]
    assert cli("export", "-w", str(root), "--format", "sft", "--out", str(tmp_path / "spread"), *spread) == 0
    assert cli("export", "-w", str(root), "--format", "sft", "--out", str(tmp_path / "one")) == 0
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    spread_files = {p.relative_to(tmp_path / "spread"): p.read_bytes()
                    for p in (tmp_path / "spread").rglob("*") if p.is_file()}
    assert len(one) > 50 and one == spread_files


def test_a_worker_process_that_cannot_write_fails_in_one_line_and_keeps_whole_files(exported, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "rollouts").write_text("a file where the rollouts folder goes")
    spread = ["--set", "scheduler.executor=processes", "--set", "scheduler.workers=2"]
    assert cli("export", "-w", str(exported.parent), "--out", str(out), *spread) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "rollouts" in lines[0], lines
    assert not list(out.rglob("*.tmp"))
    for path in out.rglob("*.json"):  # every file another worker finished is whole
        json.loads(path.read_text())
