"""Shared rollout vocabulary: turn models, stop tokens, and the protocols of agents, users, providers, environments."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from skiller.contract.environment import ToolResult, ToolSpec
from skiller.llm.interface import ToolCall

STOP = "###STOP###"
TRANSFER = "###TRANSFER###"
OUT_OF_SCOPE = "###OUT-OF-SCOPE###"
USER_STOP_TOKENS: tuple[str, ...] = (STOP, TRANSFER, OUT_OF_SCOPE)
# The agent ends an episode itself by saying one of these (a hand-off to a human counts as a stop).
AGENT_STOP_TOKENS: tuple[str, ...] = (STOP, TRANSFER)


AgentToolCall = ToolCall  # a tool call as an agent proposes it: the chat seam's own type


class AgentTurn(BaseModel):
    """One assistant message: text, tool calls, or both."""

    model_config = ConfigDict(frozen=True)
    text: str = ""
    tool_calls: list[AgentToolCall] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


class UserTurn(BaseModel):
    """One user message; `stop` means the user ended the conversation (the text keeps the stop token)."""

    model_config = ConfigDict(frozen=True)
    text: str
    stop: bool = False
    input_tokens: int = 0
    output_tokens: int = 0


@runtime_checkable
class Agent(Protocol):
    """The assistant side. `messages` are OpenAI chat messages (system first), `tools` OpenAI functions."""

    name: str
    model: str | None

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn: ...


@runtime_checkable
class User(Protocol):
    """The simulated user. It sees the conversation in the agent's frame and flips it itself if needed."""

    name: str
    model: str | None

    async def respond(self, messages: list[dict[str, Any]]) -> UserTurn: ...


class ChatToolCallLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def arguments(self) -> str: ...


class ChatUsageLike(Protocol):
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...


class ChatTurnLike(Protocol):
    """What `chat` returns (skiller.llm.anthropic_provider.ChatTurn fits)."""

    @property
    def text(self) -> str: ...
    @property
    def tool_calls(self) -> Sequence[ChatToolCallLike]: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def usage(self) -> ChatUsageLike: ...
    @property
    def model(self) -> str: ...


class ChatProvider(Protocol):
    """Any provider that can take one turn of an OpenAI-format tool-use conversation."""

    name: str

    def model_for(self, role: Any) -> str: ...

    async def chat(self, role: Any, system: str, messages: Sequence[Mapping[str, Any]],
                   tools: Sequence[Mapping[str, Any]], stop_sequences: Sequence[str] = (),
                   max_tokens: int = 2048) -> ChatTurnLike: ...


class EpisodeEnvironment(Protocol):
    """The slice of servers.Environment a rollout needs (a test double may stand in). An environment
    that also has `async acall(name, arguments)` and `async areset()` is driven through them (no
    thread per call); otherwise `call` and `reset` run in a thread."""

    @property
    def tools(self) -> list[ToolSpec]: ...

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult: ...

    def reset(self) -> None: ...

    def state_hash(self) -> str: ...

    def close(self) -> None: ...


def message_text(message: Mapping[str, Any]) -> str:
    """The text of an OpenAI message whose content is a string, a list of parts or None."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
