"""The demonstrator's dialogue habits: a refusal right after the read that shows the rule broken, and requests
named in the customer's terms."""
from __future__ import annotations

import asyncio

from skiller.rollout import BuiltinUser, OracleAgent, run_episode
from skiller.rollout.speech import Vocabulary
from skiller.servers import Environment

from tests.rollout.support import LIB_1, POLICY, action, make_task


def _assistant(transcript) -> list[str]:
    return [m["content"] for m in transcript.messages if m["role"] == "assistant" and m["content"]]


def test_a_refusal_visible_from_a_read_asks_for_nothing_more(env: Environment) -> None:
    # the member is at the loan limit: the read shows it, so the book the customer wants is never asked for
    task = make_task(env, "lib-refuse-early", kind="refusal", first_query="Please lend me another book.",
                     facts={"person id": "P-002", "full name": "Alan Turing", "author": "Knuth"},
                     actions=[action(1, "get_member", person_id="P-002")], violated_rule="LIB-1", rule=LIB_1)
    transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    spoken = _assistant(transcript)
    refusal = next(i for i, t in enumerate(spoken) if "LIB-1" in t)
    assert not any("author" in t for t in spoken[:refusal])
    assert "for you. Our policy" not in spoken[refusal]  # "I can't lend a book. Our policy says: ..."
    assert [r.name for r in transcript.tool_calls] == ["get_member"]


def test_a_request_is_named_in_the_customers_terms() -> None:
    words = Vocabulary([
        {"function": {"name": "enroll_pet", "description": "Insure a pet under a plan.",
                      "parameters": {"properties": {"pet_name": {"description": "Name of the insured pet"},
                                                    "pet_plan_id": {"description": "Pet plan"}}}}},
        {"function": {"name": "file_claim", "description": "File a claim for a veterinary visit.",
                      "parameters": {"properties": {}}}}])

    assert words.deed("enroll_pet", {"pet_name": "Olive"}) == "insure Olive under that plan"
    assert words.deed("enroll_pet") == "insure a pet under that plan"
    assert words.deed("file_claim") == "file a claim for that veterinary visit"
    assert words.change("enroll_pet", {"pet_name": "Olive", "pet_plan_id": "PPL-1"}).startswith(
        "insure Olive under that plan: ")
