"""s19: evaluate every transcript of the task's current campaign (database, actions, communication, assertions)."""
from __future__ import annotations

from skiller.evaluator import EvaluationResult, RuleJudge, evaluate
from skiller.servers.task import EnvironmentBundle, Task
from skiller.steps.base import Frozen, StepContext, StepOutput, step
from skiller.steps.s16_validation import entered_environment
from skiller.steps.s18_rollout import Transcripts


class Evaluations(Frozen):
    campaign: str
    agent: str
    results: list[EvaluationResult]


class S19Input(Frozen):
    task: Task
    transcripts: Transcripts
    environment: EnvironmentBundle
    database: bytes


class S19Output(StepOutput):
    evaluation: Evaluations


@step("s19", machine="task", source="rolled_out", triggers={"evaluate": "evaluated"})
async def run(inputs: S19Input, ctx: StepContext) -> S19Output:
    judge = RuleJudge() if ctx.config.evaluation.judge == "rules" else ctx.llm.as_provider()
    results = []
    brief = ctx.config.evaluation.judge == "rules"  # an LLM judge awaits its answers holding the environment
    async with entered_environment(inputs.environment, inputs.database, ctx.sandbox, ctx.environments,
                                   brief=brief) as env:
        for transcript in inputs.transcripts.items:
            results.append(await evaluate(inputs.task, transcript, env, judge))
    rewards = [r.reward for r in results if not r.infrastructure_error]
    return S19Output(
        evaluation=Evaluations(campaign=inputs.transcripts.campaign, agent=inputs.transcripts.agent, results=results),
        payload={"campaign": inputs.transcripts.campaign, "agent": inputs.transcripts.agent,
                 "mean_reward": round(sum(rewards) / len(rewards), 4) if rewards else None})
