"""`skiller report`: load a workspace's tasks and current rollouts from the log, and write the data-quality report."""
from __future__ import annotations

import os
from pathlib import Path

from skiller.contract.policy import PolicyRule, parse_rules
from skiller.evaluator import QualityReport, Share, quality_report, report_json
from skiller.export import current_transcripts
from skiller.servers.fusion import namespace_of
from skiller.servers.task import Task
from skiller.store import Store
from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.tiers import attribute_share

REPORT_PATH = Path("report") / "quality.json"

_COLUMNS = [  # (header, figure, how it is shown)
    ("tasks", "tasks", "n"), ("rollouts", "rollouts", "n"), ("user turns", "user_turns_per_rollout", "f"),
    ("values in 1st msg", "needed_values_in_first_message", "%"), ("writes confirmed", "writes_confirmed", "%"),
    ("raw JSON msgs", "assistant_messages_with_raw_json", "%"), ("rule in words", "refusals_stating_rule", "%"),
    ("refusal shows why", "refusals_showing_why", "%"), ("question checked", "questions_checked", "%"),
    ("recovered error", "rollouts_with_recovered_tool_error", "%"), ("made-up value", "rollouts_with_made_up_value", "%"),
    ("template 1st msg", "first_messages_with_template_text", "%"), ("date in prompt", "system_prompts_with_date", "%"),
    ("distinct 1st msg", "distinct_first_queries", "%"), ("user d3", "user_distinct_3grams", "f"),
    ("agent d3", "assistant_distinct_3grams", "f"), ("tool coverage", "tool_coverage", "%"),
]


def _write_tools(store: Store) -> dict[str, set[str]]:
    """Each environment's write tools, from its members' blueprints (prefixed inside a fusion)."""
    proj = store.projection()
    modes: dict[str, set[str]] = {}
    for m in proj.of_kind("domain"):
        if "blueprint" in m.artifacts:
            blueprint = store.artifact_json(m.artifacts["blueprint"])
            modes[m.inputs["domain"]] = {f["name"] for f in blueprint["functions"] if f.get("mode") == "write"}
    out = dict(modes)
    for m in proj.of_kind("fusion"):
        out[m.inputs["name"]] = {namespace_of(member) + name for member in m.inputs["members"]
                                 for name in modes.get(member, ())}
    return out


def _tool_kinds(store: Store) -> dict[str, dict[str, str]]:
    """Each environment's tool kinds (get, create, pay...) where its domains come from the builtin catalog."""
    proj = store.projection()
    kinds: dict[str, dict[str, str]] = {}
    for m in proj.of_kind("domain"):
        try:
            kinds[m.inputs["domain"]] = {t.name: t.kind for t in get_domain(m.inputs["domain"]).tools}
        except KeyError:  # a domain the model wrote: its patterns fall back to read/write
            continue
    out = dict(kinds)
    for m in proj.of_kind("fusion"):
        out[m.inputs["name"]] = {namespace_of(member) + name: kind for member in m.inputs["members"]
                                 for name, kind in kinds.get(member, {}).items()}
    return out


def _rules(store: Store) -> dict[str, list[PolicyRule]]:
    """Each environment's policy rules, tool names as it exposes them (prefixed inside a fusion)."""
    proj = store.projection()
    own = {m.inputs["domain"]: parse_rules(store.artifact_json(m.artifacts["policy"])["markdown"])
           for m in proj.of_kind("domain") if "policy" in m.artifacts}
    out = dict(own)
    for m in proj.of_kind("fusion"):
        out[m.inputs["name"]] = [r.model_copy(update={"tool": namespace_of(member) + r.tool})
                                 for member in m.inputs["members"] for r in own.get(member, [])]
    return out


def _share(names: list[str]) -> Share:
    """Rules depending on a customer attribute or a computed amount, over the named catalog domains."""
    domains = []
    for name in names:
        try:
            domains.append(get_domain(name))
        except KeyError:  # a domain the model wrote, not in the catalog
            continue
    return Share.of(*attribute_share(domains))


def build(store: Store, today: str | None) -> QualityReport:
    proj = store.projection()
    tasks = [Task.model_validate_json(store.artifact(m.artifacts["task"]))
             for m in sorted(proj.of_kind("task"), key=lambda m: m.stream) if "task" in m.artifacts]
    transcripts = [t for items in current_transcripts(store, proj).values() for t in items]
    report = quality_report(tasks, transcripts, _write_tools(store), today, tool_kinds=_tool_kinds(store),
                            rules=_rules(store))
    assert report.rules is not None
    run = sorted({m.inputs["domain"] for m in proj.of_kind("domain")})
    rules = report.rules.model_copy(update={"attribute_or_amount_rules": _share(run), "catalog_attribute_or_amount_rules":
                                            Share.of(*attribute_share(load_catalog()))})
    return report.model_copy(update={"rules": rules})


def write(report: QualityReport, outputs: Path) -> Path:
    path = outputs / REPORT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(report_json(report), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _cell(value, how: str) -> str:
    share = getattr(value, "share", value) if how == "%" else value
    if share is None:
        return "-"
    return f"{100 * share:.1f}" if how == "%" else f"{share:.2f}" if how == "f" else str(share)


def table(report: QualityReport) -> str:
    """One row per environment and one for all, fixed width (percentages for shares)."""
    head = ["environment", *(h for h, _, _ in _COLUMNS)]
    rows = [[env, *(_cell(getattr(f, name), how) for _, name, how in _COLUMNS)]
            for env, f in [*report.environments.items(), ("all", report.overall)]]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [head, *rows]]
    kinds = ", ".join(f"{k} {n}" for k, n in report.overall.task_kinds.items())
    patterns = len(report.overall.task_patterns)
    lines.append(f"task kinds: {kinds}; {patterns} patterns; golden calls per task "
                 f"{_cell(report.overall.golden_calls_per_task, 'f')}, writes per task "
                 f"{_cell(report.overall.writes_per_task, 'f')}")
    one = report.single_domain
    if one is not None:
        lines.append(f"single-domain tasks: {one.tasks}; with >= 4 golden calls {_cell(one.tasks_with_4_calls, '%')}%, "
                     f"with >= 2 writes {_cell(one.tasks_with_2_writes, '%')}%; {len(one.kind_patterns)} patterns "
                     f"(kind x tool kinds), the largest {_cell(one.largest_pattern, '%')}%")
    if report.rules is not None:
        r = report.rules
        lines.append("rule kinds (rules / compliant tasks / refusal tasks): " + ", ".join(
            f"{k} {v.rules}/{v.compliant_tasks}/{v.refusal_tasks}" for k, v in r.kinds.items()))
        share = lambda s: "-" if s is None else f"{_cell(s, '%')}% ({s.count}/{s.total})"  # noqa: E731
        lines.append(f"rules on a customer attribute or computed amount: run {share(r.attribute_or_amount_rules)}, "
                     f"catalog {share(r.catalog_attribute_or_amount_rules)}; kinds not exercised both ways: "
                     + (", ".join(r.kinds_not_exercised) or "none"))
    return "\n".join(lines)
