"""Every evaluation of the current campaign: failed ones first, each component's verdict and why."""
from __future__ import annotations

from skiller.evaluator import EvaluationResult
from skiller.view import paths
from skiller.view.markup import esc, link, page, table, verdict


def _components(r: EvaluationResult) -> str:
    if not r.components:
        return esc(r.reason) or '<span class="muted">no component ran</span>'
    return "<br>".join(f"{verdict(c.passed)} <strong>{esc(c.name)}</strong> {esc(c.detail)}" for c in r.components)


def _table(results: list[EvaluationResult]) -> str:
    rows = [[link(paths.environment(r.environment, ""), r.environment), link(paths.task(r.task_id, ""), r.task_id),
             str(r.trial), esc(r.agent), verdict(r.reward >= 1.0), esc(r.termination), _components(r),
             link(paths.transcript(r.transcript_id, "") + "#evaluation", "transcript", cls="transcript-link")]
            for r in results]
    return table(["environment", "task", "trial", "agent", "reward", "termination", "components", ""], rows,
                 numeric=(2,))


def render(results: list[EvaluationResult]) -> str:
    failed = [r for r in results if r.reward < 1.0]
    passed = [r for r in results if r.reward >= 1.0]
    body = (f"<h1>Evaluations</h1><p>{len(results)} evaluation(s) of the current campaign: "
            f"{len(failed)} failed, {len(passed)} passed.</p>"
            f'<h2 id="failed">Failed ({len(failed)})</h2>'
            + (_table(failed) if failed else '<p class="muted">None.</p>')
            + f'<h2 id="passed">Passed ({len(passed)})</h2>'
            + (_table(passed) if passed else '<p class="muted">None.</p>'))
    return page("Evaluations", body, root="")
