"""Builtin answer to s14.judge: rule-based template scores from checkable properties of a template."""
from __future__ import annotations

import re
from typing import Any

from skiller.world.builtin.registry import answers
from skiller.llm.interface import LLMRequest
from skiller.contract.placeholders import PLACEHOLDER

__all__ = ["judge_template"]

_SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


def _clamp(x: float) -> int:
    return max(1, min(5, int(x + 0.5)))


def judge_template(t: dict[str, Any]) -> dict[str, int]:
    """Rule-based scores from checkable properties of a template dict (TaskTemplate JSON)."""
    instruction, reason = str(t.get("instruction") or ""), str(t.get("reason_for_call") or "")
    known = {str(k): str(v) for k, v in (t.get("known_info") or {}).items()}
    calls = list(t.get("trajectory") or [])
    slots = {s.get("slot") for s in t.get("selectors") or []}
    kind = t.get("kind")
    n_words = len(instruction.split())
    # motivation: a reason in its own words
    motivation = 5 if len(reason.split()) >= 6 else 3 if len(reason.split()) >= 3 else 1
    if reason.strip() and reason.strip() == instruction.strip():
        motivation -= 2
    # coherence: every id argument comes from a selected row or an earlier call's output
    coherence = 5 if calls else 1
    for i, call in enumerate(calls, start=1):
        for name, value in (call.get("arguments") or {}).items():
            if not name.endswith("_id"):
                continue
            m = PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
            slot = m.group(1) if m else None
            ok = slot is not None and (slot in slots or (slot.startswith("out") and slot[3:].isdigit() and int(slot[3:]) < i))
            coherence -= 0 if ok else 2
    if kind == "refusal" and not (t.get("forbidden") and t.get("violated_rule")):
        coherence -= 3
    if kind == "refusal" and t.get("forbidden") and any(c.get("tool") == t["forbidden"].get("tool") for c in calls):
        coherence -= 2
    # completeness: the user knows every selected value the calls need; the unknowns are stated
    needed = {m.group(0) for c in [*calls, t.get("forbidden") or {}] for v in (c.get("arguments") or {}).values()
              if isinstance(v, str) for m in PLACEHOLDER.finditer(v) if m.group(1) and not m.group(1).startswith("out")}
    given = " ".join(known.values()) + " " + instruction
    completeness = 5 - 2 * len([p for p in needed if p not in given])
    completeness -= 0 if str(t.get("unknown_info") or "").strip() else 1
    asks = kind == "read" or re.search(r"\bwant to know\b", instruction)  # a question the assistant must answer
    completeness -= 1 if asks and not t.get("communicate") else 0
    completeness -= 2 if needed and not slots else 0
    # naturalness: sentences of a sensible length in words, not identifiers or SQL
    naturalness = 5 if 8 <= n_words <= 90 else 3 if 4 <= n_words <= 140 else 1
    naturalness -= 1 if not instruction.rstrip().endswith((".", "?", "!")) else 0
    naturalness -= min(2, len(_SNAKE.findall(PLACEHOLDER.sub("", instruction))))
    naturalness -= 2 if re.search(r"\bSELECT\b|[{}]", instruction) else 0
    # specificity: concrete values (placeholders) in the goal
    concrete = len(PLACEHOLDER.findall(instruction))
    specificity = 1 if concrete == 0 else 3 if concrete == 1 else 5
    if kind in ("write", "refusal") and concrete < 1:
        specificity = 1
    scores = {"motivation_clarity": _clamp(motivation), "logical_coherence": _clamp(coherence),
              "completeness": _clamp(completeness), "naturalness": _clamp(naturalness),
              "specificity": _clamp(specificity)}
    scores["overall_score"] = _clamp(sum(scores.values()) / len(scores))
    return scores


@answers("s14.judge")
def template_judge(request: LLMRequest) -> dict:
    return judge_template(request.context["template"])
