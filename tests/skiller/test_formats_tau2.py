"""`skiller export --format tau2`: complete, deterministic τ²-bench domain packages whose tools reach the gold state."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from skiller.servers.database import state_hash
from skiller.servers.task import EnvironmentBundle, Task
from skiller.formats.tau2 import package_name
from skiller.servers.sandbox import Sandbox, SandboxLimits
from skiller.workspace import Workspace
from tests.conftest import cli

DRIVER = Path(__file__).with_name("tau2_driver.py")
TAU2_BASIS = {"DB", "ENV_ASSERTION", "NL_ASSERTION", "ACTION", "COMMUNICATE"}
PACKAGE_FILES = {"__init__.py", "data_model.py", "tools.py", "environment.py", "utils.py", "db.json", "policy.md",
                 "tasks.json", "split_tasks.json", "README.md", "_tau2_compat.py", "_skiller_runtime.py",
                 "skiller_worker.py"}


def _export(root: Path, out: Path) -> dict[str, bytes]:
    assert cli("export", "-w", str(root), "--format", "tau2", "--out", str(out)) == 0
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _store_view(root: Path) -> tuple[dict[str, list[Task]], dict[str, dict[str, tuple[str, dict]]]]:
    """From the workspace itself: validated tasks per environment, and each environment's tools (mode, schema)."""
    ws = Workspace.open(root)
    try:
        proj = ws.store.projection()
        tasks: dict[str, list[Task]] = {}
        for m in proj.of_kind("task"):
            if "task" in m.artifacts and m.state != "rejected":
                task = Task.model_validate(ws.store.artifact_json(m.artifacts["task"]))
                tasks.setdefault(task.environment, []).append(task)
        tools: dict[str, dict[str, tuple[str, dict]]] = {}
        for m in proj.machines.values():
            if "environment" in m.artifacts and "database" in m.artifacts:
                bundle = EnvironmentBundle.model_validate_json(ws.store.artifact(m.artifacts["environment"]))
                table = tools.setdefault(bundle.name, {})
                for module in bundle.modules:
                    listed = ws.store.artifact_json(proj.machines[f"domain:{module.server}"].artifacts["tool_list"])
                    for t in listed["tools"]:
                        table[module.prefix + t["name"]] = (listed["modes"][t["name"]], t["parameters"])
        return tasks, tools
    finally:
        ws.close()


