"""The pipeline on the anthropic provider against a loopback Messages-API server: outputs follow the
responses, faults are retried, and s09's test-and-repair loop repairs broken code or gives up."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from skiller.world.builtin import BuiltinProvider
from skiller.world.builtin.registry import ANSWERS
from skiller.llm.interface import LLMRequest
from skiller.store import Store
from tests.conftest import cli, make_workspace, small
from tests.fakes import MessagesServer, rate_limited, server_error, tool_use_reply

BuiltinProvider()  # registers the builtin answers the fake model borrows

# Which builtin answer a request is, by its response schema and its prompt.
_NAME = r"([A-Z][A-Za-z0-9]+)"
ROUTES = {
    "DomainTopics": ("s01.domains", None),
    "DomainEntities": ("s02.entities", rf"Service domain: {_NAME} \("),
    "DomainRelationships": ("s03.relationships", rf"Service domain: {_NAME} -"),
    "Blueprint": ("s04.blueprint", rf"service domain {_NAME} \("),
    "DatabaseProgram": ("s06.database_code", r'"MCP_server_name": "([A-Za-z0-9]+)"'),
    "PolicyDoc": ("s07.policy", rf"the {_NAME} service"),
    "ToolGraph": ("s08.tool_graph", rf"MCP server {_NAME},"),
    "Implementation": ("s09.implementation", rf"Implement the MCP server {_NAME} "),
    "TemplateBatch": ("s14.templates", rf"task templates for the {_NAME} service"),
}
MARK = "[loopback model]"


class FakeModel:
    """Answers like the builtin provider would, through the Messages API, with scripted twists."""

    def own_answer(self, title: str, prompt: str) -> dict | None:
        """Answers this fake model writes itself, as a real model would (not borrowed from builtin)."""
        if title == "TemplateScores":  # a judge that cannot produce a valid verdict for refusals
            if '"kind":"refusal"' in prompt:
                return {"overall_score": "excellent", "verdict": "looks fine"}
            return {k: 5 for k in ("motivation_clarity", "logical_coherence", "completeness", "naturalness",
                                   "specificity", "overall_score")}
        if title == "Persona":
            name = re.search(r"'full name': '([^']+)'", prompt)
            return {"name": name.group(1) if name else "Sam Reyes", "style": "curt", "patience": "low",
                    "verbosity": "terse", "language_register": "casual"}
        if title == "Query":
            goal = re.search(r"Your goal: (.*)", prompt).group(1)
            return {"first_query": f"{MARK} {goal}", "reason_for_call": goal, "known_info": "what I was told",
                    "unknown_info": "nothing else", "task_instructions": "Answer only what is asked; say ###STOP### when done.",
                    "description": goal}
        if title == "Replan":
            return {"selectors": [{"slot": slot, "sql": sql} for slot, sql in
                                  re.findall(r"^(\w+): (SELECT .*)$", prompt.split("Slot `")[0], re.M)]}
        return None

    def __init__(self, broken_once: set[str] = frozenset(), broken_always: set[str] = frozenset(),
                 hostile: dict[str, str] | None = None, broken_database: set[str] = frozenset()):
        self.broken_once, self.broken_always = set(broken_once), set(broken_always)
        self.hostile = hostile or {}
        self.broken_database = set(broken_database)  # their first generator script crashes
        self.tagline = " (as the loopback model said)"

    def __call__(self, body: dict) -> dict:
        schema = body["tools"][0]["input_schema"]
        prompt = body["messages"][0]["content"]
        prompt = prompt if isinstance(prompt, str) else prompt[0]["text"]
        own = self.own_answer(schema["title"], prompt)
        if own is not None:
            return tool_use_reply("respond", own)
        purpose, pattern = ROUTES[schema["title"]]
        context = {"seed": 7, "clock": "2026-03-02"}
        if pattern:
            context["domain"] = re.search(pattern, prompt).group(1)
        if purpose == "s01.domains":
            context |= {"count": int(re.search(r"Propose (\d+)", prompt).group(1)),
                        "min_sectors": int(re.search(r"at least\s+(\d+)\s+sectors", prompt).group(1))}
            named = re.search(r"Include these domains, named exactly so: (.*)\.", prompt)
            if named:
                context["required"] = named.group(1).split(", ")
        if purpose == "s14.templates":
            lo, hi = re.search(r"between (\d+) and (\d+) calls", prompt).groups()
            first, last, count = map(int, re.search(r"give templates (\d+) to (\d+) of (\d+)", prompt).groups())
            context |= {"count": count, "offset": first - 1, "size": last - first + 1,
                        "min_length": int(lo), "max_length": int(hi)}
        answer = ANSWERS[purpose](LLMRequest(purpose=purpose, response_model=BaseModel, context=context))
        if purpose == "s01.domains":
            answer = {"domains": [d | {"description": d["description"] + self.tagline} for d in answer["domains"]]}
        if purpose == "s06.database_code" and context["domain"] in self.broken_database and len(body["messages"]) == 1:
            answer = {"code": answer["code"].replace("def main(", "raise RuntimeError('schema typo')\ndef main(", 1)}
        if purpose == "s09.implementation":
            domain, repairing = context["domain"], len(body["messages"]) > 1
            if domain in self.broken_always or (domain in self.broken_once and not repairing):
                answer = answer | {"module": answer["module"].replace('CLOCK = "2026-03-02"', 'CLOCK = "1999-01-01"')}
            if domain in self.hostile:
                answer = answer | {"module": answer["module"] + "\n" + self.hostile[domain]}
        return tool_use_reply("respond", answer)


def anthropic_workspace(root: Path, base_url: str) -> Path:
    return make_workspace(root, f"""
