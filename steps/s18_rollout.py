"""s18: roll out a task: simulated user and assistant over the environment, `trials` episodes per campaign."""
from __future__ import annotations

import hashlib
import json

from skiller.rollout import (PROVIDER_UNAVAILABLE, BuiltinUser, ChatAgent, ChatUser, NoopAgent, OracleAgent,
                     agent_system_prompt, run_episode)
from skiller.servers.episode import Transcript
from skiller.servers.task import EnvironmentBundle, Task
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.steps.s16_validation import entered_environment


class Transcripts(Frozen):
    campaign: str
    agent: str
    items: list[Transcript]


def campaign(config) -> str:
    """What makes rollouts comparable: agent, user, trials and the models behind them."""
    r = config.rollout
    models = config.provider.anthropic.model_dump() if "anthropic" in (r.agent, r.user) else {}
    parts = [r.agent, r.user, r.trials, r.max_turns, r.max_tool_errors, models]
    if "openai" in (r.agent, r.user):  # appended, so campaigns without it keep their keys
        parts.append(config.provider.openai.model_dump())
    raw = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _new_campaign(view, config, proj) -> bool:
    return view.payload.get("campaign") != campaign(config)


class S18Input(Frozen):
    task: Task
    environment: EnvironmentBundle
    database: bytes


class S18Output(StepOutput):
    transcripts: Transcripts


def _agent(task: Task, ctx: StepContext):
    kind = ctx.config.rollout.agent
    if kind == "oracle":
        return OracleAgent(task)
    if kind == "noop":
        return NoopAgent()
    return ChatAgent(_chat(ctx, "agent", kind))


def _user(task: Task, trial: int, ctx: StepContext):
    kind = ctx.config.rollout.user
    if kind == "builtin":
        return BuiltinUser(task, seed=ctx.config.seed + trial)
    return ChatUser(_chat(ctx, "user", kind), task)


def _chat(ctx: StepContext, who: str, kind: str):
    chat = (ctx.chat or {}).get(kind)
    if chat is None:
        raise StepError("config", f"rollout.{who}={kind} needs provider.{kind} settings")
    return chat


@step("s18", machine="task", source="instantiated", triggers={"roll_out": "rolled_out"}, ready=_new_campaign)
async def run(inputs: S18Input, ctx: StepContext) -> S18Output:
    return await _roll_out(inputs, ctx)


@step("s18.again", machine="task", source="evaluated", triggers={"roll_out_again": "rolled_out"}, ready=_new_campaign)
async def again(inputs: S18Input, ctx: StepContext) -> S18Output:
    """A new campaign (another agent, more trials) on a task already evaluated under an earlier one."""
    return await _roll_out(inputs, ctx)


async def _roll_out(inputs: S18Input, ctx: StepContext) -> S18Output:
    cfg = ctx.config.rollout
    items = []
    async with entered_environment(inputs.environment, inputs.database, ctx.sandbox, ctx.environments) as env:
        for trial in range(cfg.trials):
            items.append(await run_episode(
                inputs.task, env, _agent(inputs.task, ctx), _user(inputs.task, trial, ctx),
                system_prompt=agent_system_prompt(inputs.environment.policy, ctx.clock), max_turns=cfg.max_turns,
                max_tool_errors=cfg.max_tool_errors, trial=trial))
    _could_run(items)
    key = campaign(ctx.config)
    ends = sorted({t.termination for t in items})
    return S18Output(transcripts=Transcripts(campaign=key, agent=cfg.agent, items=items),
                     payload={"campaign": key, "agent": cfg.agent, "trials": len(items), "terminations": ends})


def _could_run(items: list[Transcript]) -> None:
    """Rollouts that could not run are not results: when no episode of the task ran, the step fails
    (the task keeps its previous campaign and the next rollout retries it). A single episode that
    could not run is kept, marked `infrastructure_error`: excluded from pass^k and from SFT."""
    if not items or any(t.termination != "infrastructure_error" for t in items):
        return
    error = items[0].error or "the environment could not run"
    if error.startswith(PROVIDER_UNAVAILABLE):
        raise StepError("provider", "rollout: " + error)
    raise StepError("infrastructure", "rollout: " + error)
