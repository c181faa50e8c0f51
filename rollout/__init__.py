"""Rollouts: simulated users, assistant agents, the half-duplex orchestrator and transcript output."""
from rollout.agents import ChatAgent, NoopAgent, OracleAgent
from rollout.base import (
    AGENT_STOP_TOKENS,
    STOP,
    USER_STOP_TOKENS,
    Agent,
    AgentToolCall,
    AgentTurn,
    ChatProvider,
    EpisodeEnvironment,
    User,
    UserTurn,
)
from rollout.orchestrator import PROVIDER_UNAVAILABLE, run_episode, run_many
from rollout.prompts import agent_system_prompt
from rollout.transcripts import read_jsonl, rollout_line, to_sft, write_jsonl
from rollout.user import BuiltinUser, ChatUser, user_system_prompt

__all__ = [
    "AGENT_STOP_TOKENS",
    "PROVIDER_UNAVAILABLE",
    "STOP",
    "USER_STOP_TOKENS",
    "Agent",
    "AgentToolCall",
    "AgentTurn",
    "BuiltinUser",
    "ChatAgent",
    "ChatProvider",
    "ChatUser",
    "EpisodeEnvironment",
    "NoopAgent",
    "OracleAgent",
    "User",
    "agent_system_prompt",
    "UserTurn",
    "read_jsonl",
    "rollout_line",
    "run_episode",
    "run_many",
    "to_sft",
    "user_system_prompt",
    "write_jsonl",
]