provider:
  name: anthropic
  anthropic: {{base_url: "{base_url}", text_model: fake-text, code_model: fake-code, backoff_base: 0.0}}
""")


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")


def test_outputs_follow_the_responses_and_faults_are_retried(tmp_path, key):
    model = FakeModel()
    with MessagesServer(responder=model) as server:
        server.push(rate_limited("0"), server_error(500))  # the first call meets a 429 then a 500
        root = anthropic_workspace(tmp_path / "ws", server.base_url)
        assert cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=tools_listed") == 0
        assert server.pending == 0
    topics = json.loads((root / "outputs/domain_topics.json").read_text())["domains"]
    assert topics and all(d["description"].endswith(model.tagline) for d in topics)
    store = Store(root / "skiller.db")
    usage = store.projection().usage
    assert set(usage) == {"anthropic/fake-text"} and usage["anthropic/fake-text"].input_tokens > 0
    assert "test-key-not-real" not in (root / "skiller.log").read_text()
    assert b"test-key-not-real" not in (root / "skiller.db").read_bytes()


def test_broken_code_is_repaired_and_hopeless_code_fails_alone(tmp_path, key):
    root = tmp_path / "ws"
    with MessagesServer(responder=FakeModel()) as probe:  # learn the domain names first
        ws = anthropic_workspace(root, probe.base_url)
        assert cli("run", "-w", str(ws), *small(), "--set", "scheduler.stop_after=tool_graph_built") == 0
    names = sorted(m.stream.split(":")[1] for m in Store(root / "skiller.db").projection().of_kind("domain"))
    model = FakeModel(broken_once={names[0]}, broken_always={names[1]})
    with MessagesServer(responder=model) as server:
        cfg = root / "skiller.yaml"
        cfg.write_text(re.sub(r'base_url: "[^"]+"', f'base_url: "{server.base_url}"', cfg.read_text()))
        code = cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=implemented",
                   "--set", "steps.s09.max_repairs=2")
    assert code == 1  # one domain failed
    proj = Store(root / "skiller.db").projection()
    states = {n: proj.machines[f"domain:{n}"].state for n in names}
    assert states == {names[0]: "implemented", names[1]: "failed", names[2]: "implemented"}
    failed = proj.machines[f"domain:{names[1]}"]
    assert re.search(r"\d+ failed", failed.payload["last_output"]) and failed.payload["attempt"] == 2

    def path(name: str) -> list[str]:
        store = Store(root / "skiller.db")
        return [r.dest for r in store.rows(stream=f"domain:{name}") if r.type == "Transitioned"]

    assert path(names[0])[-4:] == ["testing", "repairing", "testing", "implemented"]
    assert path(names[1])[-1] == "failed" and path(names[1]).count("repairing") == 3


HOSTILE = {
    "loop": "while True:\n    pass\n",
    "memory": "hog = bytearray(8 * 1024 ** 3)\n",
    "socket": "import socket\nsocket.create_connection(('127.0.0.1', 9))\n",
    "escape": "open('/tmp/skiller-escape-test.txt', 'w').write('out')\n",
}


EVIDENCE = {  # what the recorded test output shows for each kind of hostile code
    "loop": r"sandbox: (wall timeout|cpu limit)",
    "memory": r"MemoryError|memory limit",
    "socket": r"sandbox: .*not allowed",
    "escape": r"sandbox: .*not allowed",
}


@pytest.mark.parametrize("first, second", [("loop", "memory"), ("socket", "escape")])
def test_hostile_generated_code_is_a_test_failure_not_a_crash(tmp_path, key, first, second):
    root = tmp_path / "ws"
    with MessagesServer(responder=FakeModel()) as probe:
        ws = anthropic_workspace(root, probe.base_url)
        assert cli("run", "-w", str(ws), *small(), "--set", "scheduler.stop_after=tool_graph_built") == 0
    names = sorted(m.stream.split(":")[1] for m in Store(root / "skiller.db").projection().of_kind("domain"))
    hostile = {names[0]: HOSTILE[first], names[1]: HOSTILE[second]}
    escape = Path("/tmp/skiller-escape-test.txt")
    if "escape" in (first, second):  # only that case touches the file: a parallel worker's case leaves it be
        escape.unlink(missing_ok=True)
    with MessagesServer(responder=FakeModel(hostile=hostile)) as server:
        cfg = root / "skiller.yaml"
        cfg.write_text(re.sub(r'base_url: "[^"]+"', f'base_url: "{server.base_url}"', cfg.read_text()))
        code = cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=implemented",
                   "--set", "steps.s09.max_repairs=0", "--set", "sandbox.cpu_seconds=2",
                   "--set", "sandbox.wall_seconds=8", "--set", "sandbox.memory_mb=512")
    assert code == 1
    store = Store(root / "skiller.db")
    proj = store.projection()
    assert proj.machines[f"domain:{names[2]}"].state == "implemented"  # the others carry on
    for name, kind in zip(names[:2], (first, second)):
        assert proj.machines[f"domain:{name}"].state == "failed"
        runs = [json.loads(r.payload) for r in store.rows(stream=f"domain:{name}") if r.type == "TestsRan"]
        assert runs[-1]["ok"] is False
        assert re.search(EVIDENCE[kind], runs[-1]["output"]), runs[-1]["output"][-600:]
    assert not escape.exists()


def test_task_steps_follow_the_model_and_a_malformed_judge_is_a_low_score(tmp_path, key):
    with MessagesServer(responder=FakeModel()) as server:
        root = anthropic_workspace(tmp_path / "ws", server.base_url)
        code = cli("run", "-w", str(root), *small(), "--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1",
                   "--set", "fusion.enabled=false", "--set", "rollout.in_run=false",
                   "--set", "provider.anthropic.max_validation_retries=1")
    assert code == 0
    out = root / "outputs"
    templates = json.loads(next((out / "task_templates").glob("*.json")).read_text())
    assert templates["stats"]["low_score"] > 0  # every refusal template got a malformed verdict
    assert all(t["kind"] != "refusal" for t in templates["templates"])
    lines = [json.loads(l) for l in next((out / "queries").glob("*.jsonl")).read_text().splitlines()]
    assert len(lines) >= 10 and all(l["messages"][0]["content"].startswith(MARK) for l in lines)
    assert all(l["persona"]["style"] == "curt" for l in lines)


class FakeAssistant:
    """Plays the assistant over the Messages API: looks the person up with a tool, then answers."""

    def __call__(self, body: dict) -> dict:
        from tests.fakes import text_reply
        last = body["messages"][-1]
        blocks = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
        if any(b.get("type") == "tool_result" for b in blocks):
            return text_reply("I have looked that up for you and your request is noted.")
        seen = json.dumps(body["messages"])
        person = re.search(r"P-\d{4}", seen)
        lookup = next((t["name"] for t in body.get("tools", []) if t["input_schema"].get("required") == ["person_id"]), None)
        if person is None or lookup is None:
            return text_reply("Could you tell me your person id?")
        return tool_use_reply(lookup, {"person_id": person.group(0)})


def test_rollout_with_a_model_assistant_over_the_messages_api(tmp_path, key, capsys):
    root = make_workspace(tmp_path / "ws")
    assert cli("run", "-w", str(root), *small(), "--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1",
               "--set", "fusion.enabled=false", "--set", "rollout.in_run=false",
               "--set", "steps.s14.templates_per_domain=6") == 0
    with MessagesServer(responder=FakeAssistant()) as server:
        overrides = ["--set", f"provider.anthropic.base_url={server.base_url}",
                     "--set", "provider.anthropic.text_model=fake-agent"]
        assert cli("rollout", "-w", str(root), "--agent", "anthropic", *overrides) == 0
        assert cli("evaluate", "-w", str(root), "--set", "rollout.agent=anthropic", *overrides) == 0
        assert server.requests and all("respond" not in json.dumps(r.get("tools", [])) for r in server.requests)
    lines = [json.loads(l) for p in (root / "outputs/rollouts").glob("*.jsonl") for l in p.read_text().splitlines()]
    assert lines and all(l["agent"] == "anthropic" for l in lines)
    calls = [c for l in lines for m in l["messages"] if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    results = [m for l in lines for m in l["messages"] if m["role"] == "tool"]
    assert calls and len(results) == len(calls)
    store = Store(root / "skiller.db")
    usage = store.projection().usage
    assert usage["anthropic/fake-agent"].calls == len(server.requests) and usage["anthropic/fake-agent"].input_tokens > 0
    scored = [json.loads(l) for l in (root / "outputs/evaluation/results.jsonl").read_text().splitlines()]
    assert len(scored) == len(lines) and {r["reward"] for r in scored} <= {0.0, 1.0}
    assert "test-key-not-real" not in (root / "skiller.log").read_text()


def test_a_crashing_database_generator_is_repaired_with_its_error(tmp_path, key):
    with MessagesServer(responder=FakeModel()) as probe:
        root = anthropic_workspace(tmp_path / "ws", probe.base_url)
        assert cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=blueprinted") == 0
    names = sorted(m.stream.split(":")[1] for m in Store(root / "skiller.db").projection().of_kind("domain"))
    model = FakeModel(broken_database={names[0]})
    with MessagesServer(responder=model) as server:
        cfg = root / "skiller.yaml"
        cfg.write_text(re.sub(r'base_url: "[^"]+"', f'base_url: "{server.base_url}"', cfg.read_text()))
        assert cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=database_generated") == 0
        repairs = [r for r in server.requests if len(r["messages"]) > 1 and r["tools"][0]["input_schema"]["title"] == "DatabaseProgram"]
    assert len(repairs) == 1 and "schema typo" in json.dumps(repairs[0]["messages"][-1])
    store = Store(root / "skiller.db")
    rows = [(r.type, json.loads(r.payload)) for r in store.rows(stream=f"domain:{names[0]}")]
    kinds = [t for t, _ in rows if t in ("TestsRan", "Repaired")]
    assert kinds == ["TestsRan", "Repaired", "TestsRan"]
    assert [p["ok"] for t, p in rows if t == "TestsRan"] == [False, True]
    assert store.projection().machines[f"domain:{names[0]}"].state == "database_generated"
