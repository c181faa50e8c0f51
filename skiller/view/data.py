"""What the explorer shows, read from the log and its artifacts (never from `outputs/`)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skiller.evaluator import EvaluationResult
from skiller.events import MachineView, Projection
from skiller.export import current_results, current_transcripts
from skiller.servers import DatabaseSummary
from skiller.servers.episode import Transcript
from skiller.servers.fusion import namespace_of
from skiller.servers.task import EnvironmentBundle, Task
from skiller.store import Store


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ToolView(_Frozen):
    name: str
    description: str
    mode: str  # read | write | unknown
    parameters: dict[str, Any]


class Edge(_Frozen):
    source: str
    target: str
    type: str
    fields: list[str]


class TaskView(_Frozen):
    stream: str
    environment: str
    state: str
    task: Task | None = None  # absent until instantiated (and for rejected tasks)
    reason: str | None = None  # why a task was rejected or failed
    kind: str | None = None  # read | write | refusal, known from the template on


class EnvView(_Frozen):
    name: str
    kind: str  # domain | fusion
    stream: str
    state: str
    members: list[str]
    tools: list[ToolView]
    policy: str | None = None
    summary: DatabaseSummary | None = None
    edges: list[Edge] | None = None  # None: no tool graph (fusions are built from their members')
    error: str | None = None


class SiteData(_Frozen):
    environments: list[EnvView]
    tasks: list[TaskView]
    transcripts: list[Transcript]
    results: list[EvaluationResult]
    usage: dict[str, dict[str, int]] = Field(default_factory=dict)
    max_k: int = 4


def _json(store: Store, sha: str) -> Any:
    return store.artifact_json(sha)


def _tool_list(store: Store, m: MachineView) -> list[ToolView]:
    """A domain's tools with their read/write tags (s05), in the order the tool list gives."""
    if "tool_list" not in m.artifacts:
        return []
    raw = _json(store, m.artifacts["tool_list"])
    modes = raw.get("modes", {})
    return [ToolView(name=t["name"], description=t.get("description", ""), mode=modes.get(t["name"], "unknown"),
                     parameters=t.get("parameters") or {}) for t in raw["tools"]]


def _fused_tools(store: Store, proj: Projection, m: MachineView) -> list[ToolView]:
    """A fusion exposes its members' tools under each member's prefix (as its environment bundle says)."""
    prefixes = {member: namespace_of(member) for member in m.inputs.get("members", [])}
    if "environment" in m.artifacts:
        bundle = EnvironmentBundle.model_validate_json(store.artifact(m.artifacts["environment"]))
        prefixes = {module.server: module.prefix for module in bundle.modules}
    tools = []
    for member, prefix in prefixes.items():
        member_machine = proj.machines.get(f"domain:{member}")
        if member_machine is not None:
            tools += [t.model_copy(update={"name": prefix + t.name}) for t in _tool_list(store, member_machine)]
    return tools


def _environment(store: Store, proj: Projection, m: MachineView) -> EnvView:
    fused = m.kind == "fusion"
    name = m.inputs.get("name" if fused else "domain", m.stream.split(":", 1)[1])
    policy = _json(store, m.artifacts["policy"])["markdown"] if "policy" in m.artifacts else None
    summary = (DatabaseSummary.model_validate(_json(store, m.artifacts["database_summary"]))
               if "database_summary" in m.artifacts else None)
    edges = None
    if "tool_graph" in m.artifacts:
        edges = [Edge(source=link["source"], target=link["target"], type=link.get("type", ""),
                      fields=link.get("fields", [])) for link in _json(store, m.artifacts["tool_graph"])["links"]]
    return EnvView(name=name, kind=m.kind, stream=m.stream, state=m.state,
                   members=list(m.inputs.get("members", [])) if fused else [name],
                   tools=_fused_tools(store, proj, m) if fused else _tool_list(store, m),
                   policy=policy, summary=summary, edges=edges, error=m.last_error)


def _task(store: Store, m: MachineView) -> TaskView:
    task = Task.model_validate_json(store.artifact(m.artifacts["task"])) if "task" in m.artifacts else None
    kind = task.kind if task else None
    if kind is None and "template" in m.artifacts:
        kind = _find_kind(_json(store, m.artifacts["template"]))
    reason = m.last_error or (m.payload.get("reason") if m.state == "rejected" else None)
    return TaskView(stream=m.stream, environment=m.inputs.get("domain", "?"), state=m.state, task=task,
                    reason=str(reason) if reason is not None else None, kind=kind)


def _find_kind(template: Any) -> str | None:
    """The task kind wherever the template artifact keeps it (it nests the template once)."""
    if isinstance(template, dict):
        if isinstance(template.get("kind"), str):
            return template["kind"]
        inner = template.get("template")
        return _find_kind(inner) if inner is not None else None
    return None


def collect(store: Store, max_k: int = 4) -> SiteData:
    """Everything the site shows, in a stable order (environments and tasks by stream)."""
    proj = store.projection()
    machines = sorted((m for m in proj.machines.values() if m.kind in ("domain", "fusion")), key=lambda m: m.stream)
    transcripts = [t for _, items in sorted(current_transcripts(store, proj).items()) for t in items]
    usage = {model: {"calls": u.calls, "cache_hits": u.cache_hits, "input_tokens": u.input_tokens,
                     "output_tokens": u.output_tokens} for model, u in sorted(proj.usage.items())}
    return SiteData(
        environments=[_environment(store, proj, m) for m in machines],
        tasks=[_task(store, m) for m in sorted(proj.of_kind("task"), key=lambda m: m.stream)],
        transcripts=sorted(transcripts, key=lambda t: (t.environment, t.task_id, t.trial, t.id)),
        results=sorted(current_results(store, proj), key=lambda r: (r.environment, r.task_id, r.trial, r.transcript_id)),
        usage=usage, max_k=max_k)
