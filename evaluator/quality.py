"""Data-quality report: is a workspace's set of tasks and rollouts worth training on? Pure functions over tasks and transcripts.

Every figure is defined in one function below and counted per environment and over all of them:
- needed values: the distinct argument values of a task's assistant golden calls, booleans left
  out, and values the agent reads from an earlier golden call's output left out (the customer need
  not know them); "in first message" when the task's first user message says one (any spoken form);
- a write is confirmed when the last user message before it says yes (`servers.dialogue.is_yes`),
  the assistant's words before that asked a question, and no other write came in between;
- raw JSON: an assistant message whose text holds a JSON object or array member (`{"key": …`);
- a refusal states the rule when its assistant text holds at least 60% of the content words of the
  violated rule's statement (an unknown statement counts as not stated; this and the next are defined in
  `evaluator.refusals`);
- a refusal shows why when, under a rule a read can show broken (every kind but those judging only the
  request's own value: a date outside a window, an amount outside a range, a fee), its assistant text after
  the last tool call, the rule's statement taken out, says a value a successful call returned that no user
  message said (a status, the records a limit counts, a balance) or names a yes/no field a call returned; under
  an ownership rule, it says the record is another person's ('not yours', 'another customer's');
- a question is checked when a task whose instruction asks the customer to find something out ('You want to
  know', 'You are looking for', 'You want the') has facts the assistant must communicate (an answer the
  evaluation checks; without them a demonstrator may skip the question and still score);
- a recovered tool error: a failed call followed later by a successful call of the same tool, in a
  rollout that ended normally (user or agent stop);
- template text: instruction or template residue in a first message (second-person goals, placeholders,
  stop tokens, tool names);
- n-gram diversity: distinct word 3-grams over all 3-grams of the user (resp. assistant) messages;
- a rule kind is exercised by a refusal task that breaks a rule of that kind, and by a compliant (non-refusal)
  task one of whose golden writes calls a tool a rule of that kind guards (the rule was checked and kept).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from skiller.contract.dialogue import is_yes, said_value, value_text
from skiller.contract.policy import PolicyRule
from skiller.evaluator.refusals import WORD as _WORD, message_text as _text, shows_why, states_rule
from skiller.servers.episode import Transcript
from skiller.servers.task import Task

__all__ = ["Figures", "KindTasks", "QualityReport", "RuleFigures", "Share", "quality_report", "report_json",
           "rule_figures", "template_text"]

_RAW_JSON = re.compile(r'[{\[]\s*"[^"\n]{1,80}"\s*:|"\w+"\s*:\s*(?:"|-?\d|\[|\{|true\b|false\b|null\b)')
_TEMPLATE = re.compile(r"I need help with this:|\bYou (?:want|are|need|know|do not)\b|\bYour goal\b|<[\w.+-]+>|###|"
                       r"\bThen, with\b|\b[a-z]+(?:_[a-z0-9]+){2,}\b|\{\w+\}")
_NORMAL_END = {"user_stop", "agent_stop"}
_ASKS = re.compile(r"\bYou (?:also )?want to know\b|\bYou are looking for\b|\bYou want the\b")


class Share(BaseModel):
    """`count` of `total` (share is None when there is nothing to count)."""

    model_config = ConfigDict(frozen=True)
    count: int
    total: int
    share: float | None

    @classmethod
    def of(cls, count: int, total: int) -> Share:
        return cls(count=count, total=total, share=round(count / total, 4) if total else None)


class Figures(BaseModel):
    model_config = ConfigDict(frozen=True)
    tasks: int
    rollouts: int
    task_kinds: dict[str, int]
    task_patterns: dict[str, int]  # "write: R R W" (task kind and the read/write sequence of its golden calls)
    golden_calls_per_task: float | None
    writes_per_task: float | None
    # Harder tasks: kind x tool-kind sequence ("write: get_profile get set_status", a tool's mode R/W when
    # its kind is unknown), how many there are and the largest one's share; long and multi-write tasks.
    kind_patterns: dict[str, int] = {}
    largest_pattern: Share = Share(count=0, total=0, share=None)
    tasks_with_4_calls: Share = Share(count=0, total=0, share=None)
    tasks_with_2_writes: Share = Share(count=0, total=0, share=None)
    user_turns_per_rollout: float | None
    needed_values_in_first_message: Share
    writes_confirmed: Share
    assistant_messages_with_raw_json: Share
    refusals_stating_rule: Share
    refusals_showing_why: Share = Share(count=0, total=0, share=None)
    questions_checked: Share = Share(count=0, total=0, share=None)
    rollouts_with_recovered_tool_error: Share
    # A call carrying a value (not a yes/no flag) no user message said and no system prompt or earlier result
    # held: the assistant made it up (an agent trained on it learns to invent ids, dates and amounts).
    rollouts_with_made_up_value: Share = Share(count=0, total=0, share=None)
    first_messages_with_template_text: Share
    system_prompts_with_date: Share
    distinct_first_queries: Share
    user_distinct_3grams: float | None
    assistant_distinct_3grams: float | None
    tool_coverage: Share
    tools_never_called: list[str]


class KindTasks(BaseModel):
    """One rule kind: its rules in the run's policies and the tasks that exercise it."""

    model_config = ConfigDict(frozen=True)
    rules: int
    compliant_tasks: int
    refusal_tasks: int


