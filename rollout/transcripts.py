"""Transcript output: rollout JSONL lines (reference layout plus our fields) and SFT-ready conversations."""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from skiller.rollout.base import TRANSFER, USER_STOP_TOKENS, message_text
from skiller.servers.episode import Transcript

__all__ = ["read_jsonl", "rollout_line", "to_sft", "write_jsonl"]


def rollout_line(transcript: Transcript) -> dict[str, Any]:
    """The transcript plus the reference's status fields (`success`, `stopped`, `transferred`) and the id of
    the query line (`queries/<Env>.jsonl`) it came from: a task's query carries the task's id."""
    line = transcript.model_dump(mode="json")
    line["query_id"] = transcript.task_id
    stopped = transcript.termination in ("user_stop", "agent_stop")
    last = message_text(transcript.messages[-1]) if transcript.messages else ""
    line["success"] = stopped
    line["stopped"] = stopped
    line["transferred"] = stopped and TRANSFER in last
    return line


def write_jsonl(transcripts: Iterable[Transcript], path: str | Path) -> Path:
    """One line per transcript, keys sorted, so equal transcripts give byte-identical files."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for transcript in transcripts:
            out.write(json.dumps(rollout_line(transcript), ensure_ascii=False, sort_keys=True,
                                 separators=(",", ":")) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[Transcript]:
    """Transcripts back from `write_jsonl` (the status fields are derived, so they are dropped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [Transcript.model_validate(json.loads(line)) for line in lines if line.strip()]


def to_sft(transcript: Transcript) -> dict[str, Any]:
    """`{"id", "task_id", "environment", "messages", "tools"}`, OpenAI format for SFT trainers: tool-call
    arguments as JSON strings, the stop token removed from the final user message (dropped if nothing
    else was said). The exporter adds the episode's reward."""
    messages = copy.deepcopy(transcript.messages)
    for message in messages:
        for call in message.get("tool_calls") or []:
            arguments = call["function"].get("arguments")
            if not isinstance(arguments, str):
                call["function"]["arguments"] = json.dumps(arguments, ensure_ascii=False)
    if messages and messages[-1].get("role") == "user":
        text = message_text(messages[-1])
        for token in USER_STOP_TOKENS:
            text = text.replace(token, "")
        if text.strip():
            messages[-1]["content"] = text.strip()
        else:
            messages.pop()
    return {"id": transcript.id, "task_id": transcript.task_id, "environment": transcript.environment,
            "messages": messages, "tools": copy.deepcopy(transcript.tools)}
