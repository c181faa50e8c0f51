"""The site's front page: environments with their counts, and the data-quality figures as charts."""
from __future__ import annotations

from collections import Counter, defaultdict

from skiller.evaluator import summary_table
from skiller.evaluator.quality import bigram_diversity
from skiller.view import paths
from skiller.view.charts import bar_chart, percent
from skiller.view.data import SiteData
from skiller.view.markup import esc, link, page, table, tag


def _pct(value: float | None) -> str:
    return "–" if value is None else percent(value)


def _environments(data: SiteData) -> str:
    tasks: dict[str, Counter] = defaultdict(Counter)
    for t in data.tasks:
        tasks[t.environment]["ready" if t.task else t.state] += 1
    rollouts = Counter(t.environment for t in data.transcripts)
    pass1 = {row.environment: row.pass_hat[0] for row in summary_table(data.results, 1)} if data.results else {}
    rows = []
    for env in data.environments:
        reads = sum(t.mode == "read" for t in env.tools)
        writes = sum(t.mode == "write" for t in env.tools)
        tables = env.summary.tables if env.summary else []
        state = tag(env.state, "fail" if env.state == "failed" or env.error else "info")
        rows.append([link(paths.environment(env.name, ""), env.name), esc(env.kind), state,
                     f"{reads} {tag('read', 'read')} {writes} {tag('write', 'write')}", str(len(tables)),
                     str(sum(t.rows for t in tables)), str(tasks[env.name]["ready"]), str(tasks[env.name]["rejected"]),
                     str(rollouts[env.name]), _pct(pass1.get(env.name))])
    headers = ["environment", "kind", "state", "tools", "tables", "rows", "tasks", "rejected", "rollouts", "pass^1"]
    return table(headers, rows, numeric=range(4, 10))


def _figures(data: SiteData) -> str:
    ready = [t for t in data.tasks if t.task]
    per_env = Counter(t.environment for t in ready)
    reasons = Counter(t.reason or "unknown" for t in data.tasks if t.state == "rejected")
    kinds = Counter(t.kind or "unknown" for t in ready)
    lengths = Counter(len(t.task.golden_actions) for t in ready if t.task)
    queries: dict[str, list[str]] = defaultdict(list)
    for t in ready:
        queries[t.environment].append(t.task.first_query)
    terminations = Counter(t.termination for t in data.transcripts)
    rows_per_env = [(e.name, float(sum(t.rows for t in e.summary.tables))) for e in data.environments if e.summary]
    charts = [
        bar_chart("Tasks per environment", [(k, float(v)) for k, v in sorted(per_env.items())]),
        bar_chart("Rejected tasks by reason", [(k, float(v)) for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))],
                  empty="none rejected"),
        bar_chart("Task kinds", [(k, float(v)) for k, v in sorted(kinds.items())]),
        bar_chart("Golden trajectory length (tool calls)", [(f"{k} call(s)", float(v)) for k, v in sorted(lengths.items())]),
        bar_chart("First-query diversity (distinct word bigrams)",
                  [(env, bigram_diversity(qs)) for env, qs in sorted(queries.items())], scale=1.0, fmt=lambda v: f"{v:.2f}"),
        bar_chart("Distinct first queries", [(env, len(set(qs)) / len(qs)) for env, qs in sorted(queries.items())],
                  scale=1.0, fmt=percent),
        bar_chart("Database rows per environment", rows_per_env),
        bar_chart("Rollout terminations", [(k, float(v)) for k, v in sorted(terminations.items())]),
    ]
    if data.results:
        rows = summary_table(data.results, 1)
        charts.append(bar_chart("pass^1 per environment", [(r.environment, r.pass_hat[0] or 0.0) for r in rows],
                                scale=1.0, fmt=percent))
    return '<div class="grid">' + "".join(charts) + "</div>"


def _scores(data: SiteData) -> str:
    if not data.results:
        return '<p class="muted">No evaluations yet: run <code>skiller rollout</code> and <code>skiller evaluate</code>.</p>'
    rows = summary_table(data.results, data.max_k)
    k = len(rows[0].pass_hat)
    body = [[esc(r.environment), str(r.tasks), str(r.trials), str(r.excluded), _pct(r.avg_reward),
             *(_pct(v) for v in r.pass_hat)] for r in rows]
    failed = sum(r.reward < 1.0 for r in data.results)
    note = (f'<p>{len(data.results)} evaluation(s), {failed} failed: '
            f'{link(paths.evaluations(""), "see every evaluation and why")}.</p>')
    return note + table(["environment", "tasks", "trials", "excluded", "avg reward",
                         *(f"pass^{i}" for i in range(1, k + 1))], body, numeric=range(1, 5 + k))


def _usage(data: SiteData) -> str:
    if not data.usage:
        return ""
    rows = [[esc(model), *(str(u[c]) for c in ("calls", "cache_hits", "input_tokens", "output_tokens"))]
            for model, u in data.usage.items()]
    return "<h2>Model calls</h2>" + table(["provider/model", "calls", "cache hits", "tokens in", "tokens out"],
                                          rows, numeric=range(1, 5))


def render(data: SiteData) -> str:
    domains = sum(e.kind == "domain" for e in data.environments)
    fusions = len(data.environments) - domains
    ready = sum(1 for t in data.tasks if t.task)
    rejected = sum(t.state == "rejected" for t in data.tasks)
    body = (f"<h1>Workspace</h1><p>{domains} domain(s), {fusions} fusion(s); {ready} task(s) ready, "
            f"{rejected} rejected; {len(data.transcripts)} rollout(s).</p>"
            f"<h2>Environments</h2>{_environments(data)}"
            f"<h2>Scores</h2>{_scores(data)}"
            f"<h2>Data quality</h2>{_figures(data)}{_usage(data)}")
    return page("Workspace", body, root="")
