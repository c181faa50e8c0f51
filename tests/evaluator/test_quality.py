"""skiller.evaluator.quality: every figure of the data-quality report against a small workspace counted by hand."""
from __future__ import annotations

import json
from typing import Any

import pytest

from skiller.contract.policy import PolicyRule
from skiller.evaluator.quality import made_up_value, quality_report, template_text
from skiller.evaluator.refusals import shows_why
from skiller.servers.episode import ToolCallRecord, Transcript
from skiller.servers.task import EvaluationCriteria, GoldenAction, Instructions, Persona, RuleStatement, Task, UserScenario

PERSONA = Persona(name="Ann Lee", style="curt", patience="low", verbosity="terse", language_register="neutral")
DATED = "Shop policy.\n\nToday's date is Monday, March 2, 2026 (2026-03-02)."
SHOP_TOOLS = ["get_profile", "get_order", "cancel_order", "refund_order"]
BANK_TOOLS = ["get_account", "transfer"]
WRITES = {"Shop": {"cancel_order", "refund_order"}, "Bank": {"transfer"}}


def task(task_id: str, env: str, kind: str, first: str, actions: list[tuple[str, str, dict, Any]],
         rule: RuleStatement | None = None) -> Task:
    golden = [GoldenAction(action_id=f"a{i}", name=n, mode=m, arguments=a, expected=e)
              for i, (n, m, a, e) in enumerate(actions, 1)]
    scenario = UserScenario(persona=PERSONA, instructions=Instructions(
        domain=env, reason_for_call="", known_info="", unknown_info="", task_instructions=""))
    return Task(id=task_id, domains=[env], environment=env, kind=kind, description=task_id, user_scenario=scenario,
                first_query=first, evaluation_criteria=EvaluationCriteria(actions=golden, reward_basis=["ACTION"]),
                initial_state_hash="i", gold_state_hash="g", violated_rule=rule.id if rule else None, rule=rule)


class Talk:
    """Builds a transcript message by message; tool calls are recorded with their outcome."""

    def __init__(self, t: Task, trial: int, system: str, tools: list[str]) -> None:
        self.t, self.trial, self.tools = t, trial, tools
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                               {"role": "user", "content": t.first_query}]
        self.records: list[ToolCallRecord] = []

    def user(self, text: str) -> Talk:
        self.messages.append({"role": "user", "content": text})
        return self

    def say(self, text: str) -> Talk:
        self.messages.append({"role": "assistant", "content": text})
        return self

    def call(self, name: str, arguments: dict, ok: bool = True, output: Any = None) -> Talk:
        cid = f"call_{len(self.records) + 1}"
        self.messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]})
        self.messages.append({"role": "tool", "tool_call_id": cid,
                              "content": json.dumps(output if ok else {"error": "not found"})})
        self.records.append(ToolCallRecord(id=cid, name=name, arguments=arguments, raw_arguments=json.dumps(arguments),
                                           ok=ok, output=output if ok else None, error=None if ok else "not found"))
        return self

    def end(self, termination: str = "user_stop") -> Transcript:
        return Transcript(id=f"{self.t.id}-{self.trial}", task_id=self.t.id, trial=self.trial, domains=self.t.domains,
                          environment=self.t.environment, agent="test", messages=self.messages,
                          tools=[{"type": "function", "function": {"name": n}} for n in self.tools],
                          tool_calls=self.records, termination=termination)


PROFILE = {"person_id": "P-0001", "first_name": "Ann", "last_name": "Lee"}
ORDER = {"order_id": "ORD-0007", "status": "open", "total": 12.5}
RULE = RuleStatement(id="SHP-2", tool="cancel_order", kind="lead_time",
                     statement="Orders can be cancelled only within 14 days of purchase.")

# Needed values: A needs P-0001, ORD-0007, too_late (its first message gives ORD-0007); B needs P-0002;
# C needs ACC-0003. Only B's first message is template text.
A = task("A", "Shop", "write", "Hi, I want to cancel my order ORD-0007.",
         [("get_profile", "read", {"person_id": "P-0001"}, PROFILE), ("get_order", "read", {"order_id": "ORD-0007"}, ORDER),
          ("cancel_order", "write", {"order_id": "ORD-0007", "reason": "too_late"}, None)])
B = task("B", "Shop", "refusal", "Hello. You want to cancel an old order.",
         [("get_profile", "read", {"person_id": "P-0002"}, None)], rule=RULE)
