"""Half-duplex rollout loop (user → agent ⇄ environment → user …) that turns one episode into a Transcript.

Termination reasons, checked in this order after each message:
- `user_stop`: the user said a stop token (`###STOP###`, also τ²'s `###TRANSFER###` / `###OUT-OF-SCOPE###`).
- `infrastructure_error`: the environment could not be reset, a call raised, or a call failed and left
  the worker dead (servers.Environment reports that as `alive == False`: crash, timeout, protocol
  break). Calls left in that assistant message are answered "not executed" so the log stays well-formed.
- `too_many_errors`: cumulative tool errors (environment errors plus malformed arguments) reached
  `max_tool_errors`; counted after every call of the assistant message has its result.
- `agent_stop`: the assistant's text contains `###STOP###` or `###TRANSFER###` (a hand-off to a human
  ends the episode); its tool calls, if any, run first.
- `max_turns`: `max_turns` user/assistant messages were written (tool results do not count) and the
  episode would need another one.
  Also when the agent's or user's provider could not be used at all (no key, unreachable, outage):
  such an episode could not run, so it is not a result (the error starts with "provider unavailable").
- `agent_error` / `user_error`: the agent or user raised, or produced an empty message.
"""
from __future__ import annotations

import asyncio
import json
import operator
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from skiller.rollout.base import AGENT_STOP_TOKENS, Agent, AgentToolCall, EpisodeEnvironment, User
from skiller.contract.environment import ToolResult, ToolSpec
from skiller.servers.episode import Termination, ToolCallRecord, Transcript
from skiller.servers.task import Task, content_id
from skiller.llm.interface import ProviderUnavailable

__all__ = ["PROVIDER_UNAVAILABLE", "run_episode", "run_many"]

log = structlog.get_logger(__name__)
_to_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(x, ensure_ascii=False), one encoder for all


class _Episode:
    """The growing record of one episode."""

    def __init__(self, task: Task, trial: int, agent: Agent, user: User, system_prompt: str) -> None:
        self.task, self.trial, self.agent = task, trial, agent
        self.models = {role: model for role, model in (("agent", agent.model), ("user", user.model)) if model}
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
        self.tools: list[dict[str, Any]] = []
        self.records: list[ToolCallRecord] = []
        self.usage = {"agent_input_tokens": 0, "agent_output_tokens": 0, "user_input_tokens": 0,
                      "user_output_tokens": 0}
        self.turns = 0
        self.errors = 0

    def finish(self, termination: Termination, error: str | None = None) -> Transcript:
        identity = {"task": self.task.id, "trial": self.trial, "agent": self.agent.name, "models": self.models}
        log.debug("rollout.episode", task=self.task.id, trial=self.trial, agent=self.agent.name,
                  termination=termination, turns=self.turns, tool_calls=len(self.records))
        return Transcript(id=content_id(identity), task_id=self.task.id, trial=self.trial,
                          domains=list(self.task.domains), environment=self.task.environment,
                          agent=self.agent.name, models=self.models, messages=self.messages, tools=self.tools,
                          tool_calls=self.records, termination=termination, usage=self.usage, error=error)


