"""Structured output through one forced `respond` tool, as every model provider asks for it: the
tool's name and description, and how a validation failure is told back to the model."""
from __future__ import annotations

from pydantic import ValidationError

from skiller.llm.endpoint import one_line

__all__ = ["RESPOND_TOOL", "describe_validation", "cut_error", "larger_cap", "respond_description"]

RESPOND_TOOL = "respond"


def respond_description(schema_name: str) -> str:
    return f"Give your answer as a {schema_name}. Call this tool exactly once."


def describe_validation(exc: ValidationError, schema_name: str) -> str:
    errors = [f"{'.'.join(str(part) for part in err['loc']) or '(root)'}: {err['msg']}"
              for err in exc.errors(include_url=False)]
    # Long for the model's sake; the LLMError trims it.
    return one_line(f"the input does not match {schema_name}: " + "; ".join(errors), limit=4000)


def larger_cap(cap: int, ceiling: int) -> int | None:
    """The cap to ask again with after an answer was cut at `cap`: double, at most `ceiling`; None when
    the cap is already the ceiling (asking again at the same cap would be cut again)."""
    return min(2 * cap, ceiling) if cap < ceiling else None


def cut_error(provider: str, model: str, purpose: str, cap: int) -> str:
    """One line for an answer still cut at the ceiling, naming the keys that would raise it."""
    return (f"{provider}/{model}: {purpose}: the answer was cut at max_tokens={cap}, the ceiling "
            f"provider.{provider}.max_output_tokens; raise it (and output_caps.{purpose.replace('.', '_')}) "
            "or ask for less")
