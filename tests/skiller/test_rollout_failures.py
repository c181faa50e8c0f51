"""Rollouts that could not run are not results: a model agent that cannot be reached fails loudly and
leaves the previous campaign's results and SFT export as they were."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from skiller.store import Store
from tests.conftest import cli, make_workspace, small

ONE = ["--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1", "--set", "fusion.enabled=false",
       "--set", "steps.s14.templates_per_domain=6"]


def closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_agent(base_url: str) -> list[str]:
    return ["--agent", "anthropic", "--set", f"provider.anthropic.base_url={base_url}",
            "--set", "provider.anthropic.max_retries=0", "--set", "provider.anthropic.backoff_base=0"]


def snapshot(root: Path) -> dict[str, bytes]:
    out = root / "outputs"
    files = [out / "evaluation" / "results.jsonl", *sorted((out / "sft").glob("*.jsonl"))]
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    """A workspace whose tasks were rolled out by the oracle and evaluated, with an SFT export."""
    root = make_workspace(tmp_path_factory.mktemp("rollouts") / "ws")
    assert cli("run", "-w", str(root), *small(), *ONE) == 0
    assert cli("export", "-w", str(root), "--format", "sft") == 0
    return root


def test_an_unreachable_model_agent_fails_loudly_and_keeps_earlier_results(evaluated, monkeypatch, capsys):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")
    before = snapshot(evaluated)
    assert before["evaluation/results.jsonl"] and any(k.startswith("sft/") for k in before)
    capsys.readouterr()
    code = cli("rollout", "-w", str(evaluated), *model_agent(f"http://127.0.0.1:{closed_port()}"))
    err = capsys.readouterr().err
    assert code == 1
    causes = [line for line in err.splitlines() if line.startswith("failed (")]
    assert len(causes) == 1 and causes[0].startswith("failed (provider, ") and "connection error" in causes[0]
    assert "the next run retries" in causes[0] and "Traceback" not in err
    assert cli("export", "-w", str(evaluated), "--format", "sft") == 0
    assert snapshot(evaluated) == before
    proj = Store(evaluated / "skiller.db").projection()
    tasks = [m for m in proj.of_kind("task") if m.state == "evaluated"]
    assert tasks and all(m.payload["agent"] == "oracle" for m in tasks)  # the previous campaign stands
    failed = [m for m in proj.of_kind("task") if m.failure_kind]
    assert failed and all(m.failure_kind == "provider" and m.retryable for m in failed)


def test_a_model_agent_without_a_key_fails_loudly(evaluated, capsys):
    before = snapshot(evaluated)
    capsys.readouterr()
    code = cli("rollout", "-w", str(evaluated), *model_agent(f"http://127.0.0.1:{closed_port()}"))
    err = capsys.readouterr().err
    assert code == 1 and "ANTHROPIC_API_KEY is not set" in err
    assert len([line for line in err.splitlines() if line.startswith("failed (")]) == 1
    assert snapshot(evaluated) == before


def test_rollout_for_an_unknown_environment_is_an_error_naming_the_known_ones(evaluated, capsys):
    capsys.readouterr()
    assert cli("rollout", "-w", str(evaluated), "--domain", "Nope") == 2
    err = capsys.readouterr().err.strip()
    known = sorted({json.loads(l)["task_info"]["domains"][0] for p in (evaluated / "outputs/queries").glob("*.jsonl")
                    for l in p.read_text().splitlines()})
    assert err.startswith("skiller: --domain: no tasks for 'Nope'") and known[0] in err
    assert len(err.splitlines()) == 1