async def run_episode(task: Task, env: EpisodeEnvironment, agent: Agent, user: User, *, system_prompt: str,
                      max_turns: int = 40, max_tool_errors: int = 5, trial: int = 0) -> Transcript:
    """Run one episode from a freshly reset environment; never raises for agent, user or environment
    failures (they become the termination reason), only for cancellation."""
    ep = _Episode(task, trial, agent, user, system_prompt)
    try:
        areset = getattr(env, "areset", None)  # servers.Environment waits on the loop; others in a thread
        await (areset() if areset is not None else asyncio.to_thread(env.reset))
        ep.tools = _openai_tools(env)
    except Exception as exc:  # noqa: BLE001 - any failure here is the environment's
        return ep.finish("infrastructure_error", f"reset failed: {_describe(exc)}")
    while True:
        if ep.turns >= max_turns:
            return ep.finish("max_turns")
        try:
            said = await user.respond(list(ep.messages))
        except ProviderUnavailable as exc:
            return ep.finish("infrastructure_error", provider_unavailable(exc))
        except Exception as exc:  # noqa: BLE001 - a user failure ends the episode, it is data
            return ep.finish("user_error", _describe(exc))
        ep.usage["user_input_tokens"] += said.input_tokens
        ep.usage["user_output_tokens"] += said.output_tokens
        if not said.text.strip() and not said.stop:
            return ep.finish("user_error", "the user produced an empty message")
        ep.messages.append({"role": "user", "content": said.text})
        ep.turns += 1
        if said.stop:
            return ep.finish("user_stop")
        # The agent keeps the turn while it calls tools; its first message without calls goes to the user.
        while True:
            if ep.turns >= max_turns:
                return ep.finish("max_turns")
            try:
                turn = await agent.respond(list(ep.messages), ep.tools)
            except ProviderUnavailable as exc:
                return ep.finish("infrastructure_error", provider_unavailable(exc))
            except Exception as exc:  # noqa: BLE001
                return ep.finish("agent_error", _describe(exc))
            ep.usage["agent_input_tokens"] += turn.input_tokens
            ep.usage["agent_output_tokens"] += turn.output_tokens
            if not turn.text.strip() and not turn.tool_calls:
                return ep.finish("agent_error", "the agent produced an empty message")
            # Ids are renumbered per episode: unique, and deterministic whatever the model returned.
            calls = [(f"call_{len(ep.records) + n}", call) for n, call in enumerate(turn.tool_calls, 1)]
            message: dict[str, Any] = {"role": "assistant", "content": turn.text}
            if calls:
                message["tool_calls"] = [{"id": cid, "type": "function",
                                          "function": {"name": c.name, "arguments": c.arguments}}
                                         for cid, c in calls]
            ep.messages.append(message)
            ep.turns += 1
            broken = await _run_calls(ep, env, calls)
            if broken is not None:
                return ep.finish("infrastructure_error", broken)
            if ep.errors >= max_tool_errors:
                return ep.finish("too_many_errors", f"{ep.errors} tool errors; last: {ep.records[-1].error}")
            if any(token in turn.text for token in AGENT_STOP_TOKENS):
                return ep.finish("agent_stop")
            if not calls:
                break


async def _run_calls(ep: _Episode, env: EpisodeEnvironment, calls: list[tuple[str, AgentToolCall]]) -> str | None:
    """Execute the calls in order, appending tool messages and records; the infrastructure error, if any."""
    broken: str | None = None
    for call_id, call in calls:
        arguments, problem = _parse_arguments(call)
        if broken is not None:
            result = ToolResult(ok=False, error=f"not executed: {broken}")
        elif problem is not None:
            result = ToolResult(ok=False, error=problem)
        else:
            try:
                acall = getattr(env, "acall", None)
                result = await (acall(call.name, arguments) if acall is not None
                                else asyncio.to_thread(env.call, call.name, arguments))
            except Exception as exc:  # noqa: BLE001
                result = ToolResult(ok=False, error=f"environment failed: {_describe(exc)}")
                broken = result.error
            if not result.ok and broken is None and not getattr(env, "alive", True):
                broken = result.error
        content = result.value if result.ok else {"error": result.error}
        ep.messages.append({"role": "tool", "tool_call_id": call_id,
                            "content": _to_json(content)})
        ep.records.append(ToolCallRecord(id=call_id, name=call.name, arguments=arguments,
                                         raw_arguments=call.arguments, ok=result.ok,
                                         output=result.value, error=result.error))
        ep.errors += not result.ok
    return broken


_OPENAI_TOOLS: weakref.WeakKeyDictionary[Any, tuple[list[ToolSpec], list[dict[str, Any]]]] = weakref.WeakKeyDictionary()


