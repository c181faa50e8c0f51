"""skiller.rollout.transcripts: rollout JSONL lines and SFT conversations."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from skiller.rollout import STOP, BuiltinUser, OracleAgent, read_jsonl, rollout_line, run_episode, to_sft, write_jsonl
from skiller.servers import Environment
from skiller.servers.episode import Transcript
from tests.rollout.support import POLICY, borrow_task


def oracle_transcript(env: Environment) -> Transcript:
    task = borrow_task(env)
    return asyncio.run(run_episode(task, env, OracleAgent(task), BuiltinUser(task), system_prompt=POLICY, trial=2))


def test_jsonl_lines_have_sorted_keys_status_fields_and_read_back(env: Environment, tmp_path: Path) -> None:
    transcript = oracle_transcript(env)
    path = write_jsonl([transcript, transcript], tmp_path / "rollouts.jsonl")

    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    line = json.loads(lines[0])
    assert list(line) == sorted(line)
    assert (line["id"], line["task_id"], line["trial"], line["termination"]) == (transcript.id, "lib-borrow", 2,
                                                                                  "user_stop")
    assert (line["success"], line["stopped"], line["transferred"]) == (True, True, False)
    assert line == rollout_line(transcript) and line["query_id"] == line["task_id"]
    assert read_jsonl(path) == [transcript, transcript]


def test_sft_conversation_keeps_openai_tool_calls_and_strips_the_stop_token(env: Environment) -> None:
    transcript = oracle_transcript(env)
    sft = to_sft(transcript)

    assert set(sft) == {"id", "task_id", "environment", "messages", "tools"} and sft["tools"] == transcript.tools
    assert (sft["id"], sft["task_id"], sft["environment"]) == (transcript.id, transcript.task_id, transcript.environment)
    assert sft["messages"][:-1] == transcript.messages[:-1]
    assert STOP not in sft["messages"][-1]["content"] and sft["messages"][-1]["content"]
    calls = [c for m in sft["messages"] for c in m.get("tool_calls", [])]
    assert all(isinstance(c["function"]["arguments"], str) and c["type"] == "function" for c in calls)
    assert json.loads(calls[-1]["function"]["arguments"]) == {"person_id": "P-001", "book_id": "BK-005"}
    assert STOP in transcript.messages[-1]["content"]  # the transcript itself is untouched


def test_a_final_user_message_that_was_only_the_stop_token_is_dropped(env: Environment) -> None:
    transcript = oracle_transcript(env)
    bare = transcript.model_copy(update={"messages": [*transcript.messages[:-1], {"role": "user", "content": STOP}]})
    assert to_sft(bare)["messages"] == transcript.messages[:-1]
