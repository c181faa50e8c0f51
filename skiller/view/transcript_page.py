"""One page per rollout: the conversation as a chat, tool calls and results collapsible, and its evaluation."""
from __future__ import annotations

import json
from typing import Any

from skiller.evaluator import EvaluationResult
from skiller.rollout.base import message_text
from skiller.servers.episode import Transcript
from skiller.view import paths
from skiller.view.markup import details, esc, kv, link, page, pretty, table, tag, verdict


def _preview(arguments: Any, limit: int = 90) -> str:
    """The arguments on one line, cut short: enough to read the call without opening it."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    text = json.dumps(arguments, ensure_ascii=False, sort_keys=True) if not isinstance(arguments, str) else arguments
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _call(call: dict[str, Any]) -> str:
    fn = call.get("function") or {}
    summary = (f"call <code>{esc(fn.get('name', '?'))}</code> "
               f"<span class=\"muted small\"><code>{esc(_preview(fn.get('arguments', '')))}</code></span>")
    return details(summary, pretty(fn.get("arguments", "")))


def _message(message: dict[str, Any], records: dict[str, Any]) -> str:
    role = str(message.get("role", "?"))
    text = message_text(message)
    if role == "system":
        return f'<div class="msg system">{details("system prompt (policy)", f"<pre>{esc(text)}</pre>")}</div>'
    if role == "tool":
        call_id = str(message.get("tool_call_id", ""))
        record = records.get(call_id)
        failed = record is not None and not record.ok
        name = record.name if record is not None else call_id
        label = (f"result of <code>{esc(name)}</code> " + (tag("error", "fail") if failed else tag("ok", "pass")))
        return f'<div class="msg tool{" err" if failed else ""}">{details(label, pretty(text))}</div>'
    cls = "assistant" if role == "assistant" else "user"
    body = f'<div class="text">{esc(text)}</div>' if text else ""
    body += "".join(_call(c) for c in message.get("tool_calls") or [])
    return f'<div class="msg {cls}"><div class="who">{esc(role)}</div>{body}</div>'


def _evaluation(result: EvaluationResult | None) -> str:
    if result is None:
        return '<p class="muted">Not evaluated.</p>'
    head = (f"<p>reward {esc(f'{result.reward:g}')} {verdict(result.reward >= 1.0)} · termination "
            f"{esc(result.termination)}" + (" · infrastructure error (excluded from scores)"
                                            if result.infrastructure_error else "") + "</p>")
    if result.reason:
        head += f"<p>{esc(result.reason)}</p>"
    if not result.components:
        return head
    rows = [[esc(c.name), verdict(c.passed), esc(c.detail)] for c in result.components]
    return head + table(["component", "", "why"], rows)


def render(t: Transcript, result: EvaluationResult | None) -> str:
    records = {r.id: r for r in t.tool_calls}
    models = ", ".join(f"{k}: {v}" for k, v in sorted(t.models.items()))
    usage = ", ".join(f"{k} {v}" for k, v in sorted(t.usage.items()))
    meta = kv([
        ["task", link(paths.task(t.task_id), t.task_id)], ["environment", link(paths.environment(t.environment), t.environment)],
        ["agent", esc(t.agent) + (f" ({esc(models)})" if models else "")], ["trial", str(t.trial)],
        ["termination", esc(t.termination)], ["tool calls", f"{len(t.tool_calls)} ({sum(not r.ok for r in t.tool_calls)} failed)"],
        *([["usage", esc(usage)]] if usage else []), *([["error", esc(t.error)]] if t.error else [])])
    chat = "".join(_message(m, records) for m in t.messages)
    body = (f"<h1>Transcript {esc(t.id)}</h1>{meta}<h2 id=\"evaluation\">Evaluation</h2>{_evaluation(result)}"
            f'<h2>Conversation ({len(t.messages)} messages)</h2><div class="chat">{chat}</div>')
    return page(f"Transcript {t.id}", body, root="../")
