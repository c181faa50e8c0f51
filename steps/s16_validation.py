"""s16: execution-based filtering: run the golden trajectory on a fresh database and keep only tasks that verify."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

from skiller.servers.environment import Environment
from skiller.servers.pool import EnvironmentPool
from skiller.servers.task import EnvironmentBundle, GoldenAction
from skiller.steps.base import Frozen, StepContext, StepOutput, step
from skiller.contract.placeholders import Unresolved, resolve
from skiller.steps.s14_task_templates import ScoredTemplate
from skiller.steps.s15_instances import Instance


class ValidatedTask(Frozen):
    actions: list[GoldenAction]  # with the outputs they produced
    communicate_info: list[str]
    initial_state_hash: str
    gold_state_hash: str
    refusal_error: str | None = None  # what the environment answered to the forbidden call


class S16Input(Frozen):
    template: ScoredTemplate
    instance: Instance
    environment: EnvironmentBundle
    database: bytes


class S16Output(StepOutput):
    validated: ValidatedTask | None = None


def _reject(reason: str, **detail: Any) -> S16Output:
    return S16Output(trigger="reject", payload={"reason": reason, **detail})


def open_environment(bundle: EnvironmentBundle, database: bytes, sandbox,
                     pool: EnvironmentPool | None = None) -> AbstractContextManager[Environment]:
    """The bundle's environment on a fresh copy of `database`: a warm one from `pool`, else a new worker."""
    if pool is not None:
        return pool.lease(list(bundle.modules), database)
    return Environment.start(list(bundle.modules), database, sandbox=sandbox)


@asynccontextmanager
async def entered_environment(bundle: EnvironmentBundle, database: bytes, sandbox,
                              pool: EnvironmentPool | None = None, brief: bool = False) -> AsyncIterator[Environment]:
    """`open_environment` for a step's coroutine: a worker that has to start starts in a thread, so the
    event loop keeps serving other steps' model requests meanwhile (`brief`: see `EnvironmentPool.alease`)."""
    if pool is not None:
        async with pool.alease(list(bundle.modules), database, brief=brief) as env:
            yield env
        return
    env = await asyncio.to_thread(Environment.start, list(bundle.modules), database, sandbox=sandbox)
    with env:
        yield env


def _text(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


@step("s16", machine="task", source="instances_selected", triggers={"validate": "validated", "reject": "rejected"})
async def run(inputs: S16Input, ctx: StepContext) -> S16Output:
    template, bindings = inputs.template.template, inputs.instance.bindings
    async with entered_environment(inputs.environment, inputs.database, ctx.sandbox, ctx.environments,
                                   brief=True) as env:  # nothing below awaits while it holds the environment
        modes = {t.name: t.mode for t in env.tools}
        initial = env.state_hash()
        outputs: list[Any] = []
        actions: list[GoldenAction] = []
        for i, call in enumerate(template.trajectory, start=1):
            try:
                args = resolve(call.arguments, bindings, outputs, ctx.clock)
            except Unresolved as exc:
                return _reject("unresolved", call=i, tool=call.tool, error=str(exc))
            result = env.call(call.tool, args)
            if not result.ok:
                return _reject("golden_call_failed", call=i, tool=call.tool, arguments=args, error=result.error)
            outputs.append(result.value)
            actions.append(GoldenAction(action_id=f"a{i}", name=call.tool, arguments=args,
                                        mode=modes.get(call.tool, "read"), expected=result.value))
        gold = env.state_hash()
        if template.kind == "write" and gold == initial:
            return _reject("no_state_change", error="the golden trajectory leaves the database as it was")
        wrote = any(a.mode == "write" for a in actions)  # a refusal may follow a compliant write
        if template.kind == "refusal" and wrote and gold == initial:
            return _reject("no_state_change", error="the compliant writes before the refusal leave the database as it was")
        if template.kind != "write" and gold != initial and not (template.kind == "refusal" and wrote):
            return _reject("read_changed_state", error=f"a {template.kind} task changed the database")
        refusal_error = None
        if template.kind == "refusal":
            try:
                args = resolve(template.forbidden.arguments, bindings, outputs, ctx.clock)
            except Unresolved as exc:
                return _reject("unresolved", call="forbidden", tool=template.forbidden.tool, error=str(exc))
            result = env.call(template.forbidden.tool, args)
            if result.ok or f"[{template.violated_rule}]" not in (result.error or ""):
                return _reject("not_forbidden", tool=template.forbidden.tool, arguments=args,
                               error=result.error or f"the call succeeded: rule {template.violated_rule} does not stop it")
            if env.state_hash() != gold:
                return _reject("refused_call_changed_state", tool=template.forbidden.tool, error=result.error)
            refusal_error = result.error
        try:
            communicate = [_text(resolve(c, bindings, outputs, ctx.clock)) for c in template.communicate]
        except Unresolved as exc:
            return _reject("unresolved", call="communicate", error=str(exc))
    validated = ValidatedTask(actions=actions, communicate_info=communicate, initial_state_hash=initial,
                              gold_state_hash=gold, refusal_error=refusal_error)
    return S16Output(validated=validated, trigger="validate", payload={"calls": len(actions), "gold": gold[:16]})
