"""τ²-bench export: every environment (single and fused) as a τ²-bench domain package, rebuilt from the log.

A package holds `db.json` and its pydantic model, a toolkit with one READ/WRITE-tagged method per
tool, `policy.md`, `tasks.json`, `split_tasks.json`, the Skiller implementation modules the tools run
on, and how to register it. It imports without τ²-bench (stand-ins) and uses τ²-bench's own classes
when τ²-bench is installed.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from skiller.contract.environment import ToolSpec, table_name
from skiller.events import MachineView, Projection
from skiller.formats.common import ExportError, pascal, py_literal, write_files
from skiller.formats.tau2_model import data_model_module, db_json, read_database
from skiller.formats.tau2_readme import domain_readme, index_readme, launcher
from skiller.formats.tau2_tools import tools_module
from skiller.servers.environment import WORKER_SOURCE
from skiller.servers.task import EnvironmentBundle, Task
from skiller.store import Store

__all__ = ["export_tau2", "package_files", "package_name", "render_tau2", "tau2_task"]


def package_name(environment: str) -> str:
    """`BuildingPermits` -> `building_permits`; a fusion's members are joined by a double underscore."""
    return "__".join(table_name(member) for member in environment.split("_"))


def _template(name: str) -> bytes:
    return resources.files("skiller.formats").joinpath(name).read_bytes()


def _environments(proj: Projection) -> list[MachineView]:
    """Every domain and fusion with a tested environment and its database, in name order."""
    ready = [m for m in proj.machines.values() if m.kind in ("domain", "fusion")
             and "environment" in m.artifacts and "database" in m.artifacts]
    return sorted(ready, key=lambda m: m.stream)


def _tools(store: Store, proj: Projection, bundle: EnvironmentBundle) -> list[ToolSpec]:
    """The environment's tools as declared by its members' tool lists (prefixed in fusions)."""
    tools = []
    for module in bundle.modules:
        member = proj.machines.get(f"domain:{module.server}")
        if member is None or "tool_list" not in member.artifacts:
            raise ExportError(f"{bundle.name}: no tool list for member {module.server}")
        listed = store.artifact_json(member.artifacts["tool_list"])
        for t in listed["tools"]:
            tools.append(ToolSpec(name=module.prefix + t["name"], description=t["description"],
                                  mode=listed["modes"][t["name"]], parameters=t["parameters"]))
    return tools


def _tasks(store: Store, proj: Projection) -> dict[str, list[Task]]:
    """Instantiated, not rejected tasks by environment, in stream order."""
    out: dict[str, list[Task]] = {}
    for m in sorted(proj.of_kind("task"), key=lambda m: m.stream):
        if "task" in m.artifacts and m.state != "rejected":
            task = Task.model_validate(store.artifact_json(m.artifacts["task"]))
            out.setdefault(task.environment, []).append(task)
    return out


def _persona(task: Task) -> str:
    p = task.user_scenario.persona
    return (f"{p.name}: a {p.style} person with {p.patience} patience who writes {p.verbosity} messages "
            f"in a {p.language_register} register (language: {p.language}).")


