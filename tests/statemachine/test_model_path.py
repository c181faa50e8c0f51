"""The model path holds: a whole run on the anthropic provider against a loopback Messages server whose
model answers as the builtin would but only from the request text, with realistic answer sizes cut at
each request's max_tokens, validates (nearly) as many tasks as a builtin run."""
from __future__ import annotations

import json

from skiller.llm.builtin.tasks import judge_template
from store import Store
from tests.conftest import cli, make_workspace, small
from tests.fakes import sized_tool_use_reply
from tests.fakes import MessagesServer
from tests.statemachine.test_anthropic_pipeline import FakeModel, anthropic_workspace, key  # noqa: F401

AFTER_VALIDATION = {"validated", "instantiated", "rolled_out", "evaluated"}
RUN = [*small(), "--set", "steps.s01.num_domains=2", "--set", "steps.s01.min_sectors=2", "--set", "fusion.enabled=false",
       "--set", "rollout.in_run=false", "--set", "steps.s14.templates_per_domain=12"]
# Caps below the answers' sizes, so the cut-and-ask-larger path runs inside a whole run.
TIGHT = ["--set", "output_caps.s09_implementation=4096", "--set", "output_caps.s06_database_code=2048",
         "--set", "output_caps.s14_templates=1024"]


class FaithfulModel(FakeModel):
    """Judges as the builtin would from the template in the prompt; every answer is sized, and cut at the
    request's max_tokens like a real model's."""

    def own_answer(self, title: str, prompt: str) -> dict | None:
        if title == "TemplateScores":
            return judge_template(json.loads(prompt.split("Template: ", 1)[1]))
        return super().own_answer(title, prompt)

    def __call__(self, body: dict) -> dict:
        reply = super().__call__(body)
        answer = reply["content"][-1]["input"]
        return sized_tool_use_reply("respond", answer, body["max_tokens"])


def validated(root) -> int:
    proj = Store(root / "skiller.db").projection()
    return sum(m.state in AFTER_VALIDATION for m in proj.of_kind("task"))


def test_a_whole_run_on_the_messages_api_validates_as_many_tasks_as_the_builtin(tmp_path, key):
    builtin = make_workspace(tmp_path / "builtin")
    assert cli("run", "-w", str(builtin), *RUN) == 0
    with MessagesServer(responder=FaithfulModel()) as server:
        root = anthropic_workspace(tmp_path / "model", server.base_url)
        assert cli("run", "-w", str(root), *RUN, *TIGHT) == 0
        caps: dict[str, set[int]] = {}
        for r in server.requests:
            caps.setdefault(r["tools"][0]["input_schema"]["title"], set()).add(r["max_tokens"])
    # answers were cut at their caps and asked again with doubled caps (never at the same cap)
    assert {4096, 8192}.issubset(caps["Implementation"]) and {1024, 2048}.issubset(caps["TemplateBatch"])
    expected = validated(builtin)
    assert expected > 0 and validated(root) >= 0.9 * expected
