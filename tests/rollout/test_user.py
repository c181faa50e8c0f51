"""rollout.user: the builtin user's progressive, fact-bound disclosure and persona wording; the LLM user's prompt."""
from __future__ import annotations

import asyncio
import re
from typing import Any

from rollout import STOP, AgentTurn, BuiltinUser, run_episode, user_system_prompt
from servers import Environment
from servers.task import Task
from tests.rollout.support import CHATTY, CURT, POLICY, ScriptedAgent, borrow_task, make_task

FACTS = {"person_id": "P-001", "book_title": "The Art of Computer Programming"}


def ask(user: BuiltinUser, *assistant_texts: str) -> str:
    """The user's answer after a conversation where the assistant said these texts in turn."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": POLICY}]

    async def play() -> str:
        messages.append({"role": "user", "content": (await user.respond(messages)).text})
        for text in assistant_texts:
            messages.append({"role": "assistant", "content": text})
            messages.append({"role": "user", "content": (await user.respond(messages)).text})
        return messages[-1]["content"]

    return asyncio.run(play())


def test_facts_are_disclosed_one_at_a_time_only_when_asked(env: Environment) -> None:
    task = borrow_task(env)
    agent = ScriptedAgent(AgentTurn(text="Sure. What is your member id?"), AgentTurn(text="Which book is it?"),
                          AgentTurn(text="What is your library card PIN?"), AgentTurn(text="Are you sure?"))
    transcript = asyncio.run(run_episode(task, env, agent, BuiltinUser(task), system_prompt=POLICY))

    said = [m["content"] for m in transcript.messages if m["role"] == "user"]
    assert said[0] == task.first_query
    assert "P-001" in said[1] and FACTS["book_title"] not in said[1]
    assert FACTS["book_title"] in said[2] and "P-001" not in said[2]
    assert not any(value in said[3] for value in FACTS.values()) and STOP not in said[3]  # "I don't know"
    assert said[4].endswith(STOP)  # low patience: one unanswerable question, then it gives up
    assert transcript.termination == "user_stop"
    for text in said[1:]:  # nothing beyond the facts: no other ids, names or dates of the database
        for value in FACTS.values():
            text = text.replace(value, "")
        assert not re.search(r"[A-Z]{1,3}-\d|\d{4}-\d\d|Turing|Hopper|Lovelace", text), text


def test_a_statement_without_a_question_ends_the_conversation(env: Environment) -> None:
    task = borrow_task(env)
    answer = ask(BuiltinUser(task), "Your book is on its way.")
    assert answer.endswith(STOP) and not any(value in answer for value in FACTS.values())


def test_a_fact_already_in_the_first_query_is_not_repeated(env: Environment) -> None:
    task = make_task(env, "lib-known", first_query="Hi, I'm member P-001 and want a book.", actions=[])
    assert FACTS["book_title"] in ask(BuiltinUser(task), "Which book would you like?")


def test_patient_users_say_they_do_not_know_longer_before_giving_up(env: Environment) -> None:
    task = make_task(env, "lib-patient", persona=CHATTY, facts={}, actions=[])
    answers = [ask(BuiltinUser(task), *["What is your PIN?"] * n) for n in range(1, 5)]
    assert [a.endswith(STOP) for a in answers] == [False, False, False, True]  # high patience: three


def test_two_personas_word_the_same_fact_differently(env: Environment) -> None:
    curt, chatty = borrow_task(env, CURT), borrow_task(env, CHATTY)
    terse = ask(BuiltinUser(curt, seed=1), "What is your member id?")
    formal = ask(BuiltinUser(chatty, seed=1), "What is your member id?")
    assert "person id is P-001" in terse and "person id is P-001" in formal
    assert terse != formal and len(formal) > len(terse)


def test_phrasing_is_seeded_deterministic_and_varies_across_seeds(env: Environment) -> None:
    task: Task = borrow_task(env, CHATTY)
    by_seed = [ask(BuiltinUser(task, seed=seed), "What is your member id?") for seed in range(8)]
    assert by_seed == [ask(BuiltinUser(task, seed=seed), "What is your member id?") for seed in range(8)]
    assert len(set(by_seed)) > 1


def test_llm_user_prompt_carries_persona_scenario_facts_and_rules(env: Environment) -> None:
    task = borrow_task(env, CHATTY)
    prompt = user_system_prompt(task)
    instructions = task.user_scenario.instructions
    for part in (instructions.reason_for_call, instructions.known_info, instructions.unknown_info,
                 instructions.task_instructions, "chatty", "formal", "- person_id: P-001", STOP,
                 "Never invent", "progressively"):
        assert part in prompt
