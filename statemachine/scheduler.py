"""The scheduler: advances every ready machine concurrently, commits one transaction per transition, folds what it wrote."""
from __future__ import annotations

import asyncio
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel

from skiller.events import NOT_THE_MODELS_FAULT, MachineCreated, MachineView, Projection, StepFailed, Transitioned
from skiller.statemachine.executor import CachePut, Executor, LocalExecutor, Resources, StepJob, failure
from skiller.statemachine.machines import Unit
from skiller.statemachine.ready import ReadySet
from skiller.steps import MEMBERS_PREFIX, MachineIndex, MachineSummary, StepError, StepOutput, StepSpec, load_all
from skiller.store import Artifact, Store

_MODELS_KEPT = 256


@dataclass
class Outcome:
    spec: StepSpec
    output: StepOutput | None
    record: list
    error: StepFailed | None = None
    cache: list[CachePut] = field(default_factory=list)


@dataclass
class Scheduler:
    store: Store
    config: Any
    llm: Any  # LLMClient
    sandbox: Any
    chat: Any = None  # chat-capable providers by name, for a model agent or user in rollouts
    environments: Any = None  # servers.EnvironmentPool the environment steps lease warm workers from
    executor: Executor | None = None  # where step work runs; None: in this process, with the resources above
    run_id: str = ""
    max_parallel: int = 4
    allow: Callable[[MachineView, Projection], bool] = lambda m, p: True  # which machines may advance
    on_progress: Callable[[Projection], None] = lambda p: None
    failed: set[str] = field(default_factory=set)  # streams that failed during this run
    _models: dict[tuple[str, type], BaseModel] = field(default_factory=dict)  # validated frozen artifacts, by sha
    halted: str | None = None  # why no new work starts: the infrastructure or provider is down

    def __post_init__(self) -> None:
        self.registry = load_all()
        if self.executor is None:
            self.executor = LocalExecutor(Resources(self.config, self.llm, self.sandbox, self.chat or {},
                                                    self.environments))

    async def run(self) -> Projection:
        """Advance until no machine is ready; returns the final projection."""
        inflight: dict[asyncio.Task, MachineView] = {}
        busy: set[str] = set()
        proj = self.store.projection()
        ready = ReadySet(self.registry, self.config, self.allow, lambda s: s in busy or s in self.failed)
        ready.check(proj, proj.machines)
        while True:
            while not self.halted and len(inflight) < self.max_parallel and (stream := ready.pop()) is not None:
                view = proj.machines[stream]
                busy.add(stream)
                inflight[asyncio.create_task(self._advance(view, proj))] = view
            if not inflight:
                return proj
            done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            touched: set[str] = set()
            for task in sorted(done, key=lambda t: inflight[t].stream):  # stable commit order
                view = inflight.pop(task)
                busy.discard(view.stream)
                touched |= await self._commit(view, task.result())
            proj = self.store.projection()  # folds only the events just appended
            ready.check(proj, touched)
            self.on_progress(proj)

    async def _advance(self, view: MachineView, proj: Projection) -> Outcome:
        spec = self.registry[(view.kind, view.state)]
        try:
            inputs = self._inputs(spec, view, proj)  # read here: the driver alone touches the store
        except StepError as exc:
            return Outcome(spec, None, [], failure(view.stream, spec.name, exc.kind, str(exc)))
        except Exception as exc:  # an input the log cannot give as the step declares it: a bug, not the model's
            return Outcome(spec, None, [], failure(view.stream, spec.name, "internal", f"{type(exc).__name__}: {exc}"))
        result = await self.executor.run(StepJob(view.stream, view.kind, view.state, inputs))
        return Outcome(spec, result.output, result.record, result.error, result.cache)

    def _inputs(self, spec: StepSpec, view: MachineView, proj: Projection) -> BaseModel:
        """Fill the step's input model by field name: machine inputs, then artifacts of the
        machine, its parent and the world, then the last transition's payload."""
        holders = [view] + [proj.machines[s] for s in (view.inputs.get("parent"), "world") if s in proj.machines]
        values: dict[str, Any] = {}
        for name, info in spec.input_model.model_fields.items():
            holder = next((h for h in holders if name in h.artifacts), None)
            if name == "machines":
                # A fusion's steps see its members' machines only: the whole workspace (13,000 machines at volume)
                # summarised and shipped to a worker for each of 430 fusions was the driver's bottleneck.
                members = view.inputs.get("members")
                values[name] = MachineIndex(machines={
                    s: MachineSummary(kind=m.kind, state=m.state, inputs=m.inputs, payload=m.payload)
                    for s, m in proj.machines.items() if not members or m.inputs.get("domain") in members})
            elif name.startswith(MEMBERS_PREFIX):
                artifact = name[len(MEMBERS_PREFIX):]
                model = typing.get_args(info.annotation)[1]
                members = view.inputs.get("members") or sorted(  # the world gathers from every domain
                    m.inputs["domain"] for m in proj.of_kind("domain") if artifact in m.artifacts)
                values[name] = {d: self._load(proj.machines[f"domain:{d}"].artifacts[artifact], model)
                                for d in members}
            elif name in view.inputs:
                values[name] = view.inputs[name]
            elif holder is not None:
                values[name] = self._load(holder.artifacts[name], info.annotation)
            elif name in view.payload:
                values[name] = view.payload[name]
            elif not info.is_required():
                continue
            else:
                raise StepError("internal", f"{spec.name}: input '{name}' is not available to {view.stream}")
        return spec.input_model.model_validate(values)

    def _load(self, sha: str, annotation: Any) -> Any:
        if annotation is bytes:
            return self.store.artifact(sha)
        if annotation is str:
            return self.store.artifact(sha).decode()
        model = typing.cast(type[BaseModel], next(
            (a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)),
            annotation))  # `X | None` fields
        if not model.model_config.get("frozen"):
            return model.model_validate_json(self.store.artifact(sha))
        # A task's steps read its environment's bundle, summary, template and instance again and again: a frozen
        # model of one content is validated once (the artifact's sha names the content).
        key = (sha, model)
        if (hit := self._models.pop(key, None)) is None:
            hit = model.model_validate_json(self.store.artifact(sha))
            if len(self._models) >= _MODELS_KEPT:
                self._models.pop(next(iter(self._models)))
        self._models[key] = hit  # most recent last
        return hit

    async def _commit(self, view: MachineView, outcome: Outcome) -> set[str]:
        """Append the outcome's events; returns the streams they touched (whose readiness may change)."""
        touched = {view.stream}
        for put in outcome.cache:  # answers computed by a remote worker, cached before the events that record them
            self.store.cache_put(put.key, put.provider, put.model, put.purpose, put.response, put.input_tokens,
                                 put.output_tokens)
        if outcome.error is not None:
            self.failed.add(view.stream)
            self.store.append([*outcome.record, outcome.error], run_id=self.run_id)
            if outcome.error.kind in NOT_THE_MODELS_FAULT and self.halted is None:
                self.halted = outcome.error.error  # every further step would meet the same wall
            return touched
        output = outcome.output
        triggers = outcome.spec.triggers
        trigger = output.trigger or next(iter(triggers))
        if trigger not in triggers:
            raise RuntimeError(f"{outcome.spec.name} chose unknown trigger {trigger}")

        async def write(unit: Unit, event) -> None:
            artifacts = _artifacts_of(output, exclude=set(StepOutput.model_fields))
            events: list = list(outcome.record)
            events.append(Transitioned(stream=view.stream, trigger=trigger, source=event.transition.source,
                                       dest=event.transition.dest, payload=output.payload,
                                       artifacts={a.name: a.sha256 for a in artifacts}))
            for spawn in output.spawn:
                touched.add(spawn.stream)
                spawned = [_artifact(n, v) for n, v in spawn.artifacts.items()]
                artifacts.extend(spawned)
                events.append(MachineCreated(stream=spawn.stream, kind=spawn.kind, initial=spawn.initial,
                                             inputs=spawn.inputs, artifacts={a.name: a.sha256 for a in spawned}))
            self.store.append(events, artifacts, run_id=self.run_id)

        async with Unit(view.stream, view.kind, view.state, write) as unit:
            await unit.trigger(trigger)  # type: ignore[attr-defined] - added by the machine
        return touched


def _artifact(name: str, value: Any) -> Artifact:
    if isinstance(value, BaseModel):
        return Artifact.of_model(name, value)
    if isinstance(value, bytes):
        return Artifact(name=name, kind=name, media_type="application/octet-stream", content=value)
    if isinstance(value, str):
        return Artifact.of_text(name, name, value)
    raise TypeError(f"artifact {name} has unsupported type {type(value).__name__}")


def _artifacts_of(output: StepOutput, exclude: set[str]) -> list[Artifact]:
    return [_artifact(name, getattr(output, name)) for name in type(output).model_fields
            if name not in exclude and getattr(output, name) is not None]
