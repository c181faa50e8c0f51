"""Projection to files: writes `outputs/` in the reference layout, rebuilt from the log alone."""
from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import repeat
from pathlib import Path
from typing import Any, Callable, Iterator

from skiller.contract.environment import table_name
from skiller.events import Projection
from skiller.rollout import rollout_line, to_sft
from skiller.servers.database import dump_json
from skiller.servers.fusion import namespace_of
from skiller.servers.query import snapshot
from skiller.servers.standalone import fused_server, standalone_server
from skiller.servers.task import EnvironmentBundle, content_id
from skiller.steps.s03_entity_graph import EntityGraph
from skiller.steps.s08_tool_graph import ToolGraph
from skiller.steps.s18_rollout import Transcripts
from skiller.steps.s19_evaluation import Evaluations
from skiller.store import Store

Files = Iterator[tuple[str, bytes]]
WRITERS: list[Callable[[Store, Projection], Files]] = []


def writer(fn: Callable[[Store, Projection], Files]) -> Callable[[Store, Projection], Files]:
    WRITERS.append(fn)
    return fn


def as_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def _world(store: Store, proj: Projection, name: str) -> Any | None:
    world = proj.machines.get("world")
    if world is None or name not in world.artifacts:
        return None
    return store.artifact_json(world.artifacts[name])


def domains(proj: Projection, with_artifact: str) -> list:
    """Domain machines holding an artifact, in name order."""
    return sorted((m for m in proj.of_kind("domain") if with_artifact in m.artifacts), key=lambda m: m.stream)


@writer
def world_files(store: Store, proj: Projection) -> Files:
    topics = _world(store, proj, "domains")
    if topics is not None:
        yield "domain_topics.json", as_json(topics)
    entities = _world(store, proj, "entities")
    if entities is not None:
        yield "entities.json", as_json(entities)
    graph = _world(store, proj, "graph")
    if graph is not None:
        yield "entity_graph.json", as_json(EntityGraph.model_validate(graph).node_link())
    listed = domains(proj, "tool_list")
    if listed:
        yield "blueprints.json", as_json([store.artifact_json(m.artifacts["blueprint"]) for m in listed])
    elif _world(store, proj, "blueprints") is not None:
        yield "blueprints.json", as_json(_world(store, proj, "blueprints")["blueprints"])
    for m in listed:
        tool_list = store.artifact_json(m.artifacts["tool_list"])
        yield f"tool_lists/{tool_list['server']}.json", as_json([function_tool(t) for t in tool_list["tools"]])


def function_tool(tool: dict, prefix: str = "") -> dict:
    """The standard function-calling format chat APIs and SFT trainers read: {"type", "function": {...}}."""
    return {"type": "function", "function": {"name": prefix + tool["name"], "description": tool["description"],
                                             "parameters": tool["parameters"]}}


def _writers(sft: bool) -> list[Callable[[Store, Projection], Files]]:
    return [*WRITERS, sft_files] if sft else list(WRITERS)


class ExportError(Exception):
    """Outputs cannot be written where asked, as one line."""


def export(store: Store, out: Path, sft: bool = False, workers: int = 1) -> list[Path]:
    """Write every file atomically (temp file + rename), so a crash never leaves half a file.

    With `workers` > 1 the writers run in that many spawned processes, each reading the log on its own
    (a large workspace spends most of its export encoding JSON, on one core otherwise); every file and its
    bytes are the same either way.
    """
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file, not a folder; give --out a folder (it is created if missing)")
    writers = _writers(sft)
    if workers <= 1 or not store.path.is_file():
        proj = store.projection()
        return sorted(path for write in writers for path in _write(write(store, proj), out))
    # The largest writers first, so the pool ends together (rollouts alone are half the bytes of a volume run).
    names = sorted((w.__name__ for w in writers), key=lambda n: _COST_ORDER.index(n) if n in _COST_ORDER else len(_COST_ORDER))
    context = multiprocessing.get_context("spawn")  # never fork: the caller holds SQLite connections and threads
    try:
        with ProcessPoolExecutor(min(workers, len(names)), mp_context=context) as pool:
            parts = list(pool.map(_write_part, repeat(str(store.path)), names, repeat(str(out))))
    except BrokenProcessPool as exc:  # killed (out of memory, a signal): the files already renamed are whole
        raise ExportError(f"a worker process writing {out} died ({exc}); export again") from exc
    return sorted(Path(p) for part in parts for p in part)


_COST_ORDER = ["rollout_files", "sft_files", "fusion_files", "task_files", "environment_files", "world_files"]


def _write_part(db: str, name: str, out: str) -> list[str]:
    """One writer's files, written by a worker process that reads the log beside the live writer."""
    store = Store(Path(db), readonly="shared")
    try:
        write = next(w for w in _writers(True) if w.__name__ == name)
        return [str(p) for p in _write(write(store, store.projection()), Path(out))]
    finally:
        store.close()