def tau2_task(task: Task, domain: str) -> dict[str, Any]:
    """A Skiller task in τ²-bench's task schema; what τ²-bench has no field for goes under `annotations`."""
    criteria = task.evaluation_criteria
    # τ²-bench has no OUTPUT component; its DB and ACTION checks cover what OUTPUT adds.
    basis = [b for b in criteria.reward_basis if b != "OUTPUT"] or ["ACTION"]
    instructions = task.user_scenario.instructions
    return {
        "id": task.id,
        "description": {"purpose": task.description,
                        "relevant_policies": f"rule {task.violated_rule}" if task.violated_rule else None,
                        "notes": f"Skiller {task.kind} task in {task.environment}"},
        "user_scenario": {"persona": _persona(task), "instructions": {
            "domain": instructions.domain, "reason_for_call": instructions.reason_for_call,
            "known_info": instructions.known_info, "unknown_info": instructions.unknown_info,
            # τ²-bench's user simulator writes its own opening; give it the one Skiller's user would send.
            "task_instructions": f"{instructions.task_instructions}\n\nOpen the conversation with this "
                                 f"request (in your own words if you like): {task.first_query}"}},
        "initial_state": None,
        "evaluation_criteria": {
            "actions": [{"action_id": a.action_id, "requestor": a.requestor, "name": a.name,
                         "arguments": a.arguments, "compare_args": a.compare_args} for a in criteria.actions],
            "env_assertions": None,
            "communicate_info": list(criteria.communicate_info),
            "nl_assertions": list(criteria.nl_assertions),
            "reward_basis": basis,
        },
        "annotations": {"skiller": {
            "domain": domain, "environment": task.environment, "domains": task.domains, "kind": task.kind,
            "first_query": task.first_query, "facts": task.user_scenario.facts,
            "reward_basis": list(criteria.reward_basis),
            "initial_state_hash": task.initial_state_hash, "gold_state_hash": task.gold_state_hash,
            "actions": [{"action_id": a.action_id, "mode": a.mode, "expected": a.expected} for a in criteria.actions],
        }},
    }


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def package_files(bundle: EnvironmentBundle, tools: list[ToolSpec], database_file: bytes,
                  tasks: list[Task]) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    """One environment's package: (package name, files by path inside it, facts for the index)."""
    name, domain = bundle.name, package_name(bundle.name)
    if not domain.isidentifier():
        raise ExportError(f"{name}: package name {domain!r} is not a Python identifier")
    database = read_database(database_file)
    db_class, toolkit_class = f"{pascal(domain)}DB", f"{pascal(domain)}Tools"
    modules = [{"file": f"impl_{table_name(mod.server)}.py", "namespace": mod.namespace, "prefix": mod.prefix}
               for mod in bundle.modules]
    files: dict[str, bytes] = {
        "__init__.py": (f'"""{name} as a τ²-bench domain, exported by Skiller (see README.md)."""\n'
                        "from .environment import DOMAIN, get_environment, get_tasks, get_tasks_split, load_tasks, register\n\n"
                        '__all__ = ["DOMAIN", "get_environment", "get_tasks", "get_tasks_split", "load_tasks", "register"]\n'
                        ).encode(),
        "utils.py": (f'"""Where the {name} domain\'s data files are: beside this module."""\n'
                     "from pathlib import Path\n\nDATA_DIR = Path(__file__).resolve().parent\n"
                     'DB_PATH = DATA_DIR / "db.json"\nPOLICY_PATH = DATA_DIR / "policy.md"\n'
                     'TASKS_PATH = DATA_DIR / "tasks.json"\nSPLIT_PATH = DATA_DIR / "split_tasks.json"\n').encode(),
        "data_model.py": data_model_module(name, db_class, database).encode(),
        "tools.py": tools_module(name, toolkit_class, db_class, modules, tools).encode(),
        "environment.py": _environment_module(name, domain, db_class, toolkit_class).encode(),
        "_skiller_runtime.py": _template("tau2_runtime.py.tmpl"),
        "_tau2_compat.py": _template("tau2_compat.py.tmpl"),
        "skiller_worker.py": WORKER_SOURCE.read_bytes(),
        "db.json": db_json(database),
        "policy.md": bundle.policy.encode(),
        "tasks.json": _json([tau2_task(t, domain) for t in tasks]),
        "split_tasks.json": _json({"base": [t.id for t in tasks]}),
    }
    for entry, mod in zip(modules, bundle.modules):
        files[entry["file"]] = mod.code.encode()
    facts = {"environment": name, "domain": domain, "members": bundle.domains, "tools": len(tools),
             "write_tools": sum(t.mode == "write" for t in tools), "tables": len(database.tables),
             "rows": sum(len(t.rows) for t in database.tables), "tasks": len(tasks),
             "toolkit": toolkit_class, "db_class": db_class}
    files["README.md"] = domain_readme(facts).encode()
    return domain, files, facts


