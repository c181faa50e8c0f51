"""Counts the demonstrator's dialogue flaws in a workspace's rollouts (outputs/rollouts/*.jsonl):

1. search filter asked: the assistant asked for a value the user gave only when asked, and it went into a
   search call as a filter (an attribute of the catalogue entity the user cannot know);
2. asked after a visible violation: in a refused request, the assistant asked for values after the read that
   already showed the rule broken (the violation was visible, the refusal came later);
3. name asked after the account was found: the assistant asked for a value equal to the person's name on the
   profile it had already read;
4. field dump: the assistant told a result as 'label value' pairs ("Boarding stay BST-0030: arrival day Monday,
   ..., stay status booked, amount due 494.45, payment status unpaid") rather than in sentences;
5. customer in the third person: the assistant or the user spoke of the customer as "the customer", "the
   member's ..." in their own words (the policy's quoted statements aside);
6. nested label: a label inside a label ("the vet visit where the pet was vaccinated of the first boarding
   stay", "the doctor's name of the doctor of my appointment", "the kind of suite of the boarding suite of my
   stay");
7. confirmation as a field list: the change the assistant asks the customer to confirm is told as 'label value'
   pairs ("cancel a pending policy: pet policy PPO-0005; first day of coverage Saturday, April 4, 2026");
8. new value asked by its plain label: the assistant asks for a value by the very label under which it has just
   told the current one ("the first day of coverage is Tuesday, April 28, 2026 ... Could you give me the first
   day of coverage?"), where a person asks for the new one;
9. done before a refusal: a message that opens with "All done." or the like, then refuses (what was done is
   only the first part of what was asked);
10. value never given: a tool call carries a value (not a yes/no filter) that no user message said and no
   earlier tool result held: the assistant made it up.

Usage: python bench/dialogue_flaws.py WORKSPACE [--show N]  (prints counts per flaw, and N examples of each)
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from skiller.evaluator.quality import made_up_value
from skiller.servers.episode import Transcript

_REFUSAL = re.compile(r"Our policy says:")
_CONFIRM = re.compile(r"go ahead\?|proceed\?", re.I)
_CLOSE = re.compile(r"anything else", re.I)
_ASK = re.compile(r"^(For the new [^,]+, )?(Could you please tell me|May I have|Could you give me)\s+|(, please)?\?$", re.I)
_IDENTITY = re.compile(r"your (full name|person id)", re.I)


def _text(m: dict[str, Any]) -> str:
    return str(m.get("content") or "")


def _questions(text: str) -> bool:
    """An assistant message asking the user for values (not a confirmation, not the closing question)."""
    return "?" in text and not _CONFIRM.search(text) and not _CLOSE.search(text)


def _calls(messages: list[dict[str, Any]]) -> list[tuple[int, str, dict[str, Any]]]:
    out = []
    for i, m in enumerate(messages):
        for c in m.get("tool_calls") or []:
            try:
                args = json.loads(c["function"].get("arguments") or "{}")
            except ValueError:
                args = {}
            out.append((i, c["function"]["name"], args))
    return out


def search_filter_asked(messages: list[dict[str, Any]]) -> bool:
    first = next((_text(m) for m in messages if m["role"] == "user"), "").casefold()
    for i, name, args in _calls(messages):
        if not re.search(r"(^|_)(search|find)_", name):
            continue
        for value in args.values():
            if not isinstance(value, str) or value.casefold() in first:
                continue
            answered = [j for j, m in enumerate(messages[:i]) if m["role"] == "user" and value.casefold() in _text(m).casefold()]
            if answered and any(messages[k]["role"] == "assistant" and _questions(_text(messages[k]))
                                for k in range(answered[0] - 1, -1, -1)[:1]):
                return True
    return False


def asked_after_violation(messages: list[dict[str, Any]]) -> bool:
    """A refusal preceded by questions asked after the last tool result (the reads were all done)."""
    refusal = next((i for i, m in enumerate(messages) if m["role"] == "assistant" and _REFUSAL.search(_text(m))), None)
    if refusal is None:
        return False
    last_tool = max((i for i, m in enumerate(messages[:refusal]) if m["role"] == "tool"), default=None)
    if last_tool is None:
        return False
    judged = re.search(r"You asked for (?:the )?(.*?), which falls outside", _text(messages[refusal]))
    for m in messages[last_tool + 1:refusal]:
        text = _text(m)
        if m["role"] != "assistant" or not _questions(text) or _IDENTITY.search(text):
            continue
        asked = _ASK.sub("", re.split(r"(?<=[.!?)])\s+", text)[-1]).strip().removeprefix("the ").removeprefix("new ")
        if not (judged and " and " not in asked and judged.group(1).startswith(asked)):
            return True  # a value other than the one the rule judges
    return False


def name_asked_after_profile(messages: list[dict[str, Any]]) -> bool:
    name = None
    for i, m in enumerate(messages):
        if m["role"] == "tool":
            try:
                out = json.loads(_text(m))
            except ValueError:
                continue
            if isinstance(out, dict) and out.get("first_name") and out.get("last_name") and name is None:
                name = f"{out['first_name']} {out['last_name']}"
        elif m["role"] == "user" and name is not None and name in _text(m) and i > 0:
            if messages[i - 1]["role"] == "assistant" and _questions(_text(messages[i - 1])):
                return True
    return False


_DUMP = re.compile(r"\b[A-Z][A-Z0-9]*-\d+: (?!the |you |it )[a-z][a-z' ]*? (?:\d|[A-Z]|yes\b|no\b)|"
                   r", (?:[a-z]+ )*status (?!is\b|of\b)[a-z]")
_ROLE = r"(?:customer|member|owner|tenant|student|applicant|patron|diner|policyholder|homeowner|client)"
_THIRD = re.compile(rf"\bthe {_ROLE}\b(?! (?:number|reference|code|segment|type|level|tier|since|id)\b)|\b{_ROLE}'s\b", re.I)
_QUOTED = re.compile(r"Our policy says: .*?\(rule [^)]*\)|cannot make an exception: [^.]*\.")
_SPAN = r"(?:(?! and )[^.?!,;:])*?"  # within one phrase
_NESTED = re.compile(r"\b(\w+)'s \w+ of the (?:\w+ )?\1\b"  # "the doctor's name of the doctor"
                     r"|\bof the (\w+) of (?:the (?:first|second|third|fourth)|my|your) (?:\w+ )?\2\b"  # "day of the visit of the first visit"
                     rf"|\b(?:where|which(?! of)|who|whose|that|is for|was for){_SPAN} of (?:the (?:first|second|third|fourth)|my|your) "
                     rf"|\bof {_SPAN} of {_SPAN} of (?:the|my|your) ")  # three 'of's in one label


def field_dump(messages: list[dict[str, Any]]) -> bool:
    return any(m["role"] == "assistant" and _DUMP.search(_text(m)) for m in messages)


def third_person(messages: list[dict[str, Any]]) -> bool:
    return any(m["role"] in ("assistant", "user") and _THIRD.search(_QUOTED.sub("", _text(m))) for m in messages)


def nested_label(messages: list[dict[str, Any]]) -> bool:
    return any(m["role"] in ("assistant", "user") and _NESTED.search(_text(m)) for m in messages)


def confirmation_list(messages: list[dict[str, Any]]) -> bool:
    return any(m["role"] == "assistant" and _CONFIRM.search(_text(m)) and "; " in _text(m) for m in messages)


_TOLD = re.compile(r"(?:^|[:,] |, and |\. )(?:the )?([a-z][a-z' ]*?) is (?=[A-Z0-9])")


_SCOPED = re.compile(r"^For the (?:new|first|second|third|fourth|fifth|sixth) ")


def new_value_by_label(messages: list[dict[str, Any]]) -> bool:
    told: set[str] = set()
    for m in messages:
        if m["role"] == "user":
            told = set()
        if m["role"] != "assistant" or not _text(m):
            continue
        text = _text(m)
        told |= {t.removeprefix("the ") for t in _TOLD.findall(text)}
        question = re.split(r"(?<=[.!?])\s+", text)[-1]
        if not _questions(text) or _SCOPED.match(question):  # asked for another record: 'For the second rental, ...'
            continue
        parts = [re.sub(r" for [A-Z]\w+$", "", p.strip()).removeprefix("the ") for p in _ASK.sub("", question).split(" and ")]
        if told & set(parts):
            return True
    return False


_DONE_OPENER = re.compile(r"^(All done|That's done|Done, that went through|All set)\.")


def done_before_refusal(messages: list[dict[str, Any]]) -> bool:
    return any(m["role"] == "assistant" and _DONE_OPENER.search(_text(m)) and _REFUSAL.search(_text(m))
               for m in messages)


def value_never_given(messages: list[dict[str, Any]]) -> bool:
    return made_up_value(Transcript.model_construct(messages=messages))  # the report's figure, on one rollout


FLAWS = {"1 search filter asked": search_filter_asked, "2 asked after a visible violation": asked_after_violation,
         "3 name asked after the account was found": name_asked_after_profile,
         "4 field dump": field_dump, "5 customer in the third person": third_person, "6 nested label": nested_label,
         "7 confirmation as a field list": confirmation_list, "8 new value asked by its plain label": new_value_by_label,
         "9 done before a refusal": done_before_refusal, "10 value never given": value_never_given}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print the task ids of N examples of each flaw")
    a = parser.parse_args()
    rows = [json.loads(line) for f in sorted((a.workspace / "outputs" / "rollouts").glob("*.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]
    print(f"rollouts: {len(rows)}")
    for label, test in FLAWS.items():
        hits = [r for r in rows if test(r["messages"])]
        fused = sum(1 for r in hits if len(r.get("domains") or []) > 1)
        print(f"{label}: {len(hits)} ({fused} fused)")
        for r in hits[:a.show]:
            print(f"    {r['environment']} {r['task_id']}")


if __name__ == "__main__":
    main()
