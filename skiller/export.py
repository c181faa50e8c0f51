"""Projection to files: writes `outputs/` in the reference layout, rebuilt from the log alone."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from events import Projection
from store import Store

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
        from steps.s03_entity_graph import EntityGraph
        yield "entity_graph.json", as_json(EntityGraph.model_validate(graph).node_link())
    listed = domains(proj, "tool_list")
    if listed:
        yield "blueprints.json", as_json([store.artifact_json(m.artifacts["blueprint"]) for m in listed])
    elif _world(store, proj, "blueprints") is not None:
        yield "blueprints.json", as_json(_world(store, proj, "blueprints")["blueprints"])
    for m in listed:
        tool_list = store.artifact_json(m.artifacts["tool_list"])
        yield f"tool_lists/{tool_list['server']}.json", as_json(tool_list["tools"])


def render(store: Store) -> dict[str, bytes]:
    proj = store.projection()
    files: dict[str, bytes] = {}
    for write in WRITERS:
        files.update(write(store, proj))
    return files


def export(store: Store, out: Path) -> list[Path]:
    """Write every file atomically (temp file + rename), so a crash never leaves half a file."""
    written = []
    for rel, content in sorted(render(store).items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
        written.append(path)
    return written
