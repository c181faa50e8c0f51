"""The NL-assertion judge: its request and verdict models, and `RuleJudge`, the deterministic builtin judge."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skiller.evaluator.matching import mentions, message_text
from skiller.servers.episode import Transcript
from skiller.llm.interface import LLMError, LLMRequest, LLMResponse, Message, Role

JUDGE_PURPOSE = "eval.nl_assertion"
_MAX_TOOL_TEXT = 2000  # a long tool output is cut in the judge's prompt (the context keeps it whole)

_SYSTEM = """You judge whether a customer-service conversation between a user and an AI assistant meets
a list of expected outcomes. Judge only from what the conversation shows: the assistant's messages, the
tool calls it made and their results. Return exactly one verdict per assertion, in the given order:
echo the assertion, set `met` to true or false, and give a one-sentence justification citing the
conversation. When the conversation gives no evidence for an assertion, it is not met."""


class Verdict(BaseModel):
    """The judge's answer for one assertion."""

    model_config = ConfigDict(extra="forbid")
    assertion: str
    met: bool = Field(strict=True)  # "yes" or 1 is a malformed answer, not a pass
    justification: str


class Verdicts(BaseModel):
    """One verdict per assertion, in the order the assertions were given."""

    model_config = ConfigDict(extra="forbid")
    verdicts: list[Verdict]


def _render(transcript: Transcript, assertions: Sequence[str]) -> str:
    lines: list[str] = ["Conversation:"]
    for message in transcript.messages:
        role = message.get("role")
        if role == "system":
            continue  # the judge sees the conversation, not the assistant's instructions
        text = message_text(message)
        if role == "tool":
            text = text if len(text) <= _MAX_TOOL_TEXT else text[:_MAX_TOOL_TEXT] + " …(cut)"
        if text:
            lines.append(f"{role}: {text}")
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            lines.append(f"{role} calls tool {function.get('name')}({function.get('arguments', '')})")
    lines.append("")
    lines.append("Assertions:")
    lines.extend(f"{i}. {a}" for i, a in enumerate(assertions, 1))
    return "\n".join(lines)


def judge_request(transcript: Transcript, assertions: Sequence[str]) -> LLMRequest:
    """The request every judge answers: the rendered conversation for model judges, and in `context`
    the assertions and tool calls as data for `RuleJudge`."""
    context = {
        "assertions": list(assertions),
        "assistant_text": [message_text(m) for m in transcript.messages if m.get("role") == "assistant"],
        "tool_calls": [{"name": c.name, "arguments": c.arguments, "ok": c.ok} for c in transcript.tool_calls],
    }
    return LLMRequest(purpose=JUDGE_PURPOSE, role="text", system=_SYSTEM,
                      messages=(Message(role="user", content=_render(transcript, assertions)),),
                      response_model=Verdicts, context=context, temperature=0.0, max_tokens=4096)


_TOOL = r"[`'\"]?([A-Za-z0-9_-]+)[`'\"]?"
_DID_NOT_CALL = re.compile(rf"the assistant (?:did not|didn't|never) call(?:ed)? {_TOOL}\.?", re.I)
_CALLED = re.compile(rf"the assistant called {_TOOL}\.?", re.I)
_TOLD = re.compile(r"the assistant told the user (?:that )?(.+)", re.I | re.S)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"  # straight and curly quotes


def _told_text(raw: str) -> str:
    text = raw.strip().removesuffix(".").strip().strip(_QUOTES).strip()
    return text.removesuffix(".").strip()


def _rule_verdict(assertion: str, calls: list[dict[str, Any]], said: list[str]) -> dict[str, Any]:
    sentence = assertion.strip()
    if m := _DID_NOT_CALL.fullmatch(sentence):
        tool = m.group(1)
        made = [c for c in calls if c["name"] == tool]
        ok = sum(1 for c in made if c["ok"])
        why = (f"no call to {tool}" if not made
               else f"{tool} was called {len(made)} time(s) ({ok} succeeded); an attempt counts as a call")
        return {"met": not made, "justification": why}
    if m := _CALLED.fullmatch(sentence):
        tool = m.group(1)
        made = [c for c in calls if c["name"] == tool]
        why = f"{tool} was called {len(made)} time(s)" if made else f"no call to {tool}"
        return {"met": bool(made), "justification": why}
    if m := _TOLD.fullmatch(sentence):
        text = _told_text(m.group(1))
        found = bool(text) and mentions("\n".join(said), text)
        why = f"the assistant's messages {'contain' if found else 'do not contain'} {text!r}"
        return {"met": found, "justification": why}
    return {"met": False, "justification": "cannot judge: the rule judge knows no rule for this sentence"}


class RuleJudge:
    """A deterministic Provider for `eval.nl_assertion` (the builtin default judge).

    It understands three sentence forms, case-insensitively, with an optional final period and the tool
    name optionally quoted: "The assistant did not call <tool>" (any attempt counts as a call, even one
    the environment rejected), "The assistant called <tool>", and "The assistant told the user [that]
    <text>" (<text> must appear in the assistant's messages, by the COMMUNICATE matching rules). Every
    other sentence is judged unmet with "cannot judge": an unknown assertion never passes by default.
    """

    name = "rule-judge"

    def model_for(self, role: Role) -> str:
        return "rule-judge-1"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose != JUDGE_PURPOSE:
            raise LLMError(f"rule-judge answers only {JUDGE_PURPOSE}, not {request.purpose}")
        context = request.context
        calls, said = context.get("tool_calls", []), context.get("assistant_text", [])
        verdicts = [{"assertion": a, **_rule_verdict(a, calls, said)} for a in context.get("assertions", [])]
        output = request.response_model.model_validate({"verdicts": verdicts})
        return LLMResponse(output=output, model=self.model_for(request.role))


def describe_verdicts(verdicts: Verdicts) -> str:
    """One line per verdict, for a component's detail."""
    return "; ".join(f"{'met' if v.met else 'UNMET'}: {v.assertion} ({v.justification})" for v in verdicts.verdicts)
