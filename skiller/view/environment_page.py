"""One page per environment: tools with read/write tags, policy, database summary, tool graph, tasks."""
from __future__ import annotations

from typing import Any

from skiller.view import paths
from skiller.view.data import EnvView, SiteData, TaskView
from skiller.view.markup import details, esc, link, markdown, page, table, tag, verdict


def _parameters(schema: dict[str, Any]) -> str:
    props = schema.get("properties") or {}
    if not props:
        return '<span class="muted">none</span>'
    required = set(schema.get("required") or [])
    items = []
    for name, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = esc(spec.get("type", "any")) + (", required" if name in required else ", optional")
        choices = f' <span class="muted">one of: {esc(", ".join(map(str, spec["enum"])))}</span>' if spec.get("enum") else ""
        items.append(f"<li><code>{esc(name)}</code> ({kind}) {esc(spec.get('description', ''))}{choices}</li>")
    return f'<ul class="small">{"".join(items)}</ul>'


def _tools(env: EnvView) -> str:
    if not env.tools:
        return '<p class="muted">No tool list yet.</p>'
    rows = [[f"<code>{esc(t.name)}</code>", tag(t.mode, t.mode if t.mode in ("read", "write") else "info"),
             esc(t.description), _parameters(t.parameters)] for t in env.tools]
    return table(["tool", "mode", "description", "parameters"], rows)


def _database(env: EnvView) -> str:
    if env.summary is None:
        return '<p class="muted">No database yet.</p>'
    overview = table(["table", "rows", "primary key", "columns"],
                     [[f"<code>{esc(t.name)}</code>", str(t.rows), esc(", ".join(t.primary_key)), str(len(t.columns))]
                      for t in env.summary.tables], numeric=(1, 3))
    blocks = []
    for t in env.summary.tables:
        cols = [[f"<code>{esc(c.name)}</code>", esc(c.type), str(c.nulls), str(c.distinct),
                 esc("" if c.min is None else c.min), esc("" if c.max is None else c.max),
                 esc(", ".join(map(str, c.values))) if c.values else ""] for c in t.columns]
        blocks.append(details(f"<code>{esc(t.name)}</code> · {t.rows} rows",
                              table(["column", "type", "nulls", "distinct", "min", "max", "values"], cols,
                                    numeric=(2, 3))))
    return overview + "".join(blocks)


_LINK_CLASS = {"information flow": "read", "state dependency": "write", "storyline flow": "pass"}


def _matrix(env: EnvView) -> str:
    """The graph as an adjacency matrix: one row per source tool, one numbered column per target."""
    modes = {t.name: t.mode for t in env.tools}
    names = sorted({e.source for e in env.edges} | {e.target for e in env.edges},
                   key=lambda n: (list(modes).index(n) if n in modes else len(modes), n))
    cells = {(e.source, e.target): e for e in env.edges}
    head = "<th></th>" + "".join(f'<th class="num" title="{esc(n)}">{i}</th>' for i, n in enumerate(names, 1))
    rows = []
    for i, source in enumerate(names, 1):
        tds = []
        for target in names:
            e = cells.get((source, target))
            if e is None:
                tds.append("<td></td>")
            else:
                tip = f"{source} → {target}: {e.type} ({', '.join(e.fields)})"
                tds.append(f'<td title="{esc(tip)}"><span class="tag {_LINK_CLASS.get(e.type, "info")}">'
                           f'{esc(e.type[:1].upper())}</span></td>')
        mode = modes.get(source, "unknown")
        rows.append(f'<tr><th>{i}. <code>{esc(source)}</code> {tag(mode, mode if mode in ("read", "write") else "info")}'
                    f'</th>{"".join(tds)}</tr>')
    legend = " ".join(f'{tag(k[:1].upper(), v)} {esc(k)}' for k, v in _LINK_CLASS.items())
    return (f'<p class="small">Row: the tool whose output feeds the column\'s tool. {legend}</p>'
            f'<table class="matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _graph(env: EnvView) -> str:
    if env.edges is None:
        if env.kind == "fusion":
            members = ", ".join(link(paths.environment(m), m) for m in env.members)
            return f"<p>A fusion has no graph of its own; see its members: {members}.</p>"
        return '<p class="muted">No tool graph yet.</p>'
    if not env.edges:
        return '<p class="muted">The graph has no edges.</p>'
    rows = [[f"<code>{esc(e.source)}</code>", "→", f"<code>{esc(e.target)}</code>", esc(e.type),
             esc(", ".join(e.fields))] for e in env.edges]
    return _matrix(env) + details(f"all {len(env.edges)} edges with their linking fields",
                                  table(["from", "", "to", "link", "fields"], rows))


def _tasks(tasks: list[TaskView]) -> str:
    if not tasks:
        return '<p class="muted">No tasks yet.</p>'
    rows = []
    for t in tasks:
        if t.task:
            name = link(paths.task(t.task.id), t.task.id)
            query = esc(t.task.first_query[:140] + ("…" if len(t.task.first_query) > 140 else ""))
            steps = str(len(t.task.golden_actions))
        else:
            name, query, steps = esc(t.stream), esc(t.reason or ""), ""
        state = tag(t.state, "fail" if t.state in ("rejected", "failed") else "info")
        rows.append([name, esc(t.kind or ""), state, steps, query])
    return table(["task", "kind", "state", "golden calls", "first query (or why rejected)"], rows, numeric=(3,))


def _results(env: EnvView, data: SiteData) -> str:
    results = [r for r in data.results if r.environment == env.name]
    if not results:
        return '<p class="muted">No evaluations yet.</p>'
    rows = [[link(paths.task(r.task_id), r.task_id), str(r.trial), esc(r.agent), verdict(r.reward >= 1.0),
             esc(r.termination), link(paths.transcript(r.transcript_id), "transcript")] for r in results]
    return table(["task", "trial", "agent", "reward", "termination", ""], rows, numeric=(1,))


def render(env: EnvView, data: SiteData) -> str:
    head = f"<h1>{esc(env.name)}</h1><p>{tag(env.kind, 'info')} state {tag(env.state, 'info')}"
    if env.kind == "fusion":
        head += " · members: " + ", ".join(link(paths.environment(m), m) for m in env.members)
    head += "</p>"
    if env.error:
        head += f'<p class="card">{tag("error", "fail")} {esc(env.error)}</p>'
    reads = sum(t.mode == "read" for t in env.tools)
    writes = sum(t.mode == "write" for t in env.tools)
    policy = (details(f"Policy ({len(env.policy.splitlines())} lines)", f'<div class="card">{markdown(env.policy)}</div>')
              if env.policy else '<p class="muted">No policy yet.</p>')
    tasks = [t for t in data.tasks if t.environment == env.name]
    body = (head + f"<h2>Tools ({reads} read, {writes} write)</h2>{_tools(env)}"
            f"<h2>Policy</h2>{policy}<h2>Database</h2>{_database(env)}<h2>Tool graph</h2>{_graph(env)}"
            f"<h2>Tasks ({len(tasks)})</h2>{_tasks(tasks)}<h2>Rollouts and evaluations</h2>{_results(env, data)}")
    return page(env.name, body, root="../")
