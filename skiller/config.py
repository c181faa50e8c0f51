"""One config tree: a YAML file validated by pydantic, with dotted overrides from the CLI."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skiller.llm.anthropic_settings import AnthropicSettings
from skiller.llm.openai_settings import OpenAISettings


class ConfigError(Exception):
    """A config problem, as one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ProviderConfig(_Section):
    name: Literal["builtin", "anthropic", "openai"] = "builtin"
    anthropic: AnthropicSettings = AnthropicSettings()
    openai: OpenAISettings = OpenAISettings()
    """Any OpenAI-compatible chat-completions server (OpenAI, vLLM, SGLang, Ollama)."""


class S01Config(_Section):
    num_domains: int = Field(10, ge=1)
    """How many service domains to expand (raised to the number of `domains` named below if smaller)."""
    domains: list[str] = []
    """Domains that must be among them, e.g. [Hospital, Pharmacy]: catalog names on the builtin provider,
    matched ignoring case and separators (`hospital`, `health_insurance`); checked before any work."""
    variants_per_domain: int = Field(0, ge=0, le=26)
    """Seeded variants of each domain (the same kind of service under another name, with its own
    vocabulary, rule parameters, tool subset and data), each a further environment."""
    min_sectors: int = Field(5, ge=1)
    """Diversity check: at least this many distinct sectors (capped by num_domains)."""
    max_similarity: float = Field(0.5, gt=0, le=1)
    """Diversity check: max word-overlap (Jaccard) between two domain descriptions."""
    max_attempts: int = Field(3, ge=1)


class S04Config(_Section):
    target_blueprints_per_entity: int = Field(2, ge=1)
    """At most this many service blueprints share one core (person-role) entity."""


class S06Config(_Section):
    rows_per_table: int = Field(300, ge=5)
    people: int = Field(200, ge=5)
    max_repairs: int = Field(2, ge=0)


class S09Config(_Section):
    max_repairs: int = Field(3, ge=0)
    """Test-and-repair rounds before a domain is marked failed."""


class S14Config(_Section):
    templates_per_domain: int = Field(24, ge=1)
    """Templates proposed per domain (validated tasks are what survives s15-s16)."""
    group_size: int = Field(8, ge=1)
    """Templates asked for per request: a group's answer fits `output_caps.s14_templates` (about 350
    tokens a template), and each group is told the goals of the groups before it."""
    min_length: int = Field(1, ge=1)
    max_length: int = Field(5, ge=1)
    min_score: int = Field(3, ge=1, le=5)
    """Judge threshold: templates scoring below it are dropped."""


class S15Config(_Section):
    max_attempts: int = Field(3, ge=1)
    """Plan-execute rounds before an instance search gives up (it also stops when a re-plan makes no progress)."""
    candidates: int = Field(50, ge=1)
    """Rows considered per selector, tried in an order drawn with the task's seeded RNG."""
    max_queries: int = Field(60, ge=1)
    """Queries one instance search may run while backtracking over earlier slots' rows."""


class OutputCapsConfig(_Section):
    """Output-token caps (`max_tokens`) per request purpose, sized from the builtin's answers on a
    default run (tokens estimated as characters / 4; see bench/output_sizes.py) with about 2x
    headroom. A reply cut at its cap is never accepted: the provider asks again with the cap doubled,
    up to the provider's `max_output_tokens`."""

    default: int = Field(4096, ge=256)
    """Purposes not listed below (e.g. the evaluator's judge)."""
    s01_domains: int = Field(4096, ge=256)
    s02_entities: int = Field(4096, ge=256)
    s03_relationships: int = Field(4096, ge=256)
    s04_blueprint: int = Field(8192, ge=256)
    s06_database_code: int = Field(16384, ge=256)
    s06_database_repair: int = Field(16384, ge=256)
    s07_policy: int = Field(16384, ge=256)
    s08_tool_graph: int = Field(8192, ge=256)
    s09_implementation: int = Field(32768, ge=256)
    """Module plus tests of a 12-15-tool domain: the largest answer of a run."""
    s09_repair: int = Field(32768, ge=256)
    s10_fit: int = Field(1024, ge=256)
    s11_fuse: int = Field(16384, ge=256)
    s13_policy_merge: int = Field(20480, ge=256)
    s14_templates: int = Field(8192, ge=256)
    """One group of templates (s14 asks in groups of `steps.s14.group_size`)."""
    s14_judge: int = Field(1024, ge=256)
    s15_replan: int = Field(2048, ge=256)
    s17_persona: int = Field(1024, ge=256)
    s17_query: int = Field(2048, ge=256)

    def for_purpose(self, purpose: str) -> int:
        """The cap of `purpose` ("s09.implementation" -> s09_implementation), else `default`."""
        field = purpose.replace(".", "_")
        return getattr(self, field) if field in type(self).model_fields else self.default


