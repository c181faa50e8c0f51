"""The demonstrator's dialogue habits: a refusal right after the read that shows the rule broken, and requests
named in the customer's terms."""
from __future__ import annotations

import asyncio

from skiller.evaluator.refusals import shows_why
from skiller.rollout import BuiltinUser, OracleAgent, run_episode
from skiller.rollout.speech import Vocabulary
from skiller.servers import Environment
from skiller.servers.task import RuleStatement, Task

from tests.rollout.conftest import start_library
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
    # the change to confirm is a sentence: records named in brackets, values as they will be, a name said once
    assert words.change("enroll_pet", {"pet_name": "Olive", "pet_plan_id": "PPL-1"}) == \
        "insure Olive under that plan (pet plan PPL-1)"
    assert words.change("enroll_pet", {"pet_name": "Olive", "pet_plan_id": "PPL-1", "start_date": "2026-04-04",
                                       "vaccinated": False}) == \
        "insure Olive under that plan (pet plan PPL-1): the start date will be Saturday, April 4, 2026, and it will " \
        "not be vaccinated"


# A loan whose due day can be moved: the record is read, told, then changed.
MOVABLE_DUE_DAY = """
def get_loan(db, loan_id):
    return _loan(db, loan_id)


def move_due_day(db, loan_id, due_date):
    _loan(db, loan_id)
    db.execute(f"UPDATE {_t('loan')} SET due_date = ? WHERE loan_id = ?", (due_date, loan_id))
    return _loan(db, loan_id)


TOOLS["get_loan"] = {"fn": get_loan, "mode": "read", "description": "Look up a loan.",
                     "parameters": {"type": "object", "properties": {"loan_id": {"type": "string",
                                    "description": "Loan id"}}, "required": ["loan_id"]}}
TOOLS["move_due_day"] = {"fn": move_due_day, "mode": "write", "description": "Move the due day of a loan.",
                         "parameters": {"type": "object", "properties": {
                             "loan_id": {"type": "string", "description": "Loan id"},
                             "due_date": {"type": "string", "description": "Day the book is due back"}},
                             "required": ["loan_id", "due_date"]}}
"""


def test_a_value_just_told_is_asked_for_anew_and_the_change_confirmed_in_a_sentence(rollout_sandbox) -> None:
    with start_library(rollout_sandbox, MOVABLE_DUE_DAY) as env:
        task = make_task(env, "lib-move-due", first_query="I'd like to move the due day of my loan.",
                         facts={"person id": "P-001", "full name": "Ada Lovelace", "loan id": "LN-0001",
                                "day the book is due back": "2026-03-20"},
                         actions=[action(1, "get_member", person_id="P-001"), action(2, "get_loan", loan_id="LN-0001"),
                                  action(3, "move_due_day", "write", loan_id="LN-0001", due_date="2026-03-20")])
        transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    spoken = _assistant(transcript)
    told = next(t for t in spoken if "the day the book is due back is Friday, March 6, 2026" in t)
    assert "the new day the book is due back" in told  # not the label it was just told under
    confirm = next(t for t in spoken if "LN-0001" in t and "will be" in t)
    assert "(loan LN-0001): the day the book is due back will be Friday, March 20, 2026." in confirm
    assert "; " not in confirm
    assert [r.name for r in transcript.tool_calls][-1] == "move_due_day" and transcript.tool_calls[-1].ok


def test_a_question_asked_before_a_change_is_answered_when_found_not_after_the_change(rollout_sandbox) -> None:
    # "Which Knuth book do you have? Then move my loan's due day": the title is told as soon as the search
    # returns it, before the change is confirmed, and not again at the end
    with start_library(rollout_sandbox, MOVABLE_DUE_DAY) as env:
        task = make_task(env, "lib-ask-then-move", first_query="Which Knuth book do you have? Then I'd like to "
                         "move the due day of my loan.",
                         facts={"person id": "P-001", "full name": "Ada Lovelace", "author": "Knuth",
                                "loan id": "LN-0001", "day the book is due back": "2026-03-20"},
                         actions=[action(1, "get_member", person_id="P-001"),
                                  action(2, "search_books", query="Knuth", available_only=True),
                                  action(3, "get_loan", loan_id="LN-0001"),
                                  action(4, "move_due_day", "write", loan_id="LN-0001", due_date="2026-03-20")],
                         communicate_info=["The Art of Computer Programming"])
        transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    spoken = _assistant(transcript)
    told = [i for i, t in enumerate(spoken) if "The Art of Computer Programming" in t]
    confirm = next(i for i, t in enumerate(spoken) if "will be" in t)
    assert len(told) == 1 and told[0] < confirm, spoken
    assert [r.name for r in transcript.tool_calls if r.ok][-1] == "move_due_day"


