"""Cross-domain fusion on the builtin provider: combinations, interlocked trajectories, namespaced databases."""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from servers.environment import Environment, ModuleSource
from servers.fusion import FusionError, fuse_databases, namespace_of
from servers.task import EnvironmentBundle
from store import Store
from tests.conftest import cli, make_workspace
from tests.fixtures import library_db_bytes

FOUR = ["--set", "steps.s01.num_domains=4", "--set", "steps.s01.min_sectors=2", "--set", "steps.s06.rows_per_table=60",
        "--set", "steps.s06.people=40", "--set", "rollout.in_run=false"]


@pytest.fixture(scope="module")
def fused(tmp_path_factory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("fusion") / "ws")
    assert cli("run", "-w", str(root), *FOUR) == 0
    return root


def _fusions(root: Path):
    store = Store(root / "skiller.db")
    return store, store.projection(), sorted(store.projection().of_kind("fusion"), key=lambda m: m.stream)


def test_every_fusion_has_validated_tasks_that_hand_values_across(fused):
    store, proj, fusions = _fusions(fused)
    assert len(fusions) == 6  # every pair of four domains shares Person
    for f in fusions:
        assert f.state == "templated", (f.stream, f.state, f.payload)
        prefixes = {namespace_of(m): m for m in f.inputs["members"]}
        tasks = [m for m in proj.of_kind("task") if m.inputs["parent"] == f.stream and "task" in m.artifacts]
        assert tasks, f.stream
        for m in tasks:
            task = json.loads(store.artifact(m.artifacts["task"]))
            calls = task["evaluation_criteria"]["actions"]
            owners = [next(d for p, d in prefixes.items() if c["name"].startswith(p)) for c in calls]
            assert len(set(owners)) >= 2
            # a value produced by one member's call is an argument of a later call of another member
            produced = {(i, json.dumps(v)) for i, c in enumerate(calls) for v in _values(c["expected"])}
            assert any(json.dumps(v) in {p for i, p in produced if owners[i] != owners[j] and i < j}
                       for j, c in enumerate(calls) for v in c["arguments"].values())


def _values(output) -> list:
    rows = output if isinstance(output, list) else [output]
    return [v for row in rows if isinstance(row, dict) for k, v in row.items() if k.endswith("_id")]


def test_fused_databases_are_sound_and_namespaced(fused, tmp_path):
    store, proj, fusions = _fusions(fused)
    for f in fusions:
        path = tmp_path / f"{f.inputs['name']}.sqlite"
        path.write_bytes(store.artifact(f.artifacts["database"]))
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert len(tables) == len(set(tables))
        members = f.inputs["members"]
        assert all(t == "person" or any(t.startswith(namespace_of(m)) for m in members) for t in tables)
        ids = [r[0] for r in conn.execute("SELECT person_id FROM person")]
        assert len(ids) == len(set(ids)) == 40  # the shared people, once


def test_member_tools_answer_the_same_on_the_fused_database(fused):
    store, proj, fusions = _fusions(fused)
    f = fusions[0]
    bundle = EnvironmentBundle.model_validate_json(store.artifact(f.artifacts["environment"]))
    with Environment.start(list(bundle.modules),
                           store.artifact(f.artifacts["database"])) as env_fused:
        for module in bundle.modules:
            own = proj.machines[f"domain:{module.server}"]
            tools = json.loads(store.artifact(own.artifacts["tool_list"]))["tools"]
            with Environment.start([ModuleSource(server=module.server, code=module.code)],
                                   store.artifact(own.artifacts["database"])) as env_own:
                reads = [t for t in tools if list(t["parameters"]["required"]) == ["person_id"]]
                assert reads
                for tool in reads:
                    for person in ("P-0001", "P-0007", "P-0023"):
                        a = env_own.call(tool["name"], {"person_id": person})
                        b = env_fused.call(module.prefix + tool["name"], {"person_id": person})
                        assert (a.ok, a.value, a.error) == (b.ok, b.value, b.error)


def test_replay_verify_reexecutes_fused_golden_trajectories(fused, capsys):
    assert cli("replay", "--verify", "-w", str(fused)) == 0
    assert "no drift" in capsys.readouterr().out