def _openai_tools(env: EpisodeEnvironment) -> list[dict[str, Any]]:
    """The environment's tools in OpenAI form: one list per environment while its tools stay the same
    objects, so an agent reads their labels once for all the episodes run on it."""
    specs = env.tools
    try:
        known = _OPENAI_TOOLS.get(env)
    except TypeError:  # an environment that cannot be weakly referenced: no reuse
        known = None
    if known is not None and len(known[0]) == len(specs) and all(map(operator.is_, known[0], specs)):
        return known[1]
    tools = [spec.openai() for spec in specs]
    try:
        _OPENAI_TOOLS[env] = (specs, tools)
    except TypeError:
        pass
    return tools


def _parse_arguments(call: AgentToolCall) -> tuple[dict[str, Any] | None, str | None]:
    raw = call.arguments.strip()
    if not raw:
        return {}, None  # some models send "" for a tool without parameters
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return None, f"invalid arguments for {call.name}: not valid JSON ({exc})"
    if not isinstance(value, dict):
        return None, f"invalid arguments for {call.name}: arguments must be a JSON object"
    return value, None


PROVIDER_UNAVAILABLE = "provider unavailable: "


def provider_unavailable(exc: BaseException) -> str:
    """The error of an episode whose model could not be reached (one line)."""
    return PROVIDER_UNAVAILABLE + " ".join(str(exc).split())[:500]


def _describe(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


EnvFactory = Callable[[Task], EpisodeEnvironment]
AgentFactory = Callable[[Task, int], Agent]
UserFactory = Callable[[Task, int], User]


class _EnvPool:
    """Environments reused across episodes of the same environment and initial state (each episode
    resets its env first); at most `concurrency` exist per key, all closed at the end."""

    def __init__(self, make_env: EnvFactory) -> None:
        self._make_env = make_env
        self._idle: dict[tuple[str, str], list[EpisodeEnvironment]] = {}
        self._all: list[EpisodeEnvironment] = []

    @staticmethod
    def _key(task: Task) -> tuple[str, str]:
        return task.environment, task.initial_state_hash

    async def take(self, task: Task) -> EpisodeEnvironment:
        idle = self._idle.get(self._key(task))
        if idle:
            return idle.pop()
        env = await asyncio.to_thread(self._make_env, task)
        self._all.append(env)
        return env

    def give(self, task: Task, env: EpisodeEnvironment) -> None:
        self._idle.setdefault(self._key(task), []).append(env)

    def close(self) -> None:
        for env in self._all:
            env.close()


async def run_many(tasks: Iterable[Task], make_env: EnvFactory, make_agent: AgentFactory, make_user: UserFactory,
                   trials: int = 1, concurrency: int = 4, *, system_prompt: str | Callable[[Task], str] = "",
                   max_turns: int = 40, max_tool_errors: int = 5) -> list[Transcript]:
    """Every (task, trial) episode, at most `concurrency` at a time; sorted by (task id, trial).

    `make_agent(task, trial)` and `make_user(task, trial)` build fresh participants per episode (seed
    a BuiltinUser with the trial); `make_env(task)` is called only when no idle environment fits. A
    failing `make_env` gives that episode an `infrastructure_error` transcript."""
    semaphore = asyncio.Semaphore(concurrency)
    pool = _EnvPool(make_env)

    async def one(task: Task, trial: int) -> Transcript:
        async with semaphore:
            agent, user = make_agent(task, trial), make_user(task, trial)
            prompt = system_prompt(task) if callable(system_prompt) else system_prompt
            try:
                env = await pool.take(task)
            except Exception as exc:  # noqa: BLE001
                return _Episode(task, trial, agent, user, prompt).finish(
                    "infrastructure_error", f"environment failed to start: {_describe(exc)}")
            try:
                return await run_episode(task, env, agent, user, system_prompt=prompt, max_turns=max_turns,
                                         max_tool_errors=max_tool_errors, trial=trial)
            finally:
                pool.give(task, env)

    try:
        async with asyncio.TaskGroup() as group:
            running = [group.create_task(one(task, trial)) for task in tasks for trial in range(trials)]
    finally:
        pool.close()
    return sorted((t.result() for t in running), key=lambda tr: (tr.task_id, tr.trial))
