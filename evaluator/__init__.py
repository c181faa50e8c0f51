"""Evaluator: component checks, reward combination, pass^k and reports over transcripts of tasks."""
from skiller.evaluator.checks import (
    ComponentResult,
    EvaluationSetupError,
    check_action,
    check_communicate,
    check_db,
    check_nl_assertions,
    check_output,
)
from skiller.evaluator.judge import JUDGE_PURPOSE, RuleJudge, Verdict, Verdicts, judge_request
from skiller.evaluator.passk import (
    ALL,
    SummaryRow,
    format_summary,
    pass_hat_k,
    read_results,
    summary_table,
    write_results,
)
from skiller.evaluator.quality import QualityReport, RuleFigures, Share, quality_report, report_json
from skiller.evaluator.reward import EvaluationResult, evaluate

__all__ = [
    "ALL",
    "JUDGE_PURPOSE",
    "ComponentResult",
    "EvaluationResult",
    "EvaluationSetupError",
    "QualityReport",
    "RuleFigures",
    "RuleJudge",
    "Share",
    "SummaryRow",
    "Verdict",
    "Verdicts",
    "check_action",
    "check_communicate",
    "check_db",
    "check_nl_assertions",
    "check_output",
    "evaluate",
    "format_summary",
    "judge_request",
    "pass_hat_k",
    "quality_report",
    "read_results",
    "report_json",
    "summary_table",
    "write_results",
]
