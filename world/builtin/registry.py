"""Which builtin generator answers which request purpose (filled by decorators)."""
from __future__ import annotations

from typing import Any, Callable

from skiller.llm.interface import LLMRequest

Answer = Callable[[LLMRequest], Any]
ANSWERS: dict[str, Answer] = {}


def answers(purpose: str) -> Callable[[Answer], Answer]:
    def register(fn: Answer) -> Answer:
        ANSWERS[purpose] = fn
        return fn
    return register