class StepsConfig(_Section):
    s01: S01Config = S01Config()
    s04: S04Config = S04Config()
    s06: S06Config = S06Config()
    s09: S09Config = S09Config()
    s14: S14Config = S14Config()
    s15: S15Config = S15Config()


class FusionConfig(_Section):
    enabled: bool = True
    num_combinations: int = Field(24, ge=0)
    """How many cross-domain combinations to select (after feasibility pruning and ranking)."""
    max_domains: int = Field(3, ge=2, le=3)
    """Pairs, and triples chained by cross-domain references."""
    min_shared_entities: int = Field(1, ge=1, le=2)
    """1: the shared Person suffices; 2: also a cross-domain reference (e.g. a claim naming an appointment)."""
    templates_per_fusion: int = Field(4, ge=1)
    min_fit: int = Field(2, ge=1, le=5)
    """Semantic-fit threshold (1-5) a feasible combination needs to be selected."""


class RolloutConfig(_Section):
    agent: Literal["oracle", "noop", "anthropic", "openai"] = "oracle"
    """Assistant: oracle follows the golden actions; noop never acts; anthropic or openai is a model with tools."""
    user: Literal["builtin", "anthropic", "openai"] = "builtin"
    """Simulated user: builtin phrases from the persona deterministically; anthropic or openai is a model."""
    trials: int = Field(1, ge=1)
    """Episodes per task (for pass^k)."""
    max_turns: int = Field(40, ge=2)
    """User and assistant messages (tool results not counted) before an episode is cut short; the demonstrator
    makes one call per message, so a cross-domain task with three writes and a misread id takes about 30."""
    max_tool_errors: int = Field(5, ge=1)
    in_run: bool = True
    """Whether `skiller run` also rolls out and evaluates (otherwise use `skiller rollout` / `evaluate`)."""


class EvaluationConfig(_Section):
    judge: Literal["rules", "model"] = "rules"
    """NL assertions: `rules` judges the assertion forms our tasks generate; `model` asks the provider."""
    max_k: int = Field(4, ge=1)


class SandboxConfig(_Section):
    cpu_seconds: int = Field(60, ge=1)
    memory_mb: int = Field(1024, ge=64)
    wall_seconds: float = Field(120, gt=0)


class SchedulerConfig(_Section):
    max_parallel_steps: int = Field(4, ge=1)
    """Machines advanced concurrently (LLM calls are further bounded per model by the provider)."""
    stop_after: Literal["blueprinted", "tools_listed", "database_generated", "policy_written", "tool_graph_built",
                        "implemented", "templated", "all"] = "all"
    """How far `skiller run` takes the pipeline."""
    executor: Literal["local", "processes", "ray"] = "local"
    """Where step work and rollouts run: this process, `workers` local processes, or Ray tasks (`pip install -e
    '.[ray]'`). Either way this process alone writes the log, so outputs are the same."""
    workers: int | None = Field(None, ge=1)
    """Worker processes for `executor: processes`; unset: one per core."""
    ray_address: str | None = None
    """The Ray cluster for `executor: ray` (e.g. `auto`, `ray://head:10001`); unset: start a local instance."""


class Config(_Section):
    seed: int = 7
    clock: dt.date = dt.date(2026, 3, 2)
    """Fixed simulation date: every step and tool uses it instead of the wall clock."""
    provider: ProviderConfig = ProviderConfig()
    steps: StepsConfig = StepsConfig()
    sandbox: SandboxConfig = SandboxConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    fusion: FusionConfig = FusionConfig()
    rollout: RolloutConfig = RolloutConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    output_caps: OutputCapsConfig = OutputCapsConfig()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config: {dotted}: '{part}' is not a section")
        node = child
    node[leaf] = value


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: `2026-02-30` stays a string, so pydantic names the key it breaks."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"config: override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), _yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {key.strip()}: '{raw}' is not a valid value ({str(exc).splitlines()[0]})") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"config: unknown key '{key}'"
    got = f", got {err['input']!r}" if isinstance(err.get("input"), (str, int, float)) else ""
    return f"config: {key}: {err['msg']}{got}"


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    tree: dict[str, Any] = {}
    if path is not None and Path(path).exists():
        try:
            tree = _yaml(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config: {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"config: {path} must hold a mapping at the top level")
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(tree, key, value)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None


def config_schema() -> dict[str, Any]:
    return Config.model_json_schema()