C = task("C", "Bank", "read", "What is my balance?", [("get_account", "read", {"account_id": "ACC-0003"}, None)])


def transcripts() -> list[Transcript]:
    good = (Talk(A, 0, DATED, SHOP_TOOLS).say("Hello! Could you tell me your person id?").user("P-0001")
            .call("get_profile", {"person_id": "P-0001"}, output=PROFILE)
            .call("get_order", {"order_id": "ORD-0007"}, output=ORDER)
            .say("I will cancel order ORD-0007. Shall I go ahead?").user("Yes, please.")
            .call("cancel_order", {"order_id": "ORD-0007", "reason": "too_late"}, output={"status": "cancelled"})
            .say("Done: order ORD-0007 is cancelled.").user("Thanks ###STOP###").end())
    hasty = (Talk(A, 1, "Shop policy.", SHOP_TOOLS)
             .call("get_profile", {"person_id": "P-9999"}, ok=False).call("get_profile", {"person_id": "P-0001"},
                                                                          output=PROFILE)
             .call("cancel_order", {"order_id": "ORD-0007", "reason": "too_late"}, output={"status": "cancelled"})
             .say('Done: {"order_id": "ORD-0007", "status": "cancelled"}').user("ok ###STOP###").end())
    explained = (Talk(B, 0, DATED, SHOP_TOOLS).call("get_profile", {"person_id": "P-0002"}, output=PROFILE)
                 .say("I'm sorry, I can't cancel it: orders can be cancelled only within 14 days of purchase "
                      "(rule SHP-2).").user("I see. ###STOP###").end())
    cited = (Talk(B, 1, "Shop policy.", SHOP_TOOLS).say("I cannot do that because of the rule SHP-2.")
             .user("ok ###STOP###").end())
    broken = (Talk(C, 0, "Bank policy, no date.", BANK_TOOLS).call("get_account", {"account_id": "ACC-9"}, ok=False)
              .call("get_account", {"account_id": "ACC-0003"}, output={"account_id": "ACC-0003"})
              .say("Sorry, something broke.").end("max_turns"))
    return [good, hasty, explained, cited, broken]


@pytest.fixture(scope="module")
def report():
    return quality_report([A, B, C], transcripts(), WRITES, today="2026-03-02")


def test_overall_figures_match_the_hand_count(report) -> None:
    o = report.overall
    assert (o.tasks, o.rollouts) == (3, 5)
    assert o.task_kinds == {"read": 1, "refusal": 1, "write": 1}
    assert o.task_patterns == {"read: R": 1, "refusal: R": 1, "write: R R W": 1}
    assert o.golden_calls_per_task == pytest.approx(5 / 3, abs=1e-4) and o.writes_per_task == pytest.approx(1 / 3, abs=1e-4)
    assert o.user_turns_per_rollout == pytest.approx(11 / 5)  # 4 + 2 + 2 + 2 + 1
    assert (o.needed_values_in_first_message.count, o.needed_values_in_first_message.total) == (1, 5)
    assert (o.writes_confirmed.count, o.writes_confirmed.total) == (1, 2)  # the hasty write was never confirmed
    assert (o.assistant_messages_with_raw_json.count, o.assistant_messages_with_raw_json.total) == (1, 7)
    assert (o.refusals_stating_rule.count, o.refusals_stating_rule.total) == (1, 2)  # an id alone is no rule
    assert (o.rollouts_with_recovered_tool_error.count, o.rollouts_with_recovered_tool_error.total) == (1, 5)
    # made up: the good run's reason 'too_late', the hasty P-9999, the explained P-0002 (never said), the broken ACC-9
    assert (o.rollouts_with_made_up_value.count, o.rollouts_with_made_up_value.total) == (4, 5)
    assert (o.first_messages_with_template_text.count, o.first_messages_with_template_text.total) == (1, 3)
    assert (o.system_prompts_with_date.count, o.system_prompts_with_date.total) == (2, 5)
    assert (o.distinct_first_queries.count, o.distinct_first_queries.total) == (3, 3)
    assert (o.tool_coverage.count, o.tool_coverage.total) == (4, 6)
    assert o.tools_never_called == ["Bank.transfer", "Shop.refund_order"]


