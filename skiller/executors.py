"""Chooses where a run's step work goes (`scheduler.executor`) and wires what each executor needs."""
from __future__ import annotations

import atexit
import hashlib
import json
import os
from functools import partial
from pathlib import Path

from skiller.config import Config, ConfigError
from skiller.llm.client import LLMClient
from skiller.servers import EnvironmentPool
from skiller.statemachine.executor import Executor, LocalExecutor, Resources
from skiller.statemachine.process_executor import ProcessExecutor
from skiller.statemachine.ray_executor import RayExecutor, RayUnavailable  # imports ray itself only when used
from skiller.store import Store
from skiller.workspace import DB_FILE, LOG_FILE, Workspace, configure_logging, dump_config


def local_workers(config: Config) -> int:
    """Worker processes on this machine for `scheduler.executor: processes` (unset: one per core)."""
    return config.scheduler.workers or os.cpu_count() or 1


def open_executor(ws: Workspace, llm: LLMClient, sandbox, environments: EnvironmentPool) -> Executor:
    """The executor `scheduler.executor` names; the caller closes it. Ray problems are one config line."""
    config = ws.config
    if config.scheduler.executor == "local":
        return LocalExecutor(Resources(config, llm, sandbox, ws.chat_provider(), environments))
    if config.scheduler.executor == "processes":
        return ProcessExecutor(partial(process_resources, str(ws.root.resolve()), config), local_workers(config))
    root = str(ws.root.resolve())
    key = hashlib.sha256(json.dumps([root, dump_config(config)], sort_keys=True, default=str).encode()).hexdigest()
    try:
        return RayExecutor(key, partial(worker_resources, root, config), address=config.scheduler.ray_address)
    except RayUnavailable as exc:
        raise ConfigError(str(exc)) from None


def process_resources(root: str, config: Config) -> Resources:
    """`worker_resources` for a local worker process, which also logs into the workspace's log file."""
    configure_logging(Path(root) / LOG_FILE)
    return worker_resources(root, config)


def worker_resources(root: str, config: Config) -> Resources:
    """Built once in each Ray worker process: the run's provider, sandbox and warm environments, and
    the workspace's LLM cache, read-only, when this machine can see the file."""
    db = Path(root) / DB_FILE
    store = Store(db, readonly="shared") if db.is_file() else None
    ws = Workspace(root=Path(root), config=config, store=store)  # type: ignore[arg-type] - never written here
    sandbox = ws.sandbox()
    environments = EnvironmentPool(sandbox)
    atexit.register(environments.close)
    return Resources(config, LLMClient(ws.provider(), store, config.output_caps.for_purpose), sandbox, ws.chat_provider(), environments)
