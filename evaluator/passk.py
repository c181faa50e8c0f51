"""Reports over many evaluations: pass^k, a per-environment summary table and `results.jsonl`."""
from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from math import comb
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from skiller.evaluator.reward import EvaluationResult

ALL = "all"  # the summary row over every environment (server names are PascalCase, so no clash)
_EPS = 1e-9


def _success(result: EvaluationResult) -> bool:
    return abs(result.reward - 1.0) < _EPS


def _counts(results: Iterable[EvaluationResult]) -> dict[tuple[str, str], tuple[int, int]]:
    """(environment, task) -> (n counted trials, c successes); infrastructure errors are not trials."""
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        if r.infrastructure_error:
            continue
        entry = tally[(r.environment, r.task_id)]
        entry[0] += 1
        entry[1] += _success(r)
    return {key: (n, c) for key, (n, c) in sorted(tally.items())}


def _pass_hat(counts: Iterable[tuple[int, int]], k: int) -> tuple[float | None, int]:
    """(mean of C(c,k)/C(n,k) over tasks with n >= k, or None when there is none; tasks skipped)."""
    values, skipped = [], 0
    for n, c in counts:
        if n < k:
            skipped += 1
        else:
            values.append(comb(c, k) / comb(n, k))
    return (sum(values) / len(values) if values else None), skipped


def pass_hat_k(results: Iterable[EvaluationResult], k: int) -> float:
    """pass^k = mean over tasks of C(c, k) / C(n, k), where n counts a task's trials (infrastructure errors
    excluded) and c those with reward 1. Tasks with fewer than k trials are skipped, not scored 0: their
    number is reported by `summary_table`. Raises ValueError when no task has k trials."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    value, skipped = _pass_hat(_counts(results).values(), k)
    if value is None:
        raise ValueError(f"pass^{k} is undefined: none of the tasks has {k} counted trials ({skipped} skipped)")
    return value


class SummaryRow(BaseModel):
    """One environment's figures (or `ALL`). pass_hat[k-1] is pass^k, None when no task has k trials;
    skipped[k-1] counts the tasks left out of pass^k for having fewer than k trials."""

    model_config = ConfigDict(frozen=True)
    environment: str
    tasks: int
    trials: int
    excluded: int  # infrastructure errors
    avg_reward: float | None
    pass_hat: list[float | None]
    skipped: list[int]


def _row(environment: str, results: list[EvaluationResult], max_k: int) -> SummaryRow:
    counts = _counts(results)
    counted = [r for r in results if not r.infrastructure_error]
    figures = [_pass_hat(counts.values(), k) for k in range(1, max_k + 1)]
    avg = sum(r.reward for r in counted) / len(counted) if counted else None
    return SummaryRow(environment=environment, tasks=len(counts), trials=len(counted),
                      excluded=len(results) - len(counted), avg_reward=avg,
                      pass_hat=[v for v, _ in figures], skipped=[s for _, s in figures])


def summary_table(results: Iterable[EvaluationResult], max_k: int) -> list[SummaryRow]:
    """One row per environment (sorted by name), then the `ALL` row over every task."""
    if max_k < 1:
        raise ValueError(f"max_k must be at least 1, got {max_k}")
    results = list(results)
    by_env: dict[str, list[EvaluationResult]] = defaultdict(list)
    for r in results:
        by_env[r.environment].append(r)
    rows = [_row(env, by_env[env], max_k) for env in sorted(by_env)]
    return [*rows, _row(ALL, results, max_k)]


def format_summary(rows: list[SummaryRow]) -> str:
    """The summary as a fixed-width text table (pass^k in percent; '-' where undefined)."""
    max_k = max((len(r.pass_hat) for r in rows), default=0)
    head = ["environment", "tasks", "trials", "excluded", "avg"] + [f"pass^{k}" for k in range(1, max_k + 1)]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    body = [[r.environment, str(r.tasks), str(r.trials), str(r.excluded), pct(r.avg_reward)]
            + [pct(v) for v in r.pass_hat] for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w)
                               in enumerate(zip(line, widths, strict=True))) for line in [head, *body])


def _sort_key(r: EvaluationResult) -> tuple[str, str, int, str]:
    return (r.environment, r.task_id, r.trial, r.transcript_id)


def write_results(results: Iterable[EvaluationResult], path: str | Path) -> Path:
    """Write one JSON object per line, keys sorted and lines in (environment, task, trial, transcript)
    order, so the same evaluations give the same bytes whatever order they finished in. A directory
    `path` receives `results.jsonl`. The file is replaced atomically."""
    target = Path(path)
    if target.is_dir():
        target = target / "results.jsonl"
    lines = [json.dumps(r.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
             for r in sorted(results, key=_sort_key)]
    partial = target.with_name(target.name + ".partial")
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(partial, target)
    return target


def read_results(path: str | Path) -> list[EvaluationResult]:
    """Load a `results.jsonl` written by `write_results`."""
    text = Path(path).read_text(encoding="utf-8")
    return [EvaluationResult.model_validate_json(line) for line in text.splitlines() if line.strip()]
