"""Hugging Face export: parquet configs (SFT conversations with tools, tasks with golden actions,
evaluation results) and a dataset card, rebuilt from the log; `datasets.load_dataset(DIR, name=...)` reads it.

pyarrow (installed with `datasets`, the `[hf]` extra) is imported only here, only when this format runs.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from skiller.events import Projection
from skiller.export import current_results, current_transcripts
from skiller.formats.common import ExportError, write_files
from skiller.formats.hf_card import Config, dataset_card
from skiller.rollout import to_sft
from skiller.servers.task import Task
from skiller.store import Store

__all__ = ["CONFIGS", "export_hf", "render_hf"]

CONFIGS = ("sft", "tasks", "evaluations")


def _pyarrow() -> Any:
    try:
        import pyarrow as pa  # deferred: optional extra: pyarrow comes with `.[hf]` only
        import pyarrow.parquet as pq  # deferred: optional extra: pyarrow comes with `.[hf]` only
    except ImportError:
        raise ExportError("writing parquet needs pyarrow: pip install -e '.[hf]'") from None
    return pa, pq


def _schemas(pa: Any) -> dict[str, Any]:
    s, strings = pa.string(), pa.list_(pa.string())
    call = pa.struct([("id", s), ("type", s), ("function", pa.struct([("name", s), ("arguments", s)]))])
    message = pa.struct([("role", s), ("content", s), ("tool_calls", pa.list_(call)), ("tool_call_id", s)])
    persona = pa.struct([("name", s), ("style", s), ("patience", s), ("verbosity", s),
                         ("language_register", s), ("language", s)])
    action = pa.struct([("action_id", s), ("name", s), ("arguments", s), ("mode", s), ("requestor", s),
                        ("compare_args", strings), ("expected", s)])
    component = pa.struct([("name", s), ("passed", pa.bool_()), ("detail", s)])
    return {
        "sft": pa.schema([("id", s), ("task_id", s), ("environment", s), ("domains", strings), ("trial", pa.int32()),
                          ("agent", s), ("termination", s), ("reward", pa.float64()),
                          ("messages", pa.list_(message)), ("tools", s)]),
        "tasks": pa.schema([("id", s), ("environment", s), ("domains", strings), ("kind", s), ("description", s),
                            ("persona", persona), ("reason_for_call", s), ("known_info", s), ("unknown_info", s),
                            ("task_instructions", s), ("first_query", s), ("golden_actions", pa.list_(action)),
                            ("communicate_info", strings), ("nl_assertions", strings), ("reward_basis", strings),
                            ("violated_rule", s), ("initial_state_hash", s), ("gold_state_hash", s)]),
        "evaluations": pa.schema([("task_id", s), ("transcript_id", s), ("environment", s), ("trial", pa.int32()),
                                  ("agent", s), ("reward", pa.float64()), ("termination", s),
                                  ("infrastructure_error", pa.bool_()), ("reason", s),
                                  ("components", pa.list_(component))]),
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _text(content: Any) -> str | None:
    return content if content is None or isinstance(content, str) else _json(content)


def _message(m: dict[str, Any]) -> dict[str, Any]:
    calls = [{"id": c.get("id"), "type": c.get("type", "function"),
              "function": {"name": c["function"]["name"], "arguments": _text(c["function"].get("arguments"))}}
             for c in m.get("tool_calls") or []]
    return {"role": m["role"], "content": _text(m.get("content")), "tool_calls": calls or None,
            "tool_call_id": m.get("tool_call_id")}


def sft_rows(store: Store, proj: Projection) -> list[dict[str, Any]]:
    rewards = {r.transcript_id: r.reward for r in current_results(store, proj)}
    rows = []
    for _, items in sorted(current_transcripts(store, proj).items()):
        for t in items:
            sft = to_sft(t)
            rows.append({"id": t.id, "task_id": t.task_id, "environment": t.environment, "domains": t.domains,
                         "trial": t.trial, "agent": t.agent, "termination": t.termination,
                         "reward": rewards.get(t.id), "messages": [_message(m) for m in sft["messages"]],
                         "tools": _json(sft["tools"])})
    return rows


def task_rows(store: Store, proj: Projection) -> list[dict[str, Any]]:
    rows = []
    for m in sorted(proj.of_kind("task"), key=lambda m: m.stream):
        if "task" not in m.artifacts or m.state == "rejected":
            continue
        task = Task.model_validate(store.artifact_json(m.artifacts["task"]))
        scenario, criteria = task.user_scenario, task.evaluation_criteria
        rows.append({
            "id": task.id, "environment": task.environment, "domains": task.domains, "kind": task.kind,
            "description": task.description, "persona": scenario.persona.model_dump(),
            **scenario.instructions.model_dump(exclude={"domain"}), "first_query": task.first_query,
            "golden_actions": [{"action_id": a.action_id, "name": a.name, "arguments": _json(a.arguments),
                                "mode": a.mode, "requestor": a.requestor, "compare_args": a.compare_args,
                                "expected": _json(a.expected)} for a in criteria.actions],
            "communicate_info": criteria.communicate_info, "nl_assertions": criteria.nl_assertions,
            "reward_basis": list(criteria.reward_basis), "violated_rule": task.violated_rule,
            "initial_state_hash": task.initial_state_hash, "gold_state_hash": task.gold_state_hash})
    return rows


def evaluation_rows(store: Store, proj: Projection) -> list[dict[str, Any]]:
    return [{**r.model_dump(mode="json", exclude={"components"}),
             "components": [c.model_dump(mode="json") for c in r.components]}
            for r in current_results(store, proj)]


def _parquet(pa: Any, pq: Any, rows: list[dict[str, Any]], schema: Any) -> tuple[bytes, int]:
    """The parquet file's bytes and the table's size in memory (what the card calls num_bytes)."""
    table = pa.Table.from_pylist(rows, schema=schema)
    buffer = io.BytesIO()
    # No timestamps go into parquet files; fixed options and one row group keep reruns byte-identical.
    pq.write_table(table, buffer, compression="zstd", compression_level=9, row_group_size=max(len(rows), 1),
                   use_dictionary=True, write_statistics=True)
    return buffer.getvalue(), table.nbytes


def render_hf(store: Store) -> dict[str, bytes]:
    """Every file of the dataset by relative path (nothing written yet)."""
    pa, pq = _pyarrow()
    proj = store.projection()
    schemas = _schemas(pa)
    tables = {"sft": sft_rows(store, proj), "tasks": task_rows(store, proj),
              "evaluations": evaluation_rows(store, proj)}
    if not any(tables.values()):
        raise ExportError("nothing to export yet: no instantiated task, rollout or evaluation (run first)")
    files: dict[str, bytes] = {}
    configs = []
    for name in CONFIGS:
        rows = tables[name]
        if not rows:
            continue
        path = f"data/{name}/train-00000-of-00001.parquet"
        files[path], size = _parquet(pa, pq, rows, schemas[name])
        per_env: dict[str, int] = {}
        for row in rows:
            per_env[row["environment"]] = per_env.get(row["environment"], 0) + 1
        configs.append(Config(name=name, path=path, rows=len(rows), num_bytes=size, per_environment=dict(sorted(per_env.items())),
                              columns=[(f.name, str(f.type)) for f in schemas[name]]))
    files["README.md"] = dataset_card(proj, configs, tables["sft"]).encode()
    return files


def export_hf(store: Store, out: Path) -> list[Path]:
    """Write the dataset into `out` (rendered first, then written atomically)."""
    return write_files(render_hf(store), out)