@pytest.fixture(scope="module")
def exported(small_run, tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path_factory.mktemp("tau2") / "export"
    return out, _export(small_run, out)


def test_every_environment_and_every_validated_task_is_exported_in_tau2_layout(small_run, exported):
    out, files = exported
    tasks, tools = _store_view(small_run)
    packages = {package_name(env): env for env in tools}
    assert any("__" in p for p in packages) and len(packages) == 3  # two domains and their fusion
    assert {rel.split("/")[0] for rel in files if "/" in rel} == set(packages)
    assert {"README.md", "run_tau2.py"} <= set(files)
    queries = {p.stem: [json.loads(line)["id"] for line in p.read_text().splitlines()]
               for p in (small_run / "outputs" / "queries").glob("*.jsonl")}
    for package, env in packages.items():
        present = {rel.split("/", 1)[1] for rel in files if rel.startswith(package + "/")}
        assert PACKAGE_FILES <= present, (package, PACKAGE_FILES - present)
        exported_tasks = json.loads(files[f"{package}/tasks.json"])
        ids = [t["id"] for t in exported_tasks]
        assert sorted(ids) == sorted(queries[env]) == sorted(t.id for t in tasks[env])
        assert json.loads(files[f"{package}/split_tasks.json"]) == {"base": ids}
        for t in exported_tasks:
            instructions = t["user_scenario"]["instructions"]
            assert set(instructions) == {"domain", "reason_for_call", "known_info", "unknown_info", "task_instructions"}
            assert isinstance(t["user_scenario"]["persona"], str) and t["user_scenario"]["persona"]
            criteria = t["evaluation_criteria"]
            assert criteria["reward_basis"] and set(criteria["reward_basis"]) <= TAU2_BASIS
            assert criteria["actions"] and all(set(a) == {"action_id", "requestor", "name", "arguments", "compare_args"}
                                               for a in criteria["actions"])
            assert {a["name"] for a in criteria["actions"]} <= set(tools[env])
        db = json.loads(files[f"{package}/db.json"])
        assert "person" in db and all(isinstance(rows, dict) and rows for rows in db.values())
        assert files[f"{package}/policy.md"].decode().strip()


def _sandbox_run(out: Path, package: str, tasks: list[Task], bad_call: str) -> tuple[dict, dict[str, bytes]]:
    files = {str(p.relative_to(out)): p.read_bytes() for p in (out / package).rglob("*") if p.is_file()}
    spec = {"domain": package, "bad_call": bad_call,
            "tasks": [{"id": t.id, "actions": [{"name": a.name, "arguments": a.arguments} for a in t.golden_actions]}
                      for t in tasks]}
    collect = ["results.json", "initial.sqlite"] + [f"final_{t.id}.sqlite" for t in tasks]
    result = Sandbox(SandboxLimits(cpu_seconds=300, wall_seconds=600)).run_python(
        {**files, "driver.py": DRIVER.read_bytes(), "spec.json": json.dumps(spec)}, "driver.py", collect=collect)
    assert result.ok, f"{package}: {result.killed or ''} {result.stderr[-3000:]}"
    assert set(result.outputs) == set(collect), set(collect) - set(result.outputs)
    return json.loads(result.outputs["results.json"]), result.outputs


def _hash(content: bytes, tmp_path: Path) -> str:
    path = tmp_path / "state.sqlite"
    path.write_bytes(content)
    return state_hash(path)


def test_golden_actions_through_the_exported_tools_reach_the_gold_state(small_run, exported, tmp_path):
    out, _ = exported
    tasks, tools = _store_view(small_run)
    checked = 0
    for env, env_tools in sorted(tools.items()):
        package = package_name(env)
        bad_call = sorted(n for n, (mode, schema) in env_tools.items() if mode == "write" and schema.get("required"))[0]
        results, outputs = _sandbox_run(out, package, tasks[env], bad_call)
        assert results["tau2_importable"] is False  # the package ran on its stand-ins
        assert results["registered"] == package
        # one method per tool, tagged as the tool list says, with the tool's parameters
        assert set(results["signatures"]) == set(env_tools)
        for name, (mode, schema) in env_tools.items():
            sig = results["signatures"][name]
            assert (sig["type"], sig["mutates"]) == (("write", True) if mode == "write" else ("read", False)), name
            assert {p[0] for p in sig["params"]} == set(schema["properties"]), name
            assert {p[0] for p in sig["params"] if p[2]} == set(schema.get("required") or []), name
            assert "Args:" in sig["doc"] or not schema["properties"]
        initial = _hash(outputs["initial.sqlite"], tmp_path)
        for task in tasks[env]:
            got = results["tasks"][task.id]
            assert initial == task.initial_state_hash, (env, task.id)
            assert _hash(outputs[f"final_{task.id}.sqlite"], tmp_path) == task.gold_state_hash, (env, task.id)
            assert all(o["ok"] for o in got["outputs"]), (task.id, got["outputs"])
            assert [json.loads(o["text"]) for o in got["outputs"]] == [a.expected for a in task.golden_actions]
            # replayed on a fresh environment: the same text for every call and the same τ²-bench DB hash
            assert got["replayed"] == got["outputs"] and got["replayed_hash"] == got["hash"]
            if task.kind == "write":  # τ²-bench's own DB hash sees the writes
                assert got["hash"] != got["initial_hash"], task.id
            checked += 1
        assert results["bad_call"].startswith("ToolCallError: invalid arguments"), results["bad_call"]
        assert results["bad_call_changed_state"] is False
        assert results["other_thread"] == results["tasks"][tasks[env][0].id]["outputs"][0]["text"]
    assert checked == sum(len(v) for v in tasks.values()) > 0


def test_tau2_export_is_byte_identical_across_exports_and_reruns(small_run, small_rerun, exported, tmp_path):
    _, first = exported
    assert _export(small_run, tmp_path / "again") == first
    assert _export(small_rerun, tmp_path / "rerun") == first
