"""Test helpers for rollouts: Library tasks with replayed gold hashes, personas and scripted participants."""
from __future__ import annotations

from typing import Any

from skiller.rollout import AgentToolCall, AgentTurn, UserTurn
from skiller.servers import Environment
from skiller.servers.task import (
    EvaluationCriteria,
    GoldenAction,
    Instructions,
    Mistake,
    Persona,
    RuleStatement,
    Task,
    UserScenario,
)

POLICY = "You are the Library assistant. A member may have at most 2 active loans (LIB-1)."
FACTS = {"person id": "P-001", "full name": "Ada Lovelace", "author": "Knuth"}
LIB_1 = RuleStatement(id="LIB-1", tool="borrow_book", kind="max_active",
                      statement="A member may have at most 2 active loans.")

CURT = Persona(name="Ada Lovelace", style="curt", patience="low", verbosity="terse",
               language_register="casual")
CHATTY = Persona(name="Ada Lovelace", style="chatty", patience="high", verbosity="detailed",
                 language_register="formal")


def action(n: int, name: str, mode: str = "read", **arguments: Any) -> GoldenAction:
    return GoldenAction(action_id=f"a{n}", name=name, arguments=arguments, mode=mode)


def make_task(env: Environment, task_id: str, *, actions: list[GoldenAction], kind: str = "write",
              facts: dict[str, str] | None = None, persona: Persona = CURT, first_query: str = "Hi.",
              communicate_info: list[str] | None = None, violated_rule: str | None = None,
              rule: RuleStatement | None = None, mistake: Mistake | None = None) -> Task:
    """A Library task whose hashes come from replaying its golden actions on a freshly reset env."""
    env.reset()
    initial = env.state_hash()
    replayed = []
    for golden in actions:
        result = env.call(golden.name, golden.arguments)
        assert result.ok, result.error
        replayed.append(golden.model_copy(update={"expected": result.value}))
    gold = env.state_hash()
    env.reset()
    scenario = UserScenario(
        persona=persona,
        instructions=Instructions(domain="Library", reason_for_call="borrow a book",
                                  known_info="your member id", unknown_info="the loan id",
                                  task_instructions="borrow the book and ask when it is due"),
        facts=dict(FACTS) if facts is None else facts, mistake=mistake)
    return Task(id=task_id, domains=["Library"], environment="Library", kind=kind, description=task_id,
                user_scenario=scenario, first_query=first_query,
                evaluation_criteria=EvaluationCriteria(actions=replayed, communicate_info=communicate_info or [],
                                                       reward_basis=["DB", "COMMUNICATE"]),
                initial_state_hash=initial, gold_state_hash=gold, violated_rule=violated_rule, rule=rule)


def borrow_task(env: Environment, persona: Persona = CURT, mistake: Mistake | None = None) -> Task:
    return make_task(env, "lib-borrow", persona=persona, first_query="I'd like to borrow a book.", mistake=mistake,
                     actions=[action(1, "get_member", person_id="P-001"),
                              action(2, "search_books", query="Knuth", available_only=True),
                              action(3, "borrow_book", "write", person_id="P-001", book_id="BK-005")],
                     communicate_info=["LN-0005", "2026-03-16"])


def refusal_task(env: Environment) -> Task:
    return make_task(env, "lib-refuse", kind="refusal", first_query="Please lend me another book.",
                     facts={"person id": "P-002", "full name": "Alan Turing"},
                     actions=[action(1, "get_member", person_id="P-002")], violated_rule="LIB-1", rule=LIB_1)


def call(name: str, arguments: str) -> AgentToolCall:
    return AgentToolCall(id="model-id", name=name, arguments=arguments)


class ScriptedAgent:
    """Plays its turns in order (read from the conversation); repeats the last one when it runs out."""

    name = "scripted"
    model: str | None = None

    def __init__(self, *turns: AgentTurn) -> None:
        self.turns = turns

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn:
        made = sum(1 for m in messages if m["role"] == "assistant")
        return self.turns[min(made, len(self.turns) - 1)]


class RaisingAgent:
    name = "raising"
    model: str | None = None

    async def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AgentTurn:
        raise RuntimeError("model exploded")


class RaisingUser:
    name = "raising"
    model: str | None = None

    async def respond(self, messages: list[dict[str, Any]]) -> UserTurn:
        if not any(m["role"] == "user" for m in messages):
            return UserTurn(text="hello")
        raise ValueError("user lost the plot")
