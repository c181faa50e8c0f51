"""The explorer site as files: build every page from the store, write them atomically, serve on loopback."""
from __future__ import annotations

import functools
import os
from collections import defaultdict
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from skiller.view import environment_page, evaluations_page, index_page, task_page, transcript_page
from skiller.view.data import SiteData, collect
from skiller.view.markup import slug
from skiller.store import Store

MANIFEST = ".skiller-view"  # the files the last build wrote, so a rebuild can remove pages that are gone


def pages(data: SiteData) -> dict[str, bytes]:
    """Relative path -> page bytes. Pure: the same data gives the same bytes."""
    out = {"index.html": index_page.render(data), "evaluations.html": evaluations_page.render(data.results)}
    for env in data.environments:
        out[f"env/{slug(env.name)}.html"] = environment_page.render(env, data)
    results = {r.transcript_id: r for r in data.results}
    by_task_results = defaultdict(list)
    for r in data.results:
        by_task_results[r.task_id].append(r)
    by_task_transcripts: dict[str, dict[str, str]] = defaultdict(dict)
    for t in data.transcripts:
        by_task_transcripts[t.task_id][t.id] = t.agent
        out[f"transcript/{slug(t.id)}.html"] = transcript_page.render(t, results.get(t.id))
    for view in data.tasks:
        if view.task is not None:
            out[f"task/{slug(view.task.id)}.html"] = task_page.render(
                view.task, view.stream, by_task_results[view.task.id], by_task_transcripts[view.task.id])
    return {path: html.encode() for path, html in sorted(out.items())}


def build(store: Store, out: Path, max_k: int = 4) -> list[Path]:
    """Write the site into `out` (temp file + rename per page) and remove pages an earlier build left."""
    files = pages(collect(store, max_k))
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    previous = manifest.read_text().splitlines() if manifest.is_file() else []
    written = []
    for rel, content in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
        written.append(path)
    for rel in sorted(set(previous) - set(files)):
        stale = out / rel
        if stale.is_file() and stale.resolve().is_relative_to(out.resolve()):
            stale.unlink()
    manifest.write_text("".join(f"{rel}\n" for rel in files))
    return written


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        pass


def serve(out: Path, port: int = 0, host: str = "127.0.0.1", on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the written site until interrupted (loopback only by default)."""
    handler = functools.partial(_QuietHandler, directory=str(out))
    with ThreadingHTTPServer((host, port), handler) as server:
        if on_ready is not None:
            on_ready(f"http://{host}:{server.server_address[1]}/index.html")
        server.serve_forever()
