"""The builtin provider: a deterministic offline generator answering every step from the catalog."""
from __future__ import annotations

from pydantic import BaseModel, ValidationError

# Importing the answer modules registers their answers (their `@answers` decorators fill ANSWERS).
from skiller.world.builtin import environment, fusion, tasks, world  # noqa: F401
from skiller.world.builtin.registry import ANSWERS
from skiller.llm.interface import LLMError, LLMRequest, LLMResponse, Role, Usage

class BuiltinProvider:
    name = "builtin"

    def model_for(self, role: Role) -> str:
        return f"builtin-{role}"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        answer = ANSWERS.get(request.purpose)
        if answer is None:
            raise LLMError(f"builtin provider cannot answer '{request.purpose}'")
        try:
            raw = answer(request)
            output = raw if isinstance(raw, BaseModel) else request.response_model.model_validate(raw)
        except (KeyError, ValidationError) as exc:
            raise LLMError(f"builtin answer to {request.purpose} is invalid: {str(exc).splitlines()[0]}") from None
        return LLMResponse(output=output, model=self.model_for(request.role), usage=Usage())


__all__ = ["BuiltinProvider"]