def _write(files: Files, out: Path) -> list[Path]:
    written: list[Path] = []
    try:
        for rel, content in files:
            path = out / rel
            tmp = path.with_name(path.name + ".tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(content)
                os.replace(tmp, path)
            except OSError as exc:
                with contextlib.suppress(OSError):  # never leave a partial file behind; earlier files are complete
                    tmp.unlink(missing_ok=True)
                raise _write_error(exc, str(path), len(written)) from exc
            written.append(path)
    except OSError as exc:  # database snapshots go through temporary files
        raise _write_error(exc, "temporary files", len(written)) from exc
    return written


def _write_error(exc: OSError, where: str, done: int) -> ExportError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return ExportError(f"no space left on the device writing {where} ({exc.strerror}); {done} files were "
                           f"written whole, free some space and export again")
    return ExportError(f"cannot write {where}: {exc.strerror or exc}")


def _pascal(table: str) -> str:
    return "".join(part.capitalize() for part in table.split("_"))


@writer
def environment_files(store: Store, proj: Projection) -> Files:
    """Databases as JSON views, summaries, policies, tool graphs and runnable MCP servers."""
    people_written = False
    for m in domains(proj, "database"):
        server = m.inputs["domain"]
        blueprint = store.artifact_json(m.artifacts["blueprint"])
        relationships = {table_name(r["name"]) for r in blueprint["relationships"]}
        with snapshot(store.artifact(m.artifacts["database"])) as path:
            tables = dump_json(path)
        for table, rows in sorted(tables.items()):
            if table == "person":
                if not people_written:
                    people_written = True
                    yield "database/outputs/entities/Person.json", as_json(rows)
            elif table in relationships:
                yield f"database/outputs/relationships/{server}/{_pascal(table)}.json", as_json(rows)
            else:
                yield f"database/outputs/entities/{server}/{_pascal(table)}.json", as_json(rows)
        yield f"database_summary/{server}.json", as_json(store.artifact_json(m.artifacts["database_summary"]))
    for m in domains(proj, "policy"):
        yield f"policies/{m.inputs['domain']}.md", store.artifact_json(m.artifacts["policy"])["markdown"].encode()
    for m in domains(proj, "tool_graph"):
        graph = ToolGraph.model_validate(store.artifact_json(m.artifacts["tool_graph"]))
        yield f"tool_graphs/{m.inputs['domain']}.json", as_json(graph.node_link())
    for m in sorted(proj.of_kind("domain"), key=lambda m: m.stream):
        if m.state in ("implemented", "templated") and "implementation" in m.artifacts:
            module = store.artifact_json(m.artifacts["implementation"])["module"]
            yield f"mcp_servers/{m.inputs['domain']}.py", standalone_server(module).encode()
            # the server's own database beside it: `python X.py` serves X.sqlite by default
            yield f"mcp_servers/{m.inputs['domain']}.sqlite", store.artifact(m.artifacts["database"])


@writer
def fusion_files(store: Store, proj: Projection) -> Files:
    """Combinations, fused trajectories, fused databases (namespaced tables) and merged policies."""
    combos = _world(store, proj, "combinations")
    if combos is not None:
        yield "cross_domain_templates/_combinations.json", as_json(combos)
    for m in sorted(proj.of_kind("fusion"), key=lambda m: m.stream):
        name = m.inputs["name"]
        if "fused_templates" in m.artifacts:
            yield f"cross_domain_templates/{name}.json", as_json(store.artifact_json(m.artifacts["fused_templates"]))
        if "database" in m.artifacts:
            with snapshot(store.artifact(m.artifacts["database"])) as path:
                tables = dump_json(path)
            relationships = {f"{_namespace(member)}{table_name(r['name'])}" for member in m.inputs["members"]
                             for r in _member_relationships(store, proj, member)}
            for table, rows in sorted(tables.items()):
                kind = "relationships" if table in relationships else "entities"
                yield f"database/outputs/{kind}/{name}/{table}.json", as_json(rows)
        if "policy" in m.artifacts:
            yield f"policies/{name}.md", store.artifact_json(m.artifacts["policy"])["markdown"].encode()
        if "environment" in m.artifacts and "database" in m.artifacts:
            yield from _fused_server(store, proj, name, m.artifacts)


def _fused_server(store: Store, proj: Projection, name: str, artifacts: dict[str, str]) -> Files:
    """A fusion's runnable server, its fused database beside it, and its tool list (prefixed names)."""
    bundle = EnvironmentBundle.model_validate_json(store.artifact(artifacts["environment"]))
    yield f"mcp_servers/{name}.py", fused_server(name, list(bundle.modules)).encode()
    yield f"mcp_servers/{name}.sqlite", store.artifact(artifacts["database"])
    tools = []
    for module in bundle.modules:
        member = proj.machines[f"domain:{module.server}"]
        tools += [function_tool(t, module.prefix) for t in store.artifact_json(member.artifacts["tool_list"])["tools"]]
    yield f"tool_lists/{name}.json", as_json(tools)


def _namespace(server: str) -> str:
    return namespace_of(server)


def _member_relationships(store: Store, proj: Projection, member: str) -> list[dict]:
    return store.artifact_json(proj.machines[f"domain:{member}"].artifacts["blueprint"])["relationships"]


@writer
def task_files(store: Store, proj: Projection) -> Files:
    """Task templates per server, validated tasks and queries (one task per line)."""
    holders = [m for m in proj.machines.values() if "task_templates" in m.artifacts]
    for m in sorted(holders, key=lambda m: m.stream):
        templates = store.artifact_json(m.artifacts["task_templates"])
        yield f"task_templates/{templates['server']}.json", as_json(
            {"templates": [{**t["template"], "template_id": t["template_id"], "scores": t["scores"]}
                           for t in templates["templates"]], "stats": templates["stats"]})
    queries: dict[str, list[str]] = {}
    validated: dict[str, list] = {}
    for m in sorted(proj.of_kind("task"), key=lambda m: m.stream):
        env = m.inputs["domain"]
        if "validated" in m.artifacts and m.state != "rejected":
            validated.setdefault(env, []).append({"stream": m.stream, **store.artifact_json(m.artifacts["validated"])})
        if "task" in m.artifacts:
            task = store.artifact_json(m.artifacts["task"])
            queries.setdefault(env, []).append(json.dumps(query_line(task), ensure_ascii=False, sort_keys=True))
    for env, items in sorted(validated.items()):
        yield f"validated_tasks/{env}.json", as_json(items)
    for env, lines in sorted(queries.items()):
        yield f"queries/{env}.jsonl", ("\n".join(lines) + "\n").encode()


def query_line(task: dict) -> dict:
    """The reference's query line, plus our persona and evaluation criteria."""
    scenario = task["user_scenario"]
    instr = scenario["instructions"]
    trajectory = [{"name": a["name"], "arguments": a["arguments"]} for a in task["evaluation_criteria"]["actions"]]
    user_prompt = (f"{instr['task_instructions']}\nReason for call: {instr['reason_for_call']}\n"
                   f"Known info: {instr['known_info']}\nUnknown info: {instr['unknown_info']}")
    return {
        "id": task["id"], "messages": [{"role": "user", "content": task["first_query"]}],
        "user_system_prompt": user_prompt,
        "task_info": {"trajectory": trajectory, "instruction": task["description"],
                      "reason_for_call": instr["reason_for_call"], "known_info": instr["known_info"],
                      "unknown_info": instr["unknown_info"], "domains": task["domains"],
                      "trajectory_hash": content_id([task["environment"], trajectory]),
                      "kind": task["kind"], "violated_rule": task["violated_rule"]},
        "persona": scenario["persona"], "evaluation_criteria": task["evaluation_criteria"],
        "gold_state_hash": task["gold_state_hash"],
    }


def _jsonl(items: list[dict]) -> bytes:
    return "".join(json.dumps(i, ensure_ascii=False, sort_keys=True) + "\n" for i in items).encode()


def current_transcripts(store: Store, proj: Projection) -> dict[str, list]:
    """Each task's transcripts of its latest campaign, by environment."""
    out: dict[str, list] = {}
    for m in sorted(proj.of_kind("task"), key=lambda m: m.stream):
        if "transcripts" in m.artifacts and m.state in ("rolled_out", "evaluated"):
            batch = Transcripts.model_validate_json(store.artifact(m.artifacts["transcripts"]))
            out.setdefault(m.inputs["domain"], []).extend(batch.items)
    return out


def current_results(store: Store, proj: Projection) -> list:
    """Evaluation results of the tasks evaluated under their latest campaign."""
    results = []
    for m in sorted(proj.of_kind("task"), key=lambda m: m.stream):
        if m.state == "evaluated":
            results.extend(Evaluations.model_validate_json(store.artifact(m.artifacts["evaluation"])).results)
    return results


@writer
def rollout_files(store: Store, proj: Projection) -> Files:
    for env, items in sorted(current_transcripts(store, proj).items()):
        yield f"rollouts/{env}.jsonl", _jsonl([rollout_line(t) for t in items])
    results = current_results(store, proj)
    if results:
        yield "evaluation/results.jsonl", _jsonl([r.model_dump(mode="json") for r in results])


def sft_files(store: Store, proj: Projection) -> Files:
    """One row per episode that ran (an infrastructure_error is not one): id, task id, environment,
    reward (None until evaluated), messages, tools."""
    rewards = {r.transcript_id: r.reward for r in current_results(store, proj)}
    for env, items in sorted(current_transcripts(store, proj).items()):
        ran = [t for t in items if t.termination != "infrastructure_error"]
        if ran:
            yield f"sft/{env}.jsonl", _jsonl([{**to_sft(t), "reward": rewards.get(t.id)} for t in ran])
