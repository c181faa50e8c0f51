"""Executable environments on the builtin provider: every domain implemented, verified, served over MCP."""
from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from skiller.store import Store
from tests.conftest import REPO, cli, make_workspace, small

IMPLEMENTED = ["--set", "scheduler.stop_after=implemented"]


@pytest.fixture(scope="module")
def implemented(tmp_path_factory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("env") / "ws")
    assert cli("run", "-w", str(root), *small(), *IMPLEMENTED) == 0
    return root


def test_every_domain_is_implemented_with_a_sound_database(implemented):
    store = Store(implemented / "skiller.db")
    domains = store.projection().of_kind("domain")
    assert len(domains) == 3 and {m.state for m in domains} == {"implemented"}
    for m in domains:
        db = store.artifact(m.artifacts["database"])
        path = implemented / f"{m.inputs['domain']}.sqlite"
        path.write_bytes(db)
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM person").fetchone()[0] == 20
        policy = json.loads(store.artifact(m.artifacts["policy"]))
        assert len(policy["rules"]) >= 5 and "<!-- POLICY_START -->" in policy["markdown"]


def test_replay_verify_reruns_every_domains_tests(implemented, capsys):
    assert cli("replay", "--verify", "-w", str(implemented)) == 0
    out = capsys.readouterr().out
    assert "implementations" in out and "no drift" in out


def test_exported_layout_has_environment_artifacts(implemented):
    assert cli("export", "-w", str(implemented)) == 0
    out = implemented / "outputs"
    servers = sorted(p.stem for p in (out / "tool_lists").glob("*.json"))
    for name in servers:
        for rel in (f"policies/{name}.md", f"tool_graphs/{name}.json", f"mcp_servers/{name}.py",
                    f"database_summary/{name}.json"):
            assert (out / rel).is_file(), rel
        graph = json.loads((out / f"tool_graphs/{name}.json").read_text())
        assert graph["links"] and graph["valid_trajectories"]
    assert (out / "database/outputs/entities/Person.json").is_file()


def _domain(root: Path) -> tuple[str, list[dict]]:
    name = sorted(p.stem for p in (root / "outputs" / "tool_lists").glob("*.json"))[0]
    return name, [t["function"] for t in json.loads((root / "outputs" / "tool_lists" / f"{name}.json").read_text())]


async def _exercise(client: Client, tools: list[dict], store: Store, name: str) -> None:
    listed = await client.list_tools()
    assert sorted((t.name, json.dumps(t.input_schema, sort_keys=True)) for t in listed.tools) == \
        sorted((t["name"], json.dumps(dict(t["parameters"]), sort_keys=True)) for t in tools)
    profile = next(t["name"] for t in tools if "profile" in t["name"])
    person = json.loads((await client.call_tool(profile, {"person_id": "P-0001"})).content[0].text)
    assert person["person_id"] == "P-0001"
    # a write: cancel-like status change on one of this person's records, found through a list tool
    bad = await client.call_tool(profile, {"person_id": 12})
    assert bad.is_error and "person_id" in bad.content[0].text
    missing = await client.call_tool(profile, {"person_id": "P-9999"})
    assert missing.is_error


def test_mcp_client_over_stdio_to_skiller_serve(implemented):
    cli("export", "-w", str(implemented))
    name, tools = _domain(implemented)
    store = Store(implemented / "skiller.db")
    params = StdioServerParameters(command=sys.executable, cwd=str(REPO),
                                   args=["-m", "skiller", "serve", "-w", str(implemented), "--domain", name])

    async def run() -> None:
        async with Client(params) as client:
            assert client.server_info.name == name
            await _exercise(client, tools, store, name)
            write = await _write_and_observe(client, tools)
            assert write

    anyio.run(run)


async def _write_and_observe(client: Client, tools: list[dict]) -> bool:
    """Find a pay/cancel-style write that succeeds for some record, and see the state change."""
    lists = [t for t in tools if t["name"].startswith("list_")]
    for lister in lists:
        for n in range(1, 21):
            listed = await client.call_tool(lister["name"], {"person_id": f"P-{n:04d}"})
            rows = json.loads(listed.content[0].text) if not listed.is_error else []
            for row in rows:
                key = next(k for k in row if k.endswith("_id") and k != "person_id")
                for tool in tools:
                    if list(tool["parameters"]["required"]) == [key]:
                        before = json.dumps(row, sort_keys=True)
                        result = await client.call_tool(tool["name"], {key: row[key]})
                        if not result.is_error:
                            again = json.loads((await client.call_tool(lister["name"], {"person_id": f"P-{n:04d}"})).content[0].text)
                            after = json.dumps(next(r for r in again if r[key] == row[key]), sort_keys=True)
                            if after != before:
                                return True
    return False


def test_exported_server_runs_on_its_own(implemented, tmp_path):
    cli("export", "-w", str(implemented))
    name, tools = _domain(implemented)
    store = Store(implemented / "skiller.db")
    m = store.projection().machines[f"domain:{name}"]
    db = tmp_path / "db.sqlite"
    db.write_bytes(store.artifact(m.artifacts["database"]))
    script = implemented / "outputs" / "mcp_servers" / f"{name}.py"
    params = StdioServerParameters(command=sys.executable, args=[str(script), "--db", str(db)], cwd=str(tmp_path))

    async def run() -> None:
        async with Client(params) as client:
            listed = await client.list_tools()
            assert sorted(t.name for t in listed.tools) == sorted(t["name"] for t in tools)

    anyio.run(run)
