"""A transcript of one episode in an environment: what rollouts write and evaluators read."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Termination = Literal["user_stop", "agent_stop", "max_turns", "too_many_errors", "agent_error", "user_error",
                      "infrastructure_error"]
PREMATURE: set[str] = {"max_turns", "too_many_errors", "agent_error", "user_error"}


class ToolCallRecord(BaseModel):
    """One tool call the assistant made and what the environment answered."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    arguments: dict[str, Any] | None  # None when the assistant's JSON was malformed
    raw_arguments: str
    ok: bool
    output: Any = None
    error: str | None = None


class Transcript(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str  # content id of (task id, trial, agent, models)
    task_id: str
    trial: int
    domains: list[str]
    environment: str
    agent: str  # oracle | noop | anthropic
    models: dict[str, str] = Field(default_factory=dict)  # role -> model
    messages: list[dict[str, Any]]  # OpenAI chat format: system, user, assistant(tool_calls), tool
    tools: list[dict[str, Any]]  # OpenAI function format
    tool_calls: list[ToolCallRecord]
    termination: Termination
    usage: dict[str, int] = Field(default_factory=dict)
    error: str | None = None

    @property
    def premature(self) -> bool:
        return self.termination in PREMATURE
