"""Small builders for evaluator tests: Library tasks with a replayed gold hash, and rollout-like transcripts."""
from __future__ import annotations

import json
from typing import Any

from skiller.servers import Environment
from skiller.servers.episode import Termination, ToolCallRecord, Transcript
from skiller.servers.task import EvaluationCriteria, GoldenAction, Instructions, Persona, Task, UserScenario

_SCENARIO = UserScenario(
    persona=Persona(name="Ada", style="curt", patience="medium", verbosity="terse",
                    language_register="neutral"),
    instructions=Instructions(domain="Library", reason_for_call="a library errand", known_info="my member id",
                              unknown_info="", task_instructions="be brief"))


def make_task(env: Environment, task_id: str, actions: list[dict[str, Any]], *, basis: list[str],
              communicate: list[str] | None = None, nl: list[str] | None = None, kind: str = "write") -> Task:
    """A Library task whose gold hash is the state after running every golden action on a fresh DB."""
    modes = {t.name: t.mode for t in env.tools}
    golden = [GoldenAction(action_id=a.get("action_id", f"a{i}"), mode=modes[a["name"]], **{
        k: v for k, v in a.items() if k != "action_id"}) for i, a in enumerate(actions, 1)]
    env.reset()
    initial = env.state_hash()
    for action in golden:
        result = env.call(action.name, action.arguments)
        assert result.ok, f"golden action {action.action_id} must replay: {result.error}"
    gold = env.state_hash()
    env.reset()
    return Task(id=task_id, domains=["Library"], environment="Library", kind=kind, description=task_id,
                user_scenario=_SCENARIO, first_query="Hello.",
                evaluation_criteria=EvaluationCriteria(actions=golden, communicate_info=communicate or [],
                                                       nl_assertions=nl or [], reward_basis=basis),
                initial_state_hash=initial, gold_state_hash=gold)


def run_calls(env: Environment, calls: list[dict[str, Any]]) -> list[ToolCallRecord]:
    """Make the calls on a fresh environment, as a rollout would, and record them. A call may override
    what is recorded with `ok` / `output` (a transcript that disagrees with its environment)."""
    env.reset()
    records = []
    for i, call in enumerate(calls, 1):
        result = env.call(call["name"], call.get("arguments", {}))
        ok = call.get("ok", result.ok)
        output = call.get("output", result.value)
        records.append(ToolCallRecord(id=f"call_{i}", name=call["name"], arguments=call.get("arguments", {}),
                                      raw_arguments=json.dumps(call.get("arguments", {})), ok=ok,
                                      output=output if ok else None,
                                      error=None if ok else (result.error or "recorded as failed")))
    env.reset()
    return records


def make_transcript(task: Task, records: list[ToolCallRecord], said: list[str], *,
                    user_said: list[str] | None = None, termination: Termination = "agent_stop",
                    trial: int = 0, error: str | None = None) -> Transcript:
    """OpenAI-style messages: the user's lines, each tool call with its result, then the assistant's lines."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a library assistant."},
                                      {"role": "user", "content": task.first_query}]
    messages += [{"role": "user", "content": text} for text in user_said or []]
    for record in records:
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": record.id, "type": "function",
             "function": {"name": record.name, "arguments": record.raw_arguments}}]})
        content = json.dumps(record.output) if record.ok else f"Error: {record.error}"
        messages.append({"role": "tool", "tool_call_id": record.id, "content": content})
    messages += [{"role": "assistant", "content": text} for text in said]
    return Transcript(id=f"{task.id}-t{trial}", task_id=task.id, trial=trial, domains=task.domains,
                      environment=task.environment, agent="scripted-test", messages=messages, tools=[],
                      tool_calls=records, termination=termination, error=error)
