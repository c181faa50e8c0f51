"""Reward combination: run the components of a task's reward basis on one transcript and multiply them."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from skiller.evaluator.checks import (
    ComponentResult,
    EvaluationSetupError,
    check_action,
    check_communicate,
    check_db,
    check_nl_assertions,
    check_output,
)
from skiller.evaluator.judge import RuleJudge
from skiller.servers.environment import Environment
from skiller.servers.episode import Termination, Transcript
from skiller.servers.task import Task
from skiller.llm.interface import Provider


class EvaluationResult(BaseModel):
    """The score of one transcript: one line of `results.jsonl`."""

    model_config = ConfigDict(frozen=True)
    task_id: str
    transcript_id: str
    trial: int
    environment: str  # the domain, or the fused name: the row `summary_table` groups by
    agent: str
    reward: float  # product of the basis components: 1.0 or 0.0
    components: list[ComponentResult]  # in reward-basis order; empty when no evaluator ran
    termination: Termination
    infrastructure_error: bool  # excluded from pass^k and averages
    reason: str = ""  # why no evaluator ran (premature termination, infrastructure error)


async def evaluate(task: Task, transcript: Transcript, env: Environment,
                   judge: Provider | None = None) -> EvaluationResult:
    """Score one transcript against its task: reward = product over the task's reward basis.

    Async because the NL_ASSERTION judge is an LLM call; the other checks run inline (the DB replay makes
    blocking calls into `env`, a few milliseconds each). From sync code: `asyncio.run(evaluate(...))`.
    `judge` defaults to `RuleJudge`. A premature termination scores 0 and an `infrastructure_error`
    transcript is marked excluded; neither runs any evaluator (nor spends a judge call).
    `env` must run the task's environment; it is reset and replayed, and left in an unspecified state, so
    concurrent evaluations need one environment each.
    """
    if transcript.task_id != task.id:
        raise EvaluationSetupError(f"transcript {transcript.id} is for task {transcript.task_id}, not {task.id}")
    basis = list(dict.fromkeys(task.evaluation_criteria.reward_basis))
    if not basis:
        raise EvaluationSetupError(f"task {task.id} has an empty reward basis: every transcript would pass")
    head = {"task_id": task.id, "transcript_id": transcript.id, "trial": transcript.trial,
            "environment": task.environment, "agent": transcript.agent, "termination": transcript.termination}
    error = f": {transcript.error}" if transcript.error else ""
    if transcript.termination == "infrastructure_error":
        return EvaluationResult(**head, reward=0.0, components=[], infrastructure_error=True,
                                reason=f"infrastructure error{error}; excluded from pass^k")
    if transcript.premature:
        return EvaluationResult(**head, reward=0.0, components=[], infrastructure_error=False,
                                reason=f"premature termination ({transcript.termination}){error}")
    components: list[ComponentResult] = []
    for name in basis:
        if name == "DB":
            components.append(check_db(task, transcript, env))
        elif name == "ACTION":
            components.append(check_action(task, transcript))
        elif name == "COMMUNICATE":
            components.append(check_communicate(task, transcript))
        elif name == "OUTPUT":
            components.append(check_output(task, transcript))
        elif name == "NL_ASSERTION":
            components.append(await check_nl_assertions(task, transcript, judge or RuleJudge()))
        else:  # RewardBasis is a closed Literal; a new member must get its check here
            raise EvaluationSetupError(f"task {task.id}: no evaluator for reward basis {name!r}")
    reward = 1.0 if all(c.passed for c in components) else 0.0
    return EvaluationResult(**head, reward=reward, components=components, infrastructure_error=False)
