"""An episode whose model cannot be reached could not run: it is an infrastructure_error (not scored,
not exported for SFT), never an agent error counted against the agent."""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from skiller.events import MachineCreated, Transitioned
from skiller.evaluator import RuleJudge, evaluate
from skiller.rollout import PROVIDER_UNAVAILABLE, BuiltinUser, ChatAgent, OracleAgent, run_episode
from skiller.servers import Environment
from skiller.servers.task import Task
from skiller.export import sft_files
from skiller.llm.anthropic_provider import AnthropicProvider, AnthropicSettings
from skiller.steps.s18_rollout import Transcripts
from skiller.store import Artifact, Store
from tests.rollout.support import POLICY, RaisingAgent, borrow_task


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_agent() -> ChatAgent:
    settings = AnthropicSettings(base_url=f"http://127.0.0.1:{closed_port()}", max_retries=0, backoff_base=0)
    return ChatAgent(AnthropicProvider(settings))


def episode(task: Task, env: Environment, agent) -> object:
    return asyncio.run(run_episode(task, env, agent, BuiltinUser(task), system_prompt=POLICY))


def test_an_unreachable_model_agent_is_an_infrastructure_error_and_not_scored(env, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")
    task = borrow_task(env)
    transcript = episode(task, env, unreachable_agent())
    assert transcript.termination == "infrastructure_error"
    assert transcript.error.startswith(PROVIDER_UNAVAILABLE) and "connection error" in transcript.error
    result = asyncio.run(evaluate(task, transcript, env, RuleJudge()))
    assert result.infrastructure_error


def test_a_model_agent_without_a_key_is_an_infrastructure_error(env):
    transcript = episode(borrow_task(env), env, unreachable_agent())
    assert transcript.termination == "infrastructure_error" and "ANTHROPIC_API_KEY is not set" in transcript.error


def test_an_agent_that_fails_by_itself_is_still_an_agent_error(env):
    transcript = episode(borrow_task(env), env, RaisingAgent())
    assert transcript.termination == "agent_error"


def test_sft_export_leaves_out_episodes_that_could_not_run(env, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")
    task = borrow_task(env)
    ran, lost = episode(task, env, OracleAgent(task)), episode(task, env, unreachable_agent())
    store = Store(tmp_path / "skiller.db")
    batch = Artifact.of_model("transcripts", Transcripts(campaign="c", agent="mixed", items=[ran, lost]))
    store.append([MachineCreated(stream="task:Library/0001", kind="task", initial="instantiated",
                                 inputs={"domain": "Library"}),
                  Transitioned(stream="task:Library/0001", trigger="roll_out", source="instantiated",
                               dest="rolled_out", artifacts={"transcripts": batch.sha256})], [batch])
    files = dict(sft_files(store, store.projection()))
    assert list(files) == ["sft/Library.jsonl"] and len(files["sft/Library.jsonl"].splitlines()) == 1
    store.close()