def test_figures_per_environment_match_the_hand_count(report) -> None:
    shop, bank = report.environments["Shop"], report.environments["Bank"]
    assert (shop.tasks, shop.rollouts, bank.tasks, bank.rollouts) == (2, 4, 1, 1)
    assert shop.needed_values_in_first_message.share == 0.25 and bank.needed_values_in_first_message.share == 0.0
    assert shop.writes_confirmed.share == 0.5 and bank.writes_confirmed.total == 0
    assert bank.writes_confirmed.share is None  # nothing to count is not 0%
    assert bank.rollouts_with_recovered_tool_error.count == 0  # the retry succeeded, but the episode did not end well
    assert shop.rollouts_with_recovered_tool_error.count == 1
    assert (shop.tool_coverage.count, shop.tool_coverage.total) == (3, 4) and shop.tools_never_called == ["refund_order"]


def test_ngram_diversity_is_distinct_over_all_word_trigrams() -> None:
    t = task("D", "Shop", "read", "a b c a b c", [])
    one = Talk(t, 0, DATED, []).say("x y z x y z").end()
    figures = quality_report([t], [one], {}).overall
    assert figures.user_distinct_3grams == 0.75  # abc bca cab abc
    assert figures.assistant_distinct_3grams == 0.75


@pytest.mark.parametrize("text, leaks", [
    ("I need help with this: buildingPermits: You want to withdraw a permit application.", True),
    ("Hi, I'd like to reserve <target.charging_station_id>.", True),
    ("Please call reserve_charging_slot for me.", True),
    ("Hello! I'd like to withdraw my permit application. You're a star!", False),
])
def test_template_text_is_told_from_a_customer_message(text: str, leaks: bool) -> None:
    assert template_text(text) is leaks


def test_harder_task_figures_count_long_multi_write_tasks_and_kind_patterns_of_single_domain_tasks() -> None:
    get = ("get_order", "read", {"order_id": "O-1"}, {})
    cancel, refund = ("cancel_order", "write", {"order_id": "O-1"}, {}), ("refund_order", "write", {"order_id": "O-1"}, {})
    long = task("L", "Shop", "write", "x", [get, get, cancel, refund])  # 4 calls, 2 writes
    short = task("S", "Shop", "write", "y", [get, cancel])
    also = task("T", "Shop", "write", "z", [get, cancel])
    fused = task("F", "Shop_Bank", "write", "w", [get, cancel, get, refund, get]).model_copy(
        update={"domains": ["Shop", "Bank"]})
    kinds = {"Shop": {"get_order": "get", "cancel_order": "set_status"}}  # refund_order's kind is unknown: W
    report = quality_report([long, short, also, fused], [], WRITES, tool_kinds=kinds)
    one = report.single_domain
    assert one is not None and one.tasks == 3  # the fused task is left out
    assert (one.tasks_with_4_calls.count, one.tasks_with_2_writes.count) == (1, 1)
    assert one.kind_patterns == {"write: get get set_status W": 1, "write: get set_status": 2}
    assert (one.largest_pattern.count, one.largest_pattern.total) == (2, 3)
    assert report.environments["Shop"].kind_patterns == one.kind_patterns
    assert report.overall.tasks_with_4_calls.count == 2  # the fused task counts overall


def test_rule_kinds_count_compliant_writes_and_refusals_and_fusions_repeat_no_rule() -> None:
    cancel = PolicyRule(id="SHP-2", tool="cancel_order", kind="lead_time", statement="Within 14 days.")
    owner = PolicyRule(id="SHP-3", tool="cancel_order", kind="ownership", statement="Own orders only.")
    fee = PolicyRule(id="BNK-1", tool="transfer", kind="computed_fee", field="amount", percent=1, max=20,
                     statement="A fee of 1%, at most $20.")
    rules = {"Shop": [cancel, owner], "Bank": [fee], "Shop_Bank": [cancel, owner, fee]}
    figures = quality_report([A, B, C], [], WRITES, rules=rules).rules
    assert figures is not None
    assert {k: (v.rules, v.compliant_tasks, v.refusal_tasks) for k, v in figures.kinds.items()} == {
        "computed_fee": (1, 0, 0), "lead_time": (1, 1, 1), "ownership": (1, 1, 0)}  # A writes cancel_order; B refuses SHP-2
    assert figures.kinds_not_exercised == ["computed_fee", "ownership"]
    assert quality_report([A], [], WRITES).rules is None


