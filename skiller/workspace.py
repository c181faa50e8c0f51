"""A workspace: a folder with `skiller.yaml` and `skiller.db`; opening one wires store, provider and sandbox."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import yaml

from skiller.config import Config, ConfigError, load_config
from skiller.events import MachineCreated
from skiller.servers.sandbox import Sandbox, SandboxLimits
from skiller.store import Store, WriterLock
from skiller.world.builtin import BuiltinProvider

CONFIG_FILE = "skiller.yaml"
DB_FILE = "skiller.db"
LOCK_FILE = "skiller.lock"
LOG_FILE = "skiller.log"

DEFAULT_YAML = """\
# Skiller workspace configuration. Every key is optional; see `skiller config --schema`.
seed: 7
clock: 2026-03-02          # the fixed simulation date
provider:
  name: builtin            # builtin (offline, deterministic), anthropic or openai
  anthropic:
    base_url: null         # any Messages-API server; the key comes from ANTHROPIC_API_KEY
    text_model: claude-sonnet-5-5
    code_model: claude-sonnet-5-5
  openai:
    base_url: null         # any chat-completions server (vLLM, SGLang, Ollama: http://127.0.0.1:8000/v1);
    text_model: gpt-5.4-mini  # the key comes from OPENAI_API_KEY, unset is fine for local servers
    code_model: gpt-5.4-mini
steps:
  s01: {num_domains: 10}
  s06: {rows_per_table: 300, people: 200}
  s09: {max_repairs: 3}
  s14: {templates_per_domain: 24}
fusion: {enabled: true, num_combinations: 24, max_domains: 3}
rollout: {agent: oracle, user: builtin, trials: 1, in_run: true}
evaluation: {judge: rules, max_k: 4}
"""

VOLUME_YAML = """\
# Skiller workspace configuration, preset `volume` (skiller init --preset volume): the catalog's 31
# domains plus 4 seeded variants of each (155 environments), 36 templates each, half-size databases,
# and as many related fusions as s10 finds (same sector or a record handed over), 22 templates each,
# so that most tasks are cross-domain; long fused tasks get 60 turns. Steps run in one worker process
# per core while this process commits. Every other key keeps its default; see `skiller config --schema`.
seed: 7
clock: 2026-03-02
provider: {name: builtin}
steps:
  s01: {num_domains: 31, variants_per_domain: 4}
  s06: {rows_per_table: 150, people: 100}
  s14: {templates_per_domain: 36}
