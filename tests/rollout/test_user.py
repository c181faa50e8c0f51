"""skiller.rollout.user: the builtin customer discloses facts only when asked, slips once on a reference, confirms,
pushes back once on a refusal, never invents a value; the LLM user's prompt asks for the same."""
from __future__ import annotations

import asyncio
import re
from typing import Any

from skiller.rollout import STOP, AgentTurn, BuiltinUser, run_episode, user_system_prompt
from skiller.servers import Environment
from skiller.contract.dialogue import is_yes, label_phrase, owned_by, said_value
from skiller.servers.task import Mistake, Task
from tests.rollout.support import CHATTY, CURT, FACTS, POLICY, ScriptedAgent, action, borrow_task, make_task, refusal_task


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


def test_facts_are_disclosed_only_when_their_label_is_asked(env: Environment) -> None:
    task = borrow_task(env)
    agent = ScriptedAgent(AgentTurn(text="Hello! Could you tell me your person id?"),
                          AgentTurn(text="Thanks. And which author are you after?"),
                          AgentTurn(text="What is your library card PIN?"), AgentTurn(text="Are you sure?"))
    transcript = asyncio.run(run_episode(task, env, agent, BuiltinUser(task), system_prompt=POLICY))

    said = [m["content"] for m in transcript.messages if m["role"] == "user"]
    assert said[0] == task.first_query
    assert "P-001" in said[1] and "Knuth" not in said[1] and "Lovelace" not in said[1]
    assert "Knuth" in said[2] and "P-001" not in said[2]
    assert not any(value in said[3] for value in FACTS.values()) and STOP not in said[3]  # "I don't know"
    assert said[4].endswith(STOP)  # low patience: one unanswerable question, then it gives up
    assert transcript.termination == "user_stop"
    for text in said[1:]:  # nothing beyond the facts: no other ids, names or dates of the database
        for value in FACTS.values():
            text = text.replace(value, "")
        assert not re.search(r"[A-Z]{1,3}-\d|\d{4}-\d\d|Turing|Hopper", text), text


def test_a_question_naming_two_facts_gets_both(env: Environment) -> None:
    answer = ask(BuiltinUser(borrow_task(env)), "Could you please tell me your full name and your person id?")
    assert "Ada Lovelace" in answer and "P-001" in answer and "Knuth" not in answer


def test_a_change_proposed_for_confirmation_gets_an_explicit_yes(env: Environment) -> None:
    for persona in (CURT, CHATTY):
        answer = ask(BuiltinUser(borrow_task(env, persona)), "I will borrow book BK-005 for you. Shall I go ahead?")
        assert is_yes(answer) and STOP not in answer


def test_a_wrong_reference_comes_first_and_is_corrected_after_it_fails(env: Environment) -> None:
    task = borrow_task(env, mistake=Mistake(fact="person id", wrong="P-100"))
    first = ask(BuiltinUser(task), "Could you tell me your person id?")
    again = ask(BuiltinUser(task), "Could you tell me your person id?",
                "I could not find P-100. Could you please check the person id and tell me again?")
    assert "P-100" in first and "P-001" not in first
    assert "P-001" in again and "P-100" not in again


def test_an_answer_without_a_question_or_asking_for_anything_else_ends_the_conversation(env: Environment) -> None:
    task = borrow_task(env)
    for closing in ("Your book is on its way.", "Your loan is LN-0005. Is there anything else I can help you with?"):
        answer = ask(BuiltinUser(task), closing)
        assert answer.endswith(STOP) and not any(value in answer for value in FACTS.values())


def test_a_patient_customer_pushes_back_once_on_a_refusal(env: Environment) -> None:
    task = refusal_task(env).model_copy(update={"user_scenario": refusal_task(env).user_scenario.model_copy(
        update={"persona": CHATTY})})
    refusal = "I'm sorry, but I can't lend you another book: a member may have at most 2 active loans (LIB-1)."
    pushed = ask(BuiltinUser(task), refusal + " Is there anything else I can help you with?")
    accepted = ask(BuiltinUser(task), refusal, "The rule applies to everyone. Is there anything else I can help with?")
    assert "?" in pushed and STOP not in pushed
    assert accepted.endswith(STOP)


def test_a_fact_already_in_the_first_query_is_not_volunteered_again(env: Environment) -> None:
    task = make_task(env, "lib-known", first_query="Hi, I'm Ada Lovelace and want a Knuth book.", actions=[])
    answer = ask(BuiltinUser(task), "Could you tell me your person id?")
    assert "P-001" in answer and "Knuth" not in answer.replace("P-001", "")


def test_patient_users_say_they_do_not_know_longer_before_giving_up(env: Environment) -> None:
    task = make_task(env, "lib-patient", persona=CHATTY, facts={}, actions=[])
    answers = [ask(BuiltinUser(task), *["What is your PIN?"] * n) for n in range(1, 5)]
    assert [a.endswith(STOP) for a in answers] == [False, False, False, True]  # high patience: three


