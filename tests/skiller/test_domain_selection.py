"""The card's uses work as written: `advance --domain hospital` on a fresh workspace, config naming domains,
names checked before any work with close matches, fusions in any order, names never turned into emoji."""
from __future__ import annotations

import json
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from skiller.names import catalog_names
from skiller.store import Store
from tests.conftest import REPO, cli, make_workspace

CHEAP = ["--set", "steps.s06.rows_per_table=20", "--set", "steps.s06.people=10"]


def events(root) -> list:
    return list(Store(root / "skiller.db").rows())


def run_started(root) -> list[dict]:
    return [json.loads(r.payload) for r in events(root) if r.type == "RunStarted"]


def test_advance_lowercase_domain_on_a_fresh_workspace_prints_its_name_not_an_emoji(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    assert cli("advance", "-w", str(root), "--domain", "hospital", "--to", "tools_listed", *CHEAP) == 0
    out = capsys.readouterr().out
    assert "domain:Hospital: tools_listed" in out and "\N{HOSPITAL}" not in out
    assert Store(root / "skiller.db").projection().machines["domain:Hospital"].state == "tools_listed"


def test_advance_brings_a_domain_outside_the_default_selection_into_a_fresh_workspace(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    default = tmp_path / "default"
    make_workspace(default)
    assert cli("run", "-w", str(default), "--set", "scheduler.stop_after=blueprinted") == 0
    chosen = {m.inputs["domain"] for m in Store(default / "skiller.db").projection().of_kind("domain")}
    outside = sorted(set(catalog_names()) - chosen)[0]  # so the test shows inclusion, not luck
    capsys.readouterr()

    assert cli("advance", "-w", str(root), "--domain", outside.lower(), "--to", "tools_listed", *CHEAP) == 0
    assert f"domain:{outside}: tools_listed" in capsys.readouterr().out
    proj = Store(root / "skiller.db").projection()
    assert proj.machines[f"domain:{outside}"].state == "tools_listed"
    assert len(proj.of_kind("domain")) == 10  # the rest of the selection still fills num_domains
    assert f'steps.s01.domains=["{outside}"]' in run_started(root)[-1]["overrides"]  # recorded with the run
    # once s01 has chosen, a domain it did not choose is refused with the reason, before any work
    before = len(events(root))
    left_out = sorted(set(catalog_names()) - {m.inputs["domain"] for m in proj.of_kind("domain")})[0]
    assert cli("advance", "-w", str(root), "--domain", left_out.lower()) == 2
    assert f"domain {left_out} is not in this workspace" in capsys.readouterr().err
    assert len(events(root)) == before


def test_an_unknown_domain_is_refused_before_any_work_with_close_matches(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    before = len(events(root))
    assert cli("advance", "-w", str(root), "--domain", "hospitl") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown domain 'hospitl'" in err and "Hospital" in err
    assert len(events(root)) == before  # no RunStarted, no world step


def test_config_names_the_domains_to_include_in_any_spelling(tmp_path):
    root = make_workspace(tmp_path / "ws", "\nsteps: {s01: {num_domains: 2, domains: [hospital, pharmacy]}}\n")
    assert cli("run", "-w", str(root), "--set", "scheduler.stop_after=blueprinted") == 0
    topics = json.loads(Store(root / "skiller.db").artifact(
        Store(root / "skiller.db").projection().machines["world"].artifacts["domains"]))["domains"]
    assert [d["name"] for d in topics] == ["Hospital", "Pharmacy"]  # both health: the user's choice wins
    assert run_started(root)[-1]["config"]["steps"]["s01"]["domains"] == ["Hospital", "Pharmacy"]


def test_named_domains_come_first_and_the_rest_spreads_over_other_sectors(tmp_path):
    root = make_workspace(tmp_path / "ws")
    args = ["--set", "steps.s01.num_domains=4", "--set", "steps.s01.min_sectors=4",
            "--set", "steps.s01.domains=[PetInsurance, VetClinic]", "--set", "scheduler.stop_after=blueprinted"]
    assert cli("run", "-w", str(root), *args) == 0
    store = Store(root / "skiller.db")
    topics = json.loads(store.artifact(store.projection().machines["world"].artifacts["domains"]))["domains"]
    assert [d["name"] for d in topics[:2]] == ["PetInsurance", "VetClinic"]
    assert len({d["sector"] for d in topics}) == 4


def test_an_unknown_domain_in_config_is_refused_before_any_work(tmp_path, capsys):
    root = make_workspace(tmp_path / "ws")
    before = len(events(root))
    assert cli("run", "-w", str(root), "--set", "steps.s01.domains=[Hospital, Pharmacie]") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'Pharmacie'" in err and "Pharmacy" in err
    assert len(events(root)) == before


def test_log_resolves_a_domain_and_refuses_an_unknown_one(finished, capsys):
    domain = sorted(m.inputs["domain"] for m in Store(finished / "skiller.db").projection().of_kind("domain"))[0]
    assert cli("log", "-w", str(finished), "--domain", domain.upper()) == 0
    assert f"domain:{domain}" in capsys.readouterr().out
    assert cli("log", "-w", str(finished), "--domain", domain[:-1] + "x") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown domain" in err and domain in err


def test_serve_fusion_accepts_members_in_any_order(finished):
    fusion = next(m for m in Store(finished / "skiller.db").projection().of_kind("fusion") if "environment" in m.artifacts)
    reversed_members = "+".join(m.lower() for m in reversed(fusion.inputs["members"]))
    tools = json.loads((finished / "outputs" / "tool_lists" / f"{fusion.inputs['name']}.json").read_text())
    params = StdioServerParameters(command=sys.executable, cwd=str(REPO),
                                   args=["-m", "skiller", "serve", "-w", str(finished), "--fusion", reversed_members])

    async def run() -> None:
        with anyio.fail_after(180):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                assert sorted(t.name for t in listed.tools) == sorted(t["function"]["name"] for t in tools)

    anyio.run(run)
