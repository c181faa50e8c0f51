"""Rollouts: simulated users, assistant agents, the half-duplex orchestrator and transcript output."""
from skiller.rollout.agents import ChatAgent, NoopAgent, OracleAgent
from skiller.rollout.base import (
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
from skiller.rollout.orchestrator import PROVIDER_UNAVAILABLE, run_episode, run_many
from skiller.rollout.prompts import agent_system_prompt
from skiller.rollout.transcripts import read_jsonl, rollout_line, to_sft, write_jsonl
from skiller.rollout.user import BuiltinUser, ChatUser, user_system_prompt

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