def test_exports_have_combinations_fused_databases_and_merged_policies(fused):
    assert cli("export", "-w", str(fused)) == 0
    out = fused / "outputs"
    combos = json.loads((out / "cross_domain_templates/_combinations.json").read_text())
    for combo in combos["selected"]:
        name = combo["name"]
        assert "_" in name and (out / f"cross_domain_templates/{name}.json").is_file()
        policy = (out / f"policies/{name}.md").read_text()
        assert "<!-- BRIDGE" in policy and "<!-- POLICY_END -->" in policy
        assert list((out / "database/outputs/relationships" / name).glob("*.json"))
        assert (out / f"queries/{name}.jsonl").is_file()


def test_infeasible_combinations_are_pruned_without_llm_calls(fused):
    """Mark one domain's tasks rejected: every combination with it is pruned and only the rest are ranked."""
    import asyncio
    import random

    from skiller.config import load_config
    from skiller.llm.builtin import BuiltinProvider
    from skiller.llm.client import LLMClient, StepLLM
    from skiller.llm.scripted import ScriptedProvider
    from steps import MachineIndex, MachineSummary, StepContext
    from steps.s04_blueprints import Blueprint
    from steps.s10_combinations import S10Input, run
    from steps.s14_task_templates import TaskTemplates

    store, proj, _ = _fusions(fused)
    domains = sorted(m.inputs["domain"] for m in proj.of_kind("domain"))
    dropped = domains[0]
    machines = {s: MachineSummary(kind=m.kind, inputs=m.inputs, payload=m.payload,
                                  state="rejected" if m.kind == "task" and m.inputs.get("domain") == dropped else m.state)
                for s, m in proj.machines.items()}
    inputs = S10Input(
        machines=MachineIndex(machines=machines),
        members_blueprint={d: Blueprint.model_validate_json(store.artifact(proj.machines[f"domain:{d}"].artifacts["blueprint"])) for d in domains},
        members_task_templates={d: TaskTemplates.model_validate_json(store.artifact(proj.machines[f"domain:{d}"].artifacts["task_templates"])) for d in domains})
    provider = ScriptedProvider(fallback=BuiltinProvider())
    record: list = []
    ctx = StepContext(stream="world", config=load_config(None), llm=StepLLM(LLMClient(provider, store), "world", record),
                      rng=random.Random(0), clock=load_config(None).clock, sandbox=None, record=record)
    out = asyncio.run(run(inputs, ctx))
    pruned = {p.name: p.reason for p in out.combinations.pruned}
    assert set(pruned) == {c for c in ("_".join(sorted([dropped, d])) for d in domains[1:])} and len(pruned) == 3
    assert all(dropped in reason for reason in pruned.values())
    fitted = [r.context["combination"]["name"] for r in provider.calls if r.purpose == "s10.fit"]
    assert sorted(fitted) == sorted(c.name for c in out.combinations.selected) and len(fitted) == 3
    assert not any(dropped in name for name in fitted)


def test_fusing_disagreeing_people_is_refused():
    a = library_db_bytes()
    conn_path = Path(__file__).with_name("_tmp_people.sqlite")
    conn_path.write_bytes(a)
    conn = sqlite3.connect(conn_path)
    conn.execute("UPDATE person SET last_name = 'Other' WHERE person_id = 'P-001'")
    conn.commit()
    conn.close()
    b = conn_path.read_bytes()
    conn_path.unlink()
    with pytest.raises(FusionError, match="different person rows"):
        fuse_databases([("a_", a), ("b_", b)])
    assert re.match(r"^[a-z_]+_$", namespace_of("HealthInsurance")) and namespace_of("HealthInsurance") == "health_insurance_"


def test_a_builtin_run_fuses_at_least_twenty_combinations(tmp_path):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), "--set", "steps.s01.num_domains=7", "--set", "steps.s01.min_sectors=3",
               "--set", "steps.s06.rows_per_table=40", "--set", "steps.s06.people=30",
               "--set", "steps.s14.templates_per_domain=10", "--set", "rollout.in_run=false") == 0
    store, proj, fusions = _fusions(root)
    with_tasks = {f.stream for f in fusions for t in proj.of_kind("task")
                  if t.inputs["parent"] == f.stream and t.state == "instantiated"}
    assert len(fusions) >= 20 and len(with_tasks) >= 20
