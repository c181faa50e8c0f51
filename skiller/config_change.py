"""A workspace keeps one config: a changed `skiller.yaml` is refused unless each change is given with `--set`.

Why: machines already committed were made under the old values; silently mixing two configs in one
workspace's outputs breaks byte-identical reruns. `--set` is explicit, so it is applied and recorded
(the run's `RunStarted` event lists the overrides and the changed file keys).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from skiller.config import parse_override
from skiller.workspace import Workspace, WorkspaceError, dump_config

__all__ = ["OPERATIONAL", "changed_keys", "config_changes"]

#: Keys that change how work runs, not what it produces (where the model server is, limits, how far a run
#: goes): editing them in skiller.yaml is always accepted, and recorded like every other change.
OPERATIONAL = ("scheduler", "sandbox", "provider.anthropic.base_url", "provider.anthropic.api_key_env",
               "provider.anthropic.max_concurrency", "provider.anthropic.max_retries",
               "provider.anthropic.timeout_seconds", "provider.anthropic.backoff_base")


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (lists and scalars compare whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _value(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _last_file_config(ws: Workspace) -> tuple[str, dict] | None:
    last = None
    for row in ws.store.rows(stream="run"):
        if row.type == "RunStarted":
            payload = json.loads(row.payload)
            if payload.get("file_config"):
                last = (row.run_id, payload["file_config"])
    return last


def config_changes(ws: Workspace) -> list[str]:
    """The config-file keys changed since the last run, when each is operational or given with `--set`.

    Raises WorkspaceError (one line naming the keys, old -> new) otherwise; nothing is written."""
    last = _last_file_config(ws)
    if last is None or ws.file_config is None:
        return []
    run_id, before = last
    now = dump_config(ws.file_config)
    changed = changed_keys(before, now)
    explicit = [parse_override(item)[0] for item in ws.overrides]
    silent = [k for k in changed if not _under(k, explicit) and not _under(k, OPERATIONAL)]
    if silent:
        shown = ", ".join(f"{k} {json.dumps(_value(before, k))} -> {json.dumps(_value(now, k))}" for k in silent[:4])
        more = f" and {len(silent) - 4} more" if len(silent) > 4 else ""
        fix = " ".join(f"--set {k}={json.dumps(_value(now, k))}" for k in silent[:4])
        raise WorkspaceError(f"skiller.yaml changed since {run_id}: {shown}{more}; restore it, or apply the change "
                             f"explicitly with {fix} (recorded in the run's log)")
    return changed
