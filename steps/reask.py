"""Re-ask, then drop only what failed: one request whose answer is checked, asked once more with the
problems listed, and given up (None plus the problems) when the second answer fails too."""
from __future__ import annotations

from typing import Callable, TypeVar

from pydantic import BaseModel

from skiller.llm.interface import LLMError, LLMRequest, Message, ProviderUnavailable
from skiller.steps.base import StepContext

T = TypeVar("T", bound=BaseModel)
Check = Callable[[T], tuple[T, list[str]]]
"""(answer) -> (the answer with the fields code owns set, its problems; empty when it is sound)."""


async def ask_checked(request: LLMRequest, check: Check, ctx: StepContext, tries: int = 2) -> tuple[T | None, list[str]]:
    """Ask `request`; an answer with problems (or none valid) is asked again with the problems listed.
    A provider outage is not the answer's fault: it propagates so the next run retries the work."""
    problems: list[str] = []
    for attempt in range(tries):
        try:
            answer = await ctx.llm.ask(request)
        except ProviderUnavailable:
            raise
        except LLMError as exc:
            problems = [str(exc)]
            continue  # the provider already fed the schema errors back; one more fresh try
        answer, problems = check(answer)
        if not problems:
            return answer, []
        if attempt + 1 < tries:
            request = request.model_copy(update={
                "messages": (*request.messages, Message(role="assistant", content=answer.model_dump_json()),
                             Message(role="user", content="That answer was rejected: " + "; ".join(problems)
                                     + ". Give the whole answer again with these problems fixed.")),
                "context": request.context | {"attempt": attempt + 1, "problems": problems}})
    return None, problems