def test_a_value_is_made_up_unless_the_customer_said_it_in_any_form_or_a_result_held_it() -> None:
    def run(user: str, *calls: tuple[str, dict, Any]) -> bool:
        talk = Talk(A, 0, DATED, SHOP_TOOLS).user(user)
        for name, arguments, output in calls:
            talk.call(name, arguments, output=output)
        return made_up_value(talk.end())

    moved = ("move_order", {"order_id": "ORD-0007", "deliver_on": "2026-03-20"}, None)
    assert not run("Please deliver it on Friday, March 20, 2026.", moved)  # said as people say dates
    assert run("Please deliver it next week.", moved)  # the date is the assistant's own
    moved9 = ("move_order", {"order_id": "ORD-0009", "deliver_on": "2026-03-20"}, None)
    assert not run("I'm P-0001; deliver my last order on 2026-03-20.",  # the order id read off the profile
                   ("get_profile", {"person_id": "P-0001"}, {"last_order_id": "ORD-0009"}), moved9)
    assert run("I'm P-0001; deliver my last order on 2026-03-20.", moved9)
    assert not run("Only ones in stock.", ("search", {"in_stock": True, "limit": None}, []))  # flags and nulls are no values
    assert run("Hi.", ("get_order", {"order_id": "ORD-0009"}, ORDER))


def test_a_refusal_shows_why_when_it_says_what_a_read_returned_beyond_the_rule_and_the_customer_s_words() -> None:
    status_rule = RuleStatement(id="SHP-3", tool="cancel_order", kind="requires_status",
                                statement="Only open orders can be cancelled.", statuses=["open"])
    refused = task("R", "Shop", "refusal", "Please cancel ORD-0007.",
                   [("get_order", "read", {"order_id": "ORD-0007"}, None)], rule=status_rule)

    def refusal(output: Any, *texts: str, rule_task: Task = refused) -> bool | None:
        talk = Talk(rule_task, 0, DATED, SHOP_TOOLS).say("Let me look.").call("get_order", {"order_id": "ORD-0007"},
                                                                              output=output)
        for text in texts:
            talk.say(text)
        return shows_why(rule_task, talk.end())

    shipped = {"order_id": "ORD-0007", "status": "shipped", "gift_wrapped": True}
    assert refusal(shipped, "Only open orders can be cancelled (rule SHP-3). I can see ORD-0007 is shipped.")
    assert refusal({"order_id": "ORD-0007", "status": "open", "is_gift_wrapped": True},
                   "I can't: it is gift wrapped.")  # a yes/no field named by its words
    assert not refusal(shipped, "Sorry: only open orders can be cancelled (rule SHP-3).")  # the rule alone
    assert not refusal(shipped, "Sorry, I can't cancel ORD-0007.")  # the customer's own words say nothing new
    assert not refusal({"order_id": "ORD-0007", "status": "open"}, "Only open orders can be cancelled.")
    window = RuleStatement(id="SHP-4", tool="move_order", kind="date_window", statement="Within 30 days only.")
    assert refusal(shipped, "No.", rule_task=task("W", "Shop", "refusal", "Move it.", [], rule=window)) is None
    assert shows_why(A, Talk(A, 0, DATED, SHOP_TOOLS).say("Done.").end()) is None  # no refusal


def test_the_report_counts_refusals_that_show_why_over_those_a_read_can_show(report) -> None:
    # B's rule (lead time) can be shown by a read; neither of its rollouts says anything a read returned
    assert (report.overall.refusals_showing_why.count, report.overall.refusals_showing_why.total) == (0, 2)


def test_a_question_is_checked_when_a_task_asking_to_find_something_out_has_facts_to_communicate() -> None:
    def asking(task_id: str, instruction: str, communicate: list[str]) -> Task:
        t = task(task_id, "Shop", "write", "Hi.", [("get_order", "read", {"order_id": "ORD-0007"}, ORDER)])
        scenario = t.user_scenario.model_copy(update={"instructions": t.user_scenario.instructions.model_copy(
            update={"task_instructions": instruction})})
        criteria = t.evaluation_criteria.model_copy(update={"communicate_info": communicate})
        return t.model_copy(update={"user_scenario": scenario, "evaluation_criteria": criteria})

    tasks = [asking("Q1", "You want to know the total of your order. Then you want to cancel it.", []),
             asking("Q2", "You want to know the total of your order.", ["12.5"]),
             asking("Q3", "You want to cancel your order. You also want to know the refund you will get.", ["12.5"]),
             asking("Q4", "You want to cancel your order.", [])]  # asks nothing: not counted
    checked = quality_report(tasks, [], WRITES).overall.questions_checked
    assert (checked.count, checked.total) == (2, 3)
