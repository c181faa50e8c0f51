"""One page per task: scenario, persona, golden trajectory, evaluation criteria and its rollouts."""
from __future__ import annotations

from skiller.evaluator import EvaluationResult
from skiller.servers.task import Task
from skiller.view import paths
from skiller.view.markup import details, esc, kv, link, page, pretty, table, tag, verdict


def _scenario(task: Task) -> str:
    s = task.user_scenario
    p, i = s.persona, s.instructions
    persona = (f"{esc(p.name)} · style {esc(p.style)} · patience {esc(p.patience)} · {esc(p.verbosity)} · "
               f"{esc(p.language_register)} · {esc(p.language)}")
    rows = [["persona", persona], ["reason for call", esc(i.reason_for_call)], ["known info", esc(i.known_info)],
            ["unknown info", esc(i.unknown_info)], ["instructions", esc(i.task_instructions)]]
    rows += [[f"fact: {k}", esc(v)] for k, v in sorted(s.facts.items())]
    return kv(rows)


def _golden(task: Task) -> str:
    if not task.golden_actions:
        return '<p class="muted">No golden actions: the right behaviour is to call no tool.</p>'
    items = []
    for a in task.golden_actions:
        compared = "all arguments compared" if a.compare_args is None else f"compared: {', '.join(a.compare_args) or 'none'}"
        items.append(f'<li class="card"><code>{esc(a.name)}</code> {tag(a.mode, a.mode)} '
                     f'<span class="muted small">{esc(a.action_id)} · by {esc(a.requestor)} · {esc(compared)}</span>'
                     f'{pretty(a.arguments)}{details("expected output", pretty(a.expected))}</li>')
    return f'<ol>{"".join(items)}</ol>'


def _criteria(task: Task) -> str:
    c = task.evaluation_criteria
    rows = [["reward basis", " ".join(tag(b, "info") for b in c.reward_basis)],
            ["communicate", "<br>".join(esc(x) for x in c.communicate_info) or '<span class="muted">none</span>'],
            ["NL assertions", "<br>".join(esc(x) for x in c.nl_assertions) or '<span class="muted">none</span>'],
            ["initial state", f"<code>{esc(task.initial_state_hash)}</code>"],
            ["gold state", f"<code>{esc(task.gold_state_hash)}</code>"]]
    if task.violated_rule:
        rows.append(["violated rule", esc(task.violated_rule)])
    return kv(rows)


def _rollouts(results: list[EvaluationResult], transcripts: dict[str, str]) -> str:
    """Every transcript of the task, with its evaluation when there is one."""
    by_transcript = {r.transcript_id: r for r in results}
    if not transcripts:
        return '<p class="muted">Not rolled out yet.</p>'
    rows = []
    for tid, agent in sorted(transcripts.items()):
        r = by_transcript.get(tid)
        score = verdict(r.reward >= 1.0) if r else '<span class="muted">not evaluated</span>'
        why = "; ".join(f"{c.name}: {c.detail}" for c in r.components if not c.passed) if r else ""
        rows.append([link(paths.transcript(tid), tid), esc(agent), score, esc(why or (r.reason if r else ""))])
    return table(["transcript", "agent", "reward", "why it failed"], rows)


def render(task: Task, stream: str, results: list[EvaluationResult], transcripts: dict[str, str]) -> str:
    """`transcripts` maps the task's transcript ids to the agent that produced them."""
    env = link(paths.environment(task.environment), task.environment)
    body = (f"<h1>Task {esc(task.id)}</h1><p>{env} · {esc(stream)} · {tag(task.kind, 'info')}</p>"
            f'<p>{esc(task.description)}</p><h2>First query</h2><div class="card">{esc(task.first_query)}</div>'
            f"<h2>User scenario</h2>{_scenario(task)}<h2>Golden trajectory</h2>{_golden(task)}"
            f"<h2>Evaluation criteria</h2>{_criteria(task)}<h2>Rollouts</h2>{_rollouts(results, transcripts)}")
    return page(f"Task {task.id}", body, root="../")
