"""skiller.rollout.orchestrator: the oracle, the noop baseline, every termination reason and run_many's order."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any


from skiller.rollout import (
    STOP,
    AgentTurn,
    BuiltinUser,
    NoopAgent,
    OracleAgent,
    run_episode,
    run_many,
    write_jsonl,
)
from skiller.evaluator import check_action, check_communicate
from skiller.servers import Environment
from skiller.contract.dialogue import is_yes
from skiller.servers.task import Mistake, Task
from tests.rollout.conftest import start_library
from tests.rollout.support import (
    POLICY,
    RaisingAgent,
    RaisingUser,
    ScriptedAgent,
    action,
    borrow_task,
    call,
    make_task,
    refusal_task,
)

DIE = '''

def die(db):
    import os
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


TOOLS["die"] = {"fn": die, "mode": "read", "description": "crash", "parameters": {"type": "object", "properties": {}}}
'''


def episode(task: Task, env: Any, agent: Any, user: Any = None, **options: Any):
    return asyncio.run(run_episode(task, env, agent, user or BuiltinUser(task), system_prompt=POLICY, **options))


def _spoken(transcript, role: str) -> list[str]:
    return [m["content"] for m in transcript.messages if m["role"] == role and m["content"]]


def test_oracle_reaches_the_gold_state_in_a_dialogue_and_the_user_stops(env: Environment) -> None:
    task = borrow_task(env)
    transcript = episode(task, env, OracleAgent(task))

    assert transcript.termination == "user_stop" and transcript.error is None
    assert env.state_hash() == task.gold_state_hash != task.initial_state_hash
    assert transcript.messages[0] == {"role": "system", "content": POLICY}
    assert transcript.messages[1] == {"role": "user", "content": task.first_query}
    assert [r.arguments for r in transcript.tool_calls] == [a.arguments for a in task.golden_actions]
    assert all(r.ok for r in transcript.tool_calls) and [r.id for r in transcript.tool_calls] == [
        "call_1", "call_2", "call_3"]
    said = _spoken(transcript, "assistant")
    assert said[0].startswith(("Hello", "Hi", "Good day")) and "person id" in said[0]  # greets, identifies
    assert len(_spoken(transcript, "user")) >= 5  # intent, id and name, author, yes, thanks
    final = transcript.messages[-2]["content"]
    assert "LN-0005" in final and "March 16, 2026" in final  # a date as people write it
    assert check_communicate(task, transcript).passed
    assert not any(re.search(r'[{\[]\s*"\w+"\s*:', text) for text in said), said  # never raw JSON
    assert transcript.messages[-1]["content"].endswith(STOP)
    assert transcript.agent == "oracle" and transcript.models == {}


def test_oracle_waits_for_an_explicit_yes_before_the_write(env: Environment) -> None:
    task = borrow_task(env)
    messages = episode(task, env, OracleAgent(task)).messages
    at = next(i for i, m in enumerate(messages) for c in m.get("tool_calls") or []
              if c["function"]["name"] == "borrow_book")
    user = max(i for i in range(at) if messages[i]["role"] == "user")
    asked = max(i for i in range(user) if messages[i]["role"] == "assistant" and messages[i]["content"])
    assert is_yes(messages[user]["content"])
    assert messages[asked]["content"].endswith("?") and "BK-005" in messages[asked]["content"]
    assert not any(m.get("tool_calls") for m in messages[asked:at])


def test_oracle_recovers_from_the_users_wrong_reference(env: Environment) -> None:
    task = borrow_task(env, mistake=Mistake(fact="person id", wrong="P-100"))
    transcript = episode(task, env, OracleAgent(task))

    failed, *rest = transcript.tool_calls
    assert not failed.ok and failed.arguments == {"person_id": "P-100"} and "P-100" in failed.error
    assert [r.arguments for r in rest] == [a.arguments for a in task.golden_actions] and all(r.ok for r in rest)
    told = next(m["content"] for m in transcript.messages if m["role"] == "assistant" and "P-100" in m["content"])
    assert "could not find" in told and "person id" in told and told.endswith("?")
    assert env.state_hash() == task.gold_state_hash and transcript.termination == "user_stop"
    assert check_action(task, transcript).passed  # a failed extra read matches nothing and costs nothing


def test_oracle_recovers_when_a_misread_reference_finds_nothing_in_a_search(env: Environment) -> None:
    task = borrow_task(env, mistake=Mistake(fact="author", wrong="Knutz"))
    transcript = episode(task, env, OracleAgent(task))

    searches = [r for r in transcript.tool_calls if r.name == "search_books"]
    assert [(r.ok, r.output) for r in searches[:1]] == [(True, [])] and searches[0].arguments["query"] == "Knutz"
    told = next(m["content"] for m in transcript.messages if m["role"] == "assistant" and "Knutz" in m["content"])
    assert "could not find" in told and "author" in told and "system says" not in told  # nothing failed, nothing found
    assert transcript.termination == "user_stop" and env.state_hash() == task.gold_state_hash
    assert searches[-1].arguments == {"query": "Knuth", "available_only": True}


def test_oracle_refuses_a_refusal_task_stating_the_rule_in_words(env: Environment) -> None:
    task = refusal_task(env)
    transcript = episode(task, env, OracleAgent(task))

    assert transcript.termination == "user_stop"
    refusal = next(t for t in _spoken(transcript, "assistant") if "LIB-1" in t)
    assert "can't" in refusal and "a member may have at most 2 active loans" in refusal
    assert "lend a book" in refusal  # what was asked, in the tool's own words
    assert env.state_hash() == task.initial_state_hash == task.gold_state_hash
    assert [r.name for r in transcript.tool_calls] == ["get_member"]


def test_noop_agent_ends_without_writes(env: Environment) -> None:
    task = borrow_task(env)
    transcript = episode(task, env, NoopAgent())

    assert transcript.termination == "user_stop" and transcript.tool_calls == []
    assert env.state_hash() == task.initial_state_hash != task.gold_state_hash
    assert [m["role"] for m in transcript.messages] == ["system", "user", "assistant", "user"]


def test_each_episode_starts_from_a_reset_environment(env: Environment) -> None:
    task = borrow_task(env)
    episode(task, env, OracleAgent(task))
    again = episode(task, env, OracleAgent(task))
    assert again.tool_calls[-1].ok and again.tool_calls[-1].output["loan_id"] == "LN-0005"


def test_max_turns_ends_an_agent_that_never_stops_calling_tools(env: Environment) -> None:
    task = borrow_task(env)
    looping = ScriptedAgent(AgentTurn(tool_calls=[call("get_member", '{"person_id": "P-001"}')]))
    transcript = episode(task, env, looping, max_turns=4)

    assert transcript.termination == "max_turns" and transcript.premature
    spoken = [m for m in transcript.messages if m["role"] in ("user", "assistant")]
    assert len(spoken) == 4 and len(transcript.tool_calls) == 3
    assert [r.id for r in transcript.tool_calls] == ["call_1", "call_2", "call_3"]  # model ids renumbered


def test_too_many_errors_counts_tool_errors_and_malformed_arguments(env: Environment) -> None:
    task = borrow_task(env)
    agent = ScriptedAgent(AgentTurn(tool_calls=[call("borrow_book", '{"person_id": "P-999", "book_id": "BK-005"}'),
                                                call("borrow_book", '{"person_id": "P-001", ')]),
                          AgentTurn(tool_calls=[call("borrow_book", '["P-001", "BK-005"]')]))
    transcript = episode(task, env, agent, max_tool_errors=3)

    assert transcript.termination == "too_many_errors"
    unknown, broken, listed = transcript.tool_calls
    assert "Member not found: P-999" in unknown.error and unknown.arguments is not None
    assert broken.arguments is None and broken.raw_arguments == '{"person_id": "P-001", '
    assert "not valid JSON" in broken.error
    assert listed.arguments is None and "must be a JSON object" in listed.error
    tool_messages = [m for m in transcript.messages if m["role"] == "tool"]
    assert [json.loads(m["content"])["error"] for m in tool_messages] == [r.error for r in transcript.tool_calls]
    assert env.state_hash() == task.initial_state_hash


def test_an_agent_that_raises_ends_with_agent_error(env: Environment) -> None:
    task = borrow_task(env)
    transcript = episode(task, env, RaisingAgent())
    assert transcript.termination == "agent_error" and transcript.error == "RuntimeError: model exploded"


def test_a_user_that_raises_ends_with_user_error(env: Environment) -> None:
    task = borrow_task(env)
    transcript = episode(task, env, NoopAgent(), RaisingUser())
    assert transcript.termination == "user_error" and "user lost the plot" in transcript.error


def test_an_agent_stop_token_ends_the_episode(env: Environment) -> None:
    task = borrow_task(env)
    transcript = episode(task, env, ScriptedAgent(AgentTurn(text="Transferring you. ###TRANSFER###")))
    assert transcript.termination == "agent_stop" and not transcript.premature


def test_a_dead_environment_worker_is_an_infrastructure_error(rollout_sandbox) -> None:
    with start_library(rollout_sandbox, DIE) as env:
        task = borrow_task(env)
        agent = ScriptedAgent(AgentTurn(tool_calls=[call("die", "{}"), call("get_member", '{"person_id": "P-001"}')]))
        transcript = episode(task, env, agent)

        assert transcript.termination == "infrastructure_error" and "worker died" in transcript.error
        assert [m["role"] for m in transcript.messages][-3:] == ["assistant", "tool", "tool"]
        assert transcript.tool_calls[1].error.startswith("not executed:")
        assert episode(task, env, OracleAgent(task)).termination == "user_stop"  # reset respawned it


def test_run_many_is_sorted_bounded_and_byte_identical_across_runs(env: Environment, rollout_sandbox,
                                                                    tmp_path: Path) -> None:
    tasks = [refusal_task(env), borrow_task(env),
             make_task(env, "lib-read", kind="read", actions=[action(1, "get_member", person_id="P-001")])]
    started: list[Environment] = []
    in_flight = peak = 0

    class CountingOracle(OracleAgent):
        async def respond(self, messages, tools):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)  # yield, so other episodes can interleave
            in_flight -= 1
            return await super().respond(messages, tools)

    def make_env(task: Task) -> Environment:
        started.append(start_library(rollout_sandbox))
        return started[-1]

    def run() -> list:
        return asyncio.run(run_many(list(reversed(tasks)), make_env, lambda task, trial: CountingOracle(task),
                                    lambda task, trial: BuiltinUser(task, seed=trial), trials=3, concurrency=2,
                                    system_prompt=POLICY))

    first, second = run(), run()
    keys = [(t.task_id, t.trial) for t in first]
    assert keys == sorted((task.id, trial) for task in tasks for trial in range(3))
    assert all(t.termination == "user_stop" for t in first)
    assert len({t.id for t in first}) == 9
    assert peak <= 2 and len(started) <= 4  # environments are pooled, at most `concurrency` per run
    write_jsonl(first, tmp_path / "a.jsonl")
    write_jsonl(second, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert all(not e.alive for e in started)  # run_many closed them


def test_run_many_turns_an_environment_that_fails_to_start_into_infrastructure_errors(env: Environment) -> None:
    task = borrow_task(env)

    def broken_env(task: Task) -> Environment:
        raise OSError("no sandbox today")

    [transcript] = asyncio.run(run_many([task], broken_env, lambda t, n: NoopAgent(), lambda t, n: BuiltinUser(t)))
    assert transcript.termination == "infrastructure_error" and "no sandbox today" in transcript.error