def test_two_personas_word_the_same_fact_differently(env: Environment) -> None:
    curt, chatty = borrow_task(env, CURT), borrow_task(env, CHATTY)
    terse = ask(BuiltinUser(curt, seed=1), "What is your person id?")
    formal = ask(BuiltinUser(chatty, seed=1), "What is your person id?")
    assert "P-001" in terse and "P-001" in formal
    assert terse != formal and len(formal) > len(terse)


def test_phrasing_is_seeded_deterministic_and_varies_across_seeds(env: Environment) -> None:
    task: Task = borrow_task(env, CHATTY)
    by_seed = [ask(BuiltinUser(task, seed=seed), "What is your person id?") for seed in range(8)]
    assert by_seed == [ask(BuiltinUser(task, seed=seed), "What is your person id?") for seed in range(8)]
    assert len(set(by_seed)) > 1 and all(said_value(a, "P-001") for a in by_seed)


def test_llm_user_prompt_carries_persona_scenario_facts_and_rules(env: Environment) -> None:
    task = borrow_task(env, CHATTY, mistake=Mistake(fact="person id", wrong="P-100"))
    prompt = user_system_prompt(task)
    instructions = task.user_scenario.instructions
    for part in (instructions.reason_for_call, instructions.known_info, instructions.unknown_info,
                 instructions.task_instructions, "chatty", "formal", "- person id: P-001", STOP,
                 "Never invent", "progressively", "explicit yes", "P-100"):
        assert part in prompt


def test_a_detailed_customer_says_each_filler_phrase_once(env: Environment) -> None:
    # Chatty and detailed: every answer may carry a style lead and a closing remark, but not the same one twice.
    questions = ["Could you tell me your person id?", "And your full name?", "Which author are you after?",
                 "Could you tell me your person id again?", "And your full name once more?",
                 "I will borrow a book for you. Shall I go ahead?", "Shall I go ahead?", "Shall I go ahead?"]
    for seed in range(6):
        user, messages = BuiltinUser(borrow_task(env, CHATTY), seed=seed), [{"role": "system", "content": POLICY}]

        async def play() -> list[str]:
            messages.append({"role": "user", "content": (await user.respond(messages)).text})
            for text in questions:
                messages.append({"role": "assistant", "content": text})
                messages.append({"role": "user", "content": (await user.respond(messages)).text})
            return [m["content"] for m in messages if m["role"] == "user"][1:]

        said = asyncio.run(play())
        sentences = [s for text in said for s in re.split(r"(?<=[.!?:])\s+", text)
                     if not any(value in s for value in FACTS.values())]
        assert len(sentences) == len(set(sentences)), said  # no filler said twice
        assert all(is_yes(text) for text in said[5:])  # every confirmation is still an explicit yes


def test_facts_of_one_of_several_records_are_asked_and_answered_for_that_record(env: Environment) -> None:
    facts = {"person id": "P-001", "full name": "Ada Lovelace", "day of the visit of the first appointment": "2026-03-26",
             "reason for the visit of the first appointment": "skin rash",
             "day of the visit of the second appointment": "2026-04-06",
             "first day of the first storage rental": "2026-03-08"}
    task = make_task(env, "lib-two-visits", persona=CHATTY, facts=facts,
                     actions=[action(1, "get_member", person_id="P-001")])

    answer = ask(BuiltinUser(task), "For the first appointment, could you tell me the day of the visit and the reason "
                                    "for the visit?")
    assert "for the first appointment, the day of the visit is " in answer.lower(), answer
    assert "2026" in answer and "skin rash" in answer and "April" not in answer and "2026-04-06" not in answer
    assert "of the first appointment" not in answer  # said once, up front
    assert owned_by(["first day of the first storage rental"]) is None  # 'the first day' of what: said whole
    assert owned_by(["day the care was received, for the second claim"]) == (["day the care was received"],
                                                                            "the second claim")


def test_a_fused_fact_of_one_of_several_records_is_asked_whole_and_answered(env: Environment) -> None:
    # 'WillowPharmacy quantity of the second medication' split as 'For the second medication, ... the quantity for
    # WillowPharmacy' left the customer without an answer and the order unplaced (7 of 11,744 volume tasks)
    label = "WillowPharmacy quantity of the second medication"
    assert owned_by([label]) is None
    task = make_task(env, "fused-order", persona=CHATTY, facts={"person id": "P-001", label: "3",
                                                                 "WillowPharmacy second medication": "MEDL-0122"},
                     actions=[action(1, "get_member", person_id="P-001")])
    answer = ask(BuiltinUser(task), f"Could you give me {label_phrase(label, 'agent')}?")
    assert "quantity of the second medication for WillowPharmacy is 3" in answer, answer