def _environment_module(name: str, domain: str, db_class: str, toolkit_class: str) -> str:
    return f'''"""The {name} domain's τ²-bench entry points: environment, tasks, splits, registration.

The data model and the tools import without τ²-bench; these functions import it when called.
"""
import json
from typing import Any, Optional

from .data_model import {db_class}
from .tools import {toolkit_class}
from .utils import DB_PATH, POLICY_PATH, SPLIT_PATH, TASKS_PATH

DOMAIN = {py_literal(domain)}


def get_environment(db: Optional[{db_class}] = None, solo_mode: bool = False) -> Any:
    """A τ²-bench Environment over the database (a fresh copy of db.json unless one is given)."""
    from tau2.environment.environment import Environment

    if solo_mode:
        raise ValueError(f"{{DOMAIN}} has no user tools, so it does not support solo mode")
    tools = {toolkit_class}(db if db is not None else {db_class}.load(DB_PATH))
    return Environment(domain_name=DOMAIN, policy=POLICY_PATH.read_text(encoding="utf-8"), tools=tools)


def load_tasks() -> list:
    """The tasks as plain dicts (τ²-bench's task schema)."""
    return json.loads(TASKS_PATH.read_text(encoding="utf-8"))


def get_tasks_split() -> dict:
    return json.loads(SPLIT_PATH.read_text(encoding="utf-8"))


def get_tasks(task_split_name: Optional[str] = "base") -> list:
    """τ²-bench Task objects of a split (all of them when the split is None)."""
    from tau2.data_model.tasks import Task

    tasks = load_tasks()
    if task_split_name is not None:
        splits = get_tasks_split()
        if task_split_name not in splits:
            raise ValueError(f"unknown task split {{task_split_name!r}} (known: {{', '.join(splits)}})")
        wanted = set(splits[task_split_name])
        tasks = [t for t in tasks if t["id"] in wanted]
    return [Task.model_validate(t) for t in tasks]


def register(registry: Any = None) -> None:
    """Make the domain known to τ²-bench (`tau2 run --domain {domain}` in the same process)."""
    if registry is None:
        from tau2.registry import registry
    registry.register_domain(get_environment, DOMAIN)
    registry.register_tasks(get_tasks, DOMAIN, get_task_splits=get_tasks_split)
'''


def _package(store: Store, proj: Projection, m: MachineView,
             by_env: dict[str, list[Task]]) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    bundle = EnvironmentBundle.model_validate_json(store.artifact(m.artifacts["environment"]))
    return package_files(bundle, _tools(store, proj, bundle), store.artifact(m.artifacts["database"]),
                         by_env.get(bundle.name, []))


def render_tau2(store: Store) -> dict[str, bytes]:
    """Every file of the export by relative path (nothing written yet)."""
    proj = store.projection()
    tasks = _tasks(store, proj)
    files: dict[str, bytes] = {}
    index: list[dict] = []
    for m in _environments(proj):
        bundle_name = m.inputs.get("name") or m.inputs["domain"]
        try:
            domain, package, facts = _package(store, proj, m, tasks)
        except ExportError as exc:
            raise ExportError(f"{bundle_name}: {exc}") from None
        if any(f["domain"] == domain for f in index):
            raise ExportError(f"{bundle_name}: package name {domain} is already taken")
        files.update({f"{domain}/{rel}": content for rel, content in package.items()})
        index.append(facts)
    if not index:
        raise ExportError("no environment is ready to export yet (run first)")
    files["README.md"] = index_readme(index).encode()
    files["run_tau2.py"] = launcher([f["domain"] for f in index]).encode()
    return files


def export_tau2(store: Store, out: Path) -> list[Path]:
    """Write the τ²-bench export into `out` (every file rendered first, then written atomically)."""
    return write_files(render_tau2(store), out)