fusion: {enabled: true, num_combinations: 700, templates_per_fusion: 22, max_domains: 3}
rollout: {agent: oracle, user: builtin, trials: 1, in_run: true, max_turns: 60}
scheduler: {executor: processes, max_parallel_steps: 8}
"""
PRESETS = {"default": DEFAULT_YAML, "volume": VOLUME_YAML}

_MODEL_PROVIDERS = ("anthropic", "openai")


class WorkspaceError(Exception):
    """A workspace problem, as one line."""


@dataclass
class Workspace:
    root: Path
    config: Config
    store: Store
    _model_providers: dict = field(default_factory=dict)
    overrides: tuple[str, ...] = ()  # the command's `--set key=value`s
    file_config: Config | None = None  # skiller.yaml alone: what config-change detection compares
    _lock: WriterLock | None = None

    @classmethod
    def init(cls, root: Path, preset: str = "default") -> Path:
        if preset not in PRESETS:
            raise WorkspaceError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} is a file, not a folder; choose another path for the workspace")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace folder {root}: {exc.strerror or exc}") from None
        cfg = root / CONFIG_FILE
        if not cfg.exists():
            cfg.write_text(PRESETS[preset])
        elif preset != "default" and cfg.read_text() != PRESETS[preset]:
            raise WorkspaceError(f"{cfg} exists; the {preset} preset would replace it (remove it first)")
        load_config(cfg)  # the default must always validate
        lock = _writer_lock(root, "init")
        try:
            store = Store(root / DB_FILE)
            if "world" not in store.projection().machines:
                store.append([MachineCreated(stream="world", kind="world", initial="seeded")])
            store.close()
        finally:
            lock.release()
        return root

    @classmethod
    def open(cls, root: Path, overrides: list[str] = (), write: str | None = None) -> "Workspace":
        """Open for reading, or for the writer command named by `write` (which takes the workspace lock).

        Readers never write into a read-only workspace: no lock, no log file, no -wal/-shm."""
        if not (root / DB_FILE).exists():
            raise WorkspaceError(f"{root} is not a skiller workspace (run `skiller init {root}` first)")
        config = load_config(root / CONFIG_FILE, list(overrides))
        if write is None:
            writable = is_writable(root)
            wal = root / f"{DB_FILE}-wal"
            if not writable and wal.exists() and wal.stat().st_size:
                # an immutable reader would not see them, and nothing may fold them into the database
                raise WorkspaceError(f"workspace {root} is read-only but holds writes not yet folded into "
                                     f"{DB_FILE} ({wal.name}); make it writable for one command, e.g. `skiller status`")
            configure_logging(root / LOG_FILE if writable else None)
            return cls(root=root, config=config,
                       store=Store(root / DB_FILE, readonly="shared" if writable else "immutable"),
                       overrides=tuple(overrides), file_config=load_config(root / CONFIG_FILE))
        lock = _writer_lock(root, write)
        try:
            configure_logging(root / LOG_FILE)
            return cls(root=root, config=config, store=Store(root / DB_FILE), _lock=lock, overrides=tuple(overrides),
                       file_config=load_config(root / CONFIG_FILE))
        except BaseException:
            lock.release()
            raise

    def provider(self):
        name = self.config.provider.name
        if name == "builtin":
            return BuiltinProvider()
        if name in _MODEL_PROVIDERS:
            return self._model_provider(name)
        raise ConfigError(f"config: provider.name: unknown provider '{name}'")

    def chat_provider(self) -> dict:
        """The chat-capable models rollouts use, by name: only those the config asks for as agent or user."""
        wanted = {self.config.rollout.agent, self.config.rollout.user} & set(_MODEL_PROVIDERS)
        return {name: self._model_provider(name) for name in sorted(wanted)}

    def _model_provider(self, name: str):
        """One provider of each kind per workspace, so synthesis and rollouts share its per-model
        concurrency limits. Imported only when chosen."""
        if name not in self._model_providers:
            if name == "anthropic":
                from skiller.llm.anthropic_provider import AnthropicProvider  # deferred: start-up time (the SDK)
                self._model_providers[name] = AnthropicProvider(self.config.provider.anthropic)
            else:
                from skiller.llm.openai_provider import OpenAIProvider  # deferred: start-up time (the SDK)
                self._model_providers[name] = OpenAIProvider(self.config.provider.openai)
        return self._model_providers[name]

    def sandbox(self):
        s = self.config.sandbox
        return Sandbox(SandboxLimits(cpu_seconds=s.cpu_seconds, memory_mb=s.memory_mb, wall_seconds=s.wall_seconds))

    def close(self) -> None:
        self.store.close()
        if self._lock is not None:
            self._lock.release()


def is_writable(root: Path) -> bool:
    """Whether the folder and its database may be written. Write permission bits count even for root:
    a workspace someone made read-only (chmod -w) is left alone by every command."""
    return all(os.access(p, os.W_OK) and p.stat().st_mode & 0o222 for p in (root, root / DB_FILE) if p.exists())


def _writer_lock(root: Path, command: str) -> WriterLock:
    if not is_writable(root):
        raise WorkspaceError(f"workspace {root} is read-only; `{command}` needs to write to it "
                             "(status, log, replay and export --out still work)")
    return WriterLock(root / LOCK_FILE).acquire()


def configure_logging(path: Path | None) -> None:
    """structlog as JSON lines into the workspace's log file; the terminal stays for progress.
    No path (a read-only workspace): details are dropped rather than written where they may not be."""
    handle = open(path, "a", buffering=1) if path is not None else open(os.devnull, "w")
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer(sort_keys=True)],
        logger_factory=structlog.WriteLoggerFactory(file=handle),
        cache_logger_on_first_use=False,
    )


def dump_config(config: Config) -> dict:
    return yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json")))
