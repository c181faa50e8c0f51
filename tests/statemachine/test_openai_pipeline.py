"""The openai provider end to end against a loopback chat-completions server: `skiller rollout --agent
openai` with a server that plays an agent calling the golden tools (after one malformed call and one
unknown tool) and later the user, and a synthesis run answered through the forced `respond` function."""
from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any

from skiller.rollout import STOP, OracleAgent
from skiller.servers.task import Task
from skiller.store import Store
from tests.conftest import cli, make_workspace, small
from tests.fakes import (
    ChatCompletionsServer,
    chat_text_reply,
    function_call,
    openai_error,
    openai_rate_limited,
    tool_calls_reply,
)

SENTINEL = "sk-SENTINEL-openai-key-must-never-be-written-7f3a"
UNKNOWN_TOOL = "no_such_tool"


def _faulty(call: dict[str, Any]) -> bool:
    """A call the fake injected: to the unknown tool, or whose bad JSON came back wrapped as raw_arguments."""
    function = call["function"]
    return function["name"] == UNKNOWN_TOOL or "raw_arguments" in json.loads(function["arguments"])


class GoldenAgent:
    """Answers agent requests (they carry tools) as the oracle would from the conversation so far, and
    user requests (no tools) like a customer who ends with the stop token. In the conversation of
    `faulty_query` it first sends a call with invalid JSON arguments, then a call to an unknown tool."""

    def __init__(self, tasks: dict[str, Task], faulty_query: str) -> None:
        self.tasks, self.faulty_query = tasks, faulty_query
        self.prompt_tokens: list[int] = []
        self.user_requests = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = self._agent(body) if body.get("tools") else self._user(body)
        tokens = len(json.dumps(body["messages"])) // 4  # differs per call, so the sums below mean something
        with self._lock:
            self.prompt_tokens.append(tokens)
            self.user_requests += not body.get("tools")
        return reply | {"usage": {"prompt_tokens": tokens, "completion_tokens": 7, "total_tokens": tokens + 7}}

    def _agent(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        first_query = next(m["content"] for m in messages if m["role"] == "user")
        task = self.tasks[first_query]
        calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
        faults = [c for c in calls if _faulty(c)]
        if first_query == self.faulty_query and len(faults) < 2:
            tool = body["tools"][0]["function"]["name"]
            bad = function_call(tool, '{"person_id": ') if not faults else function_call(UNKNOWN_TOOL, {})
            return tool_calls_reply(bad)
        fault_ids = {c["id"] for c in faults}
        view = []  # the conversation without the injected faults, as the oracle would have seen it
        for m in messages:
            if m["role"] == "tool" and m["tool_call_id"] in fault_ids:
                continue
            if m["role"] == "assistant" and m.get("tool_calls"):
                kept = [c for c in m["tool_calls"] if c["id"] not in fault_ids]
                if not kept and not m.get("content"):
                    continue
                m = {**m, "tool_calls": kept}
            view.append(m)
        turn = asyncio.run(OracleAgent(task).respond(view, body["tools"]))
        if turn.tool_calls:
            return tool_calls_reply(*[function_call(c.name, c.arguments, id=f"call_g{len(calls)}_{i}")
                                      for i, c in enumerate(turn.tool_calls)])
        return chat_text_reply(turn.text)

    @staticmethod
    def _user(body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]["content"]
        if "?" in last and "anything else" not in last.lower():  # a question: every fact it may share, and a yes to go ahead
            shared = body["messages"][0]["content"].split("Facts you may share", 1)[1].split("</scenario>", 1)[0]
            facts = re.findall(r"^- ([\w ]+): (.+)$", shared, re.M)
            return chat_text_reply("Yes, please go ahead. " + "; ".join(f"my {k} is {v}" for k, v in facts))
        # Past the stop token a real model may ramble on; the provider cuts there.
        return chat_text_reply(f"Thanks, that's all. {STOP} Assistant: goodbye")


def _tasks(root: Path) -> dict[str, Task]:
    store = Store(root / "skiller.db")
    tasks = [Task.model_validate_json(store.artifact(m.artifacts["task"]))
             for m in store.projection().of_kind("task") if "task" in m.artifacts]
    store.close()
    by_query = {t.first_query: t for t in tasks}
    assert len(by_query) == len(tasks) >= 4, "the fake agent tells tasks apart by their first query"
    return by_query


def _llm_calls(root: Path) -> list[dict[str, Any]]:
    store = Store(root / "skiller.db")
    calls = [json.loads(r.payload) for r in store.rows() if r.type == "LLMCalled"]
    store.close()
    return calls


def _lines(root: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted((root / "outputs" / name).glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_openai_agent_and_user_complete_every_task_and_the_key_is_never_written(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *small(), "--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1",
               "--set", "fusion.enabled=false", "--set", "rollout.in_run=false",
               "--set", "steps.s14.templates_per_domain=6") == 0
    tasks = _tasks(root)
    faulty = sorted(tasks)[0]
    model = GoldenAgent(tasks, faulty)

    with ChatCompletionsServer(responder=model) as server:
        server.push(openai_rate_limited(retry_after="0"))  # the very first call meets a 429
        overrides = ["--set", f"provider.openai.base_url={server.base_url}",
                     "--set", "provider.openai.text_model=fake-agent", "--set", "provider.openai.backoff_base=0"]
        assert cli("rollout", "-w", str(root), "--agent", "openai", *overrides) == 0
        assert cli("evaluate", "-w", str(root), "--set", "rollout.agent=openai", *overrides) == 0
        agent_requests = len(server.requests)
        assert {h["authorization"] for h in server.headers} == {f"Bearer {SENTINEL}"}  # the key was in use

        # Every task completes: the user stops, the agent reaches the gold state despite the faults.
        lines = _lines(root, "rollouts")
        assert len(lines) == len(tasks) and {line["agent"] for line in lines} == {"openai"}
        assert {line["termination"] for line in lines} == {"user_stop"}
        scored = _lines(root, "evaluation")
        assert len(scored) == len(tasks) and {r["reward"] for r in scored} == {1.0}
        [bad] = [line for line in lines if faulty in [m["content"] for m in line["messages"][:2]]]
        errors = [json.loads(m["content"]).get("error", "") for m in bad["messages"] if m["role"] == "tool"]
        assert "not valid JSON" in errors[0] and errors[1] == f"unknown tool: {UNKNOWN_TOOL}"

        # One LLMCalled per answered request (the 429 was retried inside one call), with its tokens.
        calls = [c for c in _llm_calls(root) if c["provider"] == "openai"]
        assert len(calls) == agent_requests - 1 == len(model.prompt_tokens)
        assert {c["model"] for c in calls} == {"fake-agent"} and all(c["output_tokens"] == 7 for c in calls)
        assert sum(c["input_tokens"] for c in calls) == sum(model.prompt_tokens) > 0

        # The same server as the user too: a new campaign, ended by the stop token the provider cuts at.
        assert cli("rollout", "-w", str(root), "--agent", "openai", "--set", "rollout.user=openai", *overrides) == 0
    lines = _lines(root, "rollouts")
    assert len(lines) == len(tasks) and {line["termination"] for line in lines} == {"user_stop"}
    assert all(line["messages"][-1] == {"role": "user", "content": f"Thanks, that's all. {STOP}"} for line in lines)
    assert model.user_requests >= len(tasks)
    assert len([c for c in _llm_calls(root) if c["provider"] == "openai"]) == len(model.prompt_tokens)

    files = [p for p in root.rglob("*") if p.is_file()]  # skiller.db (and its WAL), skiller.log, outputs/
    assert {"skiller.db", "skiller.log"} <= {p.name for p in files} and any("outputs" in p.parts for p in files)
    leaked = [str(p.relative_to(root)) for p in files if SENTINEL.encode() in p.read_bytes()]
    assert not leaked


class AsChatCompletions:
    """The anthropic pipeline test's FakeModel (it reads Messages-API bodies) behind chat completions."""

    def __init__(self) -> None:
        from tests.statemachine.test_anthropic_pipeline import FakeModel
        self.model = FakeModel()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        assert body["tool_choice"] == {"type": "function", "function": {"name": "respond"}}
        function = body["tools"][0]["function"]
        turns = [m for m in body["messages"] if m["role"] != "system"]
        reply = self.model({"tools": [{"input_schema": function["parameters"]}], "messages": turns})
        [use] = [block for block in reply["content"] if block["type"] == "tool_use"]
        return tool_calls_reply(function_call("respond", use["input"]), prompt_tokens=50, completion_tokens=20)


def test_synthesis_on_the_openai_provider_follows_the_responses_and_retries_faults(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    fake = AsChatCompletions()
    with ChatCompletionsServer(responder=fake) as server:
        server.push(openai_rate_limited("0"), openai_error(500))  # the first call meets a 429 then a 500
        root = make_workspace(tmp_path / "ws", f"""
provider:
  name: openai
  openai: {{base_url: "{server.base_url}", text_model: fake-text, code_model: fake-code, backoff_base: 0.0}}
""")
        assert cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=tools_listed") == 0
        assert server.pending == 0
    topics = json.loads((root / "outputs/domain_topics.json").read_text())["domains"]
    assert topics and all(d["description"].endswith(fake.model.tagline) for d in topics)
    store = Store(root / "skiller.db")
    usage = store.projection().usage
    store.close()
    text = usage["openai/fake-text"]
    assert set(usage) == {"openai/fake-text"} and text.calls > 0 and text.input_tokens == 50 * text.calls
    leaked = [p.name for p in root.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert not leaked