def test_the_closing_message_does_not_tell_again_a_result_already_told(rollout_sandbox) -> None:
    with start_library(rollout_sandbox, MOVABLE_DUE_DAY) as env:
        task = make_task(env, "lib-borrow-and-move", first_query="I'd like to borrow a book and move a due day.",
                         facts={"person id": "P-001", "full name": "Ada Lovelace", "book id": "BK-005",
                                "loan id": "LN-0001", "day the book is due back": "2026-03-20"},
                         actions=[action(1, "get_member", person_id="P-001"),
                                  action(2, "borrow_book", "write", person_id="P-001", book_id="BK-005"),
                                  action(3, "get_loan", loan_id="LN-0001"),
                                  action(4, "move_due_day", "write", loan_id="LN-0001", due_date="2026-03-20")])
        transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    spoken = _assistant(transcript)
    assert [r.name for r in transcript.tool_calls if r.ok][-1] == "move_due_day"
    assert sum("Your loan LN-0005 is active" in t for t in spoken) == 1  # told once, right after the borrowing
    assert "Your loan LN-0001 is active" in spoken[-1]  # the last change, told at the end


def test_a_refusal_does_not_open_with_the_result_of_the_lookup_before_it(env: Environment) -> None:
    # the member's loans are read, then the request is refused: the rule is told, not the row just read
    task = make_task(env, "lib-refuse-after-search", kind="refusal", first_query="Please lend me another book.",
                     facts={"person id": "P-002", "full name": "Alan Turing", "author": "Knuth"},
                     actions=[action(1, "get_member", person_id="P-002"),
                              action(2, "search_books", query="Knuth", available_only=True)],
                     violated_rule="LIB-1", rule=LIB_1)
    transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    refusal = next(t for t in _assistant(transcript) if "LIB-1" in t)
    assert refusal.startswith("I'm sorry, but I can't"), refusal


# A member's loans, listed: what a rule on how many loans a member holds counts.
LIST_LOANS = """
def list_loans(db, person_id):
    ids = [r[0] for r in db.execute(f"SELECT loan_id FROM {_t('loan')} WHERE person_id = ? ORDER BY loan_id",
                                    (person_id,))]
    return [_loan(db, i) for i in ids]


TOOLS["list_loans"] = {"fn": list_loans, "mode": "read", "description": "List a member's loans.",
                       "parameters": {"type": "object", "properties": {"person_id": {"type": "string",
                                      "description": "Person id"}}, "required": ["person_id"]}}
"""


def test_a_refusal_under_a_limit_on_held_records_names_the_records_that_count(rollout_sandbox) -> None:
    rule = LIB_1.model_copy(update={"statuses": ["active"]})
    with start_library(rollout_sandbox, LIST_LOANS) as env:
        loans = env.call("list_loans", {"person_id": "P-002"}).value
        active = [loan["loan_id"] for loan in loans if loan["status"] == "active"]
        assert len(active) == 2  # at the limit
        task = make_task(env, "lib-refuse-listed", kind="refusal", first_query="Please lend me another book.",
                         facts={"person id": "P-002", "full name": "Alan Turing"},
                         actions=[action(1, "get_member", person_id="P-002"), action(2, "list_loans", person_id="P-002")],
                         violated_rule="LIB-1", rule=rule)
        transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    refusal = next(t for t in _assistant(transcript) if "LIB-1" in t)
    assert f"you already have 2 loans that are active: {active[0]} and {active[1]}." in refusal, refusal


