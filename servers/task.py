"""What a task is, for everyone who runs or scores one: scenario, golden actions, evaluation criteria."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skiller.contract.environment import ModuleSource

RewardBasis = Literal["DB", "ACTION", "COMMUNICATE", "NL_ASSERTION", "OUTPUT"]
TaskKind = Literal["read", "write", "refusal"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GoldenAction(_Frozen):
    action_id: str
    name: str  # the tool name as the environment exposes it (prefixed in fusions)
    arguments: dict[str, Any]
    compare_args: list[str] | None = None  # None: all arguments are compared
    mode: Literal["read", "write"] = "read"
    expected: Any = None  # the output recorded when s16 executed the golden trajectory
    requestor: Literal["assistant", "user"] = "assistant"


class Persona(_Frozen):
    name: str
    style: str  # e.g. "curt", "chatty", "anxious"
    patience: Literal["low", "medium", "high"]
    verbosity: Literal["terse", "normal", "detailed"]
    language_register: Literal["casual", "neutral", "formal"]
    language: str = "en"


class Instructions(_Frozen):
    domain: str
    reason_for_call: str
    known_info: str
    unknown_info: str
    task_instructions: str


class Mistake(_Frozen):
    """A correctable slip the user makes: asked for `fact`, they first give `wrong` (a reference that
    does not exist, so the lookup fails), then the right value once the assistant reports the failure."""

    fact: str  # a key of UserScenario.facts
    wrong: str


class UserScenario(_Frozen):
    persona: Persona
    instructions: Instructions
    facts: dict[str, str] = Field(default_factory=dict)  # the only values the user may disclose
    mistake: Mistake | None = None


class RuleStatement(_Frozen):
    """The policy rule a refusal task breaks, as the policy states it (for refusing in words)."""

    id: str
    tool: str  # the forbidden tool, as the environment exposes it
    kind: str
    statement: str
    field: str | None = None
    statuses: list[str] = Field(default_factory=list)  # the statuses a rule on held records counts
    attribute: str | None = None  # the read value the request is judged against: a balance or tier, a bridge's source


class EvaluationCriteria(_Frozen):
    actions: list[GoldenAction]
    communicate_info: list[str] = Field(default_factory=list)
    nl_assertions: list[str] = Field(default_factory=list)
    reward_basis: list[RewardBasis]


class Task(_Frozen):
    """A validated, instantiated task: everything a rollout and its evaluation need."""

    id: str
    domains: list[str]  # one server, or the members of a fusion
    environment: str  # "Hospital" or "Hospital_Insurance" (fused name)
    kind: TaskKind
    description: str
    user_scenario: UserScenario
    first_query: str
    evaluation_criteria: EvaluationCriteria
    initial_state_hash: str
    gold_state_hash: str
    violated_rule: str | None = None
    rule: RuleStatement | None = None  # the violated rule in words (refusal tasks)

    @property
    def golden_actions(self) -> list[GoldenAction]:
        return self.evaluation_criteria.actions


def content_id(value: Any, length: int = 12) -> str:
    """Short content hash; includes every field given, server names too (no cross-server leaks)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:length]


class EnvironmentBundle(_Frozen):
    """What it takes to run an environment besides its database: the modules and the policy."""

    name: str  # "Hospital" or a fused name "Hospital_HealthInsurance"
    domains: list[str]
    modules: list[ModuleSource]
    policy: str  # markdown for the assistant's system prompt