class RuleFigures(BaseModel):
    model_config = ConfigDict(frozen=True)
    kinds: dict[str, KindTasks]
    kinds_not_exercised: list[str]  # kinds lacking a compliant or a refusal task
    # rules depending on a customer attribute or a computed amount (the shell fills these from the catalog)
    attribute_or_amount_rules: Share | None = None
    catalog_attribute_or_amount_rules: Share | None = None


class QualityReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    environments: dict[str, Figures]
    overall: Figures
    single_domain: Figures | None = None  # the tasks of one domain each (cross-domain fusions left out)
    rules: RuleFigures | None = None


def rule_figures(tasks: Iterable[Task], rules: Mapping[str, Iterable[PolicyRule]]) -> RuleFigures:
    """Per rule kind of the environments' policies (`rules`: environment -> rules, tool names as the
    environment exposes them), the tasks exercising it compliantly and by a refusal."""
    by_env = {env: list(rs) for env, rs in rules.items()}
    counts = Counter(kind for _, kind in {(r.id, r.kind) for rs in by_env.values() for r in rs})  # a fusion repeats its members' rules
    compliant: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for t in tasks:
        if t.kind == "refusal":
            kind = t.rule.kind if t.rule else next((r.kind for r in by_env.get(t.environment, [])
                                                    if r.id == t.violated_rule), None)
            refused[kind or "?"] += 1
            continue
        written = {a.name for a in t.golden_actions if a.requestor == "assistant" and a.mode == "write"}
        for kind in {r.kind for r in by_env.get(t.environment, []) if r.tool in written}:
            compliant[kind] += 1
    kinds = {k: KindTasks(rules=counts[k], compliant_tasks=compliant[k], refusal_tasks=refused[k])
             for k in sorted(counts)}
    return RuleFigures(kinds=kinds, kinds_not_exercised=[k for k, v in kinds.items()
                                                         if not (v.compliant_tasks and v.refusal_tasks)])


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _scalars(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _scalars(v)
    elif isinstance(value, list):
        for v in value:
            yield from _scalars(v)
    elif value is not None and not isinstance(value, bool):
        yield value_text(value).casefold()


def needed_values(task: Task) -> list[str]:
    """Values the customer must supply for the golden calls (see the module docstring)."""
    known: set[str] = set()
    needed: list[str] = []
    for action in (a for a in task.golden_actions if a.requestor == "assistant"):
        for value in action.arguments.values():
            if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
                continue
            text = value_text(value)
            if text.casefold() not in known and text not in needed:
                needed.append(text)
        known |= set(_scalars(action.expected))
    return needed


def template_text(message: str) -> bool:
    return bool(_TEMPLATE.search(message))


def _confirmed_writes(transcript: Transcript, writes: set[str]) -> tuple[int, int]:
    done, confirmed = 0, 0
    last_user, asked_before_user, write_since_user = None, False, False
    last_assistant_text = ""
    ok = {c.id: c.ok for c in transcript.tool_calls}
    for m in transcript.messages:
        role = m.get("role")
        if role == "user":
            last_user, write_since_user = _text(m), False
            asked_before_user = "?" in last_assistant_text
        elif role == "assistant":
            for call in m.get("tool_calls") or []:
                if call["function"]["name"] in writes and ok.get(call["id"], False):
                    done += 1
                    confirmed += bool(last_user is not None and not write_since_user and asked_before_user
                                      and is_yes(last_user))
                    write_since_user = True
            if _text(m):
                last_assistant_text = _text(m)
    return confirmed, done


def recovered_error(transcript: Transcript) -> bool:
    if transcript.termination not in _NORMAL_END:
        return False
    calls = transcript.tool_calls
    return any(not c.ok and any(d.ok and d.name == c.name for d in calls[i + 1:]) for i, c in enumerate(calls))


def made_up_value(transcript: Transcript) -> bool:
    said, seen = "", ""
    for m in transcript.messages:
        role, text = m.get("role"), _text(m)
        if role == "user":
            said += "\n" + text
        elif role in ("tool", "system"):
            seen += "\n" + text
        for call in m.get("tool_calls") or [] if role == "assistant" else []:
            try:
                arguments = json.loads(call["function"].get("arguments") or "{}")
            except ValueError:
                continue  # malformed arguments are counted as errors, not as values
            for value in arguments.values() if isinstance(arguments, dict) else []:
                if isinstance(value, (bool, dict, list)) or value is None:
                    continue
                shown = value_text(value)
                if not said_value(said, shown) and shown not in seen:
                    return True
    return False


def _distinct_3grams(texts: list[str]) -> float | None:
    grams = [tuple(ws[i:i + 3]) for t in texts for ws in [_WORD.findall(t.casefold())] for i in range(len(ws) - 2)]
    return round(len(set(grams)) / len(grams), 4) if grams else None


def _pattern(task: Task, actions: list, kinds: Mapping[str, str]) -> str:
    seq = [kinds.get(a.name) or ("W" if a.mode == "write" else "R") for a in actions]
    return f"{task.kind}: " + " ".join(seq)


def _figures(tasks: list[Task], transcripts: list[Transcript], writes: set[str], today: str | None,
             kinds: Mapping[str, str] | None = None) -> Figures:
    by_id = {t.id: t for t in tasks}
    actions = {t.id: [a for a in t.golden_actions if a.requestor == "assistant"] for t in tasks}
    needed = given = 0
    for t in tasks:
        values = needed_values(t)
        needed += len(values)
        given += sum(1 for v in values if said_value(t.first_query, v))
    confirmed = written = raw = texts = refusals = stated = recovered = dated = made_up = 0
    why: list[bool] = []
    user_texts: list[str] = []
    assistant_texts: list[str] = []
    available: set[str] = set()
    called: set[str] = set()
    for tr in transcripts:
        c, w = _confirmed_writes(tr, writes)
        confirmed, written = confirmed + c, written + w
        for m in tr.messages:
            text = _text(m)
            if m.get("role") == "assistant" and text:
                texts += 1
                raw += bool(_RAW_JSON.search(text))
                assistant_texts.append(text)
            elif m.get("role") == "user":
                user_texts.append(text)
        system = next((_text(m) for m in tr.messages if m.get("role") == "system"), "")
        dated += bool(re.search(r"\btoday\b", system, re.I) and (today in system if today
                                                                  else re.search(r"\d{4}-\d{2}-\d{2}", system)))
        task = by_id.get(tr.task_id)
        if task is not None and task.kind == "refusal":
            refusals += 1
            stated += states_rule(task, tr)
            if (shown := shows_why(task, tr)) is not None:
                why.append(shown)
        recovered += recovered_error(tr)
        made_up += made_up_value(tr)
        available |= {t.get("function", t).get("name", "") for t in tr.tools}
        called |= {c.name for c in tr.tool_calls if c.ok}
    firsts = [t.first_query for t in tasks]
    asking = [t for t in tasks if _ASKS.search(t.user_scenario.instructions.task_instructions)]
    patterns = Counter(_pattern(t, actions[t.id], kinds or {}) for t in tasks)
    return Figures(
        tasks=len(tasks), rollouts=len(transcripts),
        task_kinds=dict(sorted(Counter(t.kind for t in tasks).items())),
        task_patterns=dict(sorted(Counter(
            f"{t.kind}: " + " ".join("W" if a.mode == "write" else "R" for a in actions[t.id]) for t in tasks).items())),
        golden_calls_per_task=_mean([len(actions[t.id]) for t in tasks]),
        writes_per_task=_mean([sum(a.mode == "write" for a in actions[t.id]) for t in tasks]),
        user_turns_per_rollout=_mean([sum(m.get("role") == "user" for m in tr.messages) for tr in transcripts]),
        needed_values_in_first_message=Share.of(given, needed),
        writes_confirmed=Share.of(confirmed, written),
        assistant_messages_with_raw_json=Share.of(raw, texts),
        refusals_stating_rule=Share.of(stated, refusals),
        refusals_showing_why=Share.of(sum(why), len(why)),
        questions_checked=Share.of(sum(bool(t.evaluation_criteria.communicate_info) for t in asking), len(asking)),
        rollouts_with_recovered_tool_error=Share.of(recovered, len(transcripts)),
        rollouts_with_made_up_value=Share.of(made_up, len(transcripts)),
        first_messages_with_template_text=Share.of(sum(template_text(q) for q in firsts), len(firsts)),
        system_prompts_with_date=Share.of(dated, len(transcripts)),
        distinct_first_queries=Share.of(len(set(firsts)), len(firsts)),
        user_distinct_3grams=_distinct_3grams(user_texts),
        assistant_distinct_3grams=_distinct_3grams(assistant_texts),
        tool_coverage=Share.of(len(called & available), len(available)),
        tools_never_called=sorted(available - called),
        kind_patterns=dict(sorted(patterns.items())),
        largest_pattern=Share.of(max(patterns.values(), default=0), len(tasks)),
        tasks_with_4_calls=Share.of(sum(len(actions[t.id]) >= 4 for t in tasks), len(tasks)),
        tasks_with_2_writes=Share.of(sum(sum(a.mode == "write" for a in actions[t.id]) >= 2 for t in tasks), len(tasks)),
    )


def quality_report(tasks: Iterable[Task], transcripts: Iterable[Transcript],
                   write_tools: Mapping[str, Iterable[str]], today: str | None = None,
                   tool_kinds: Mapping[str, Mapping[str, str]] | None = None,
                   rules: Mapping[str, Iterable[PolicyRule]] | None = None) -> QualityReport:
    """Figures per environment, overall and over single-domain tasks. `write_tools`: environment -> names of
    its write tools; `today`: the simulation date (ISO) a system prompt must state (None: any ISO date next
    to "today"); `tool_kinds`: environment -> tool -> its kind (get, create, pay...) for the task patterns;
    `rules`: environment -> its policy rules, for the rule-kind figures (None: left out)."""
    tool_kinds = tool_kinds or {}
    tasks, transcripts = list(tasks), list(transcripts)
    envs = sorted({t.environment for t in tasks} | {tr.environment for tr in transcripts})
    per_env = {}
    for env in envs:
        writes = set(write_tools.get(env, ()))
        per_env[env] = _figures([t for t in tasks if t.environment == env],
                                [tr for tr in transcripts if tr.environment == env], writes, today,
                                tool_kinds.get(env))
    every_write = {name for names in write_tools.values() for name in names}
    every_kind = {name: kind for kinds in tool_kinds.values() for name, kind in kinds.items()}
    overall = _figures(tasks, transcripts, every_write, today, every_kind)
    single = [t for t in tasks if len(t.domains) == 1]
    ids = {t.id for t in single}
    single_figures = _figures(single, [tr for tr in transcripts if tr.task_id in ids], every_write, today,
                              every_kind) if single else None
    # Tool coverage overall counts each environment's tools apart (two fusions share names, not tools).
    used = sum(f.tool_coverage.count for f in per_env.values())
    offered = sum(f.tool_coverage.total for f in per_env.values())
    never = sorted(f"{env}.{name}" for env, f in per_env.items() for name in f.tools_never_called)
    overall = overall.model_copy(update={"tool_coverage": Share.of(used, offered), "tools_never_called": never})
    return QualityReport(environments=per_env, overall=overall, single_domain=single_figures,
                         rules=rule_figures(tasks, rules) if rules is not None else None)


def report_json(report: QualityReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def bigram_diversity(texts: list[str]) -> float:
    """Distinct word bigrams over all bigrams: 1.0 when no two queries share a phrase."""
    grams = [tuple(w[i:i + 2]) for t in texts for w in [t.lower().split()] for i in range(len(w) - 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