def test_a_refusal_under_a_status_rule_names_the_status_the_record_is_in(rollout_sandbox) -> None:
    rule = RuleStatement(id="LIB-4", tool="return_book", kind="requires_status", statuses=["active"],
                         statement="Only an active loan can be returned.")
    with start_library(rollout_sandbox, MOVABLE_DUE_DAY) as env:
        loan = None  # a loan that is no longer active, found by id
        for n in range(1, 10):
            found = env.call("get_loan", {"loan_id": f"LN-{n:04d}"})
            if found.ok and found.value["status"] != "active":
                loan = found.value
                break
        assert loan is not None
        task = make_task(env, "lib-refuse-status", kind="refusal", first_query="I'd like to return a book.",
                         facts={"person id": loan["person_id"], "full name": "Alan Turing", "loan id": loan["loan_id"]},
                         actions=[action(1, "get_member", person_id=loan["person_id"]),
                                  action(2, "get_loan", loan_id=loan["loan_id"])],
                         violated_rule="LIB-4", rule=rule)
        transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    refusal = next(t for t in _assistant(transcript) if "LIB-4" in t)
    assert f"I can see your loan {loan['loan_id']} is {loan['status']}." in refusal, refusal


def test_a_refusal_under_an_ownership_rule_says_the_record_is_another_customer_s(rollout_sandbox) -> None:
    rule = RuleStatement(id="LIB-5", tool="return_book", kind="ownership",
                         statement="Members return only their own loans.")
    with start_library(rollout_sandbox, MOVABLE_DUE_DAY) as env:
        loan = env.call("get_loan", {"loan_id": "LN-0001"}).value
        other = next(p for p in ("P-001", "P-002", "P-003") if p != loan["person_id"])
        task = make_task(env, "lib-refuse-owner", kind="refusal", first_query="I'd like to return my friend's book.",
                         facts={"person id": other, "full name": "Alan Turing", "loan id": loan["loan_id"]},
                         actions=[action(1, "get_member", person_id=other),
                                  action(2, "get_loan", loan_id=loan["loan_id"])],
                         violated_rule="LIB-5", rule=rule)
        transcript = asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY))

    refusal = next(t for t in _assistant(transcript) if "LIB-5" in t)
    assert f"I can see that loan {loan['loan_id']} is not on your account: it is someone else's." in refusal, refusal
    assert shows_why(task, transcript)


def test_a_request_refused_before_its_records_are_named_keeps_their_articles() -> None:
    words = Vocabulary([
        {"function": {"name": "reserve_unit", "description": "Reserve a unit to store the belongings of a move.",
                      "parameters": {"properties": {"storage_unit_id": {"description": "Storage unit"},
                                                    "move_ref": {"description": "Move"}}}}}])

    assert words.deed("reserve_unit", {}, discussed=set()) == "reserve a unit to store the belongings of a move"
    assert words.deed("reserve_unit", {}, discussed={"move"}) == "reserve a unit to store the belongings of that move"
    assert words.deed("reserve_unit", {}, discussed={"storage unit"}) == \
        "reserve a unit to store the belongings of a move"


def test_an_order_s_lines_are_asked_after_its_other_values_each_item_before_its_quantity() -> None:
    from skiller.rollout.conversation import Plan
    from skiller.servers.task import EvaluationCriteria, GoldenAction, Instructions, UserScenario
    from tests.rollout.support import CURT

    facts = {"day you collect the order": "2026-03-16", "first medication": "MED-0063", "person id": "P-0066",
             "pharmacy branch id": "BRN-0159", "quantity of the first medication": "2",
             "quantity of the second medication": "3", "second medication": "MED-0104"}  # alphabetical, as stored
    order = GoldenAction(action_id="a1", name="place_order", mode="write", arguments={
        "collection_date": "2026-03-16", "items": [{"medication_id": "MED-0063", "quantity": 2},
                                                   {"medication_id": "MED-0104", "quantity": 3}],
        "person_id": "P-0066", "pharmacy_branch_id": "BRN-0159"})
    scenario = UserScenario(persona=CURT, facts=facts, instructions=Instructions(
        domain="Pharmacy", reason_for_call="order", known_info="", unknown_info="", task_instructions="order"))
    task = Task(id="t", domains=["Pharmacy"], environment="Pharmacy", kind="write", description="t",
                user_scenario=scenario, first_query="Hi.", initial_state_hash="0", gold_state_hash="1",
                evaluation_criteria=EvaluationCriteria(actions=[order], reward_basis=["DB"]))

    assert Plan(task).labels == [[
        "day you collect the order", "person id", "pharmacy branch id", "first medication",
        "quantity of the first medication", "second medication", "quantity of the second medication"]]
