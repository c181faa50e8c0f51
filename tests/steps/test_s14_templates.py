"""s14 asks for templates in groups, re-asks invalid proposals once with their problems listed, and
placeholders in selector SQL follow one quoting rule."""
from __future__ import annotations

import datetime as dt
import json

from skiller.contract.placeholders import resolve_sql
from skiller.store import Store
from tests.conftest import cli, small
from tests.fakes import MessagesServer, tool_use_reply
from tests.statemachine.test_anthropic_pipeline import FakeModel, anthropic_workspace, key  # noqa: F401


class ForgetfulModel(FakeModel):
    """Its first answer of each group leaves the first template's person id out of known_info."""

    def __init__(self) -> None:
        super().__init__()
        self.template_requests: list[dict] = []

    def __call__(self, body: dict) -> dict:
        reply = super().__call__(body)
        if body["tools"][0]["input_schema"]["title"] != "TemplateBatch":
            return reply
        self.template_requests.append(body)
        answer = reply["content"][-1]["input"]
        if len(body["messages"]) == 1:
            first = answer["templates"][0]
            first["known_info"] = {k: v for k, v in first["known_info"].items() if "person_id" not in v}
            return tool_use_reply("respond", answer)
        return reply


def test_templates_come_in_groups_and_an_invalid_one_is_re_asked_with_its_problem(tmp_path, key):
    model = ForgetfulModel()
    with MessagesServer(responder=model) as server:
        root = anthropic_workspace(tmp_path / "ws", server.base_url)
        code = cli("run", "-w", str(root), *small(), "--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1",
                   "--set", "scheduler.stop_after=templated", "--set", "steps.s14.templates_per_domain=20")
    assert code == 0
    first_asks = [r for r in model.template_requests if len(r["messages"]) == 1]
    assert [json.dumps(r["messages"][0]["content"]).count("give templates") for r in first_asks] == [1, 1, 1]
    assert "give templates 17 to 20 of 20" in first_asks[2]["messages"][0]["content"]
    assert "do not repeat" in first_asks[1]["messages"][0]["content"]  # later groups see the earlier goals
    re_asks = [r for r in model.template_requests if len(r["messages"]) > 1]
    assert len(re_asks) == 3
    feedback = re_asks[0]["messages"][-1]["content"]
    assert "template 1:" in feedback and "person_id> is an argument the user must supply but is not in known_info" in feedback
    [domain] = Store(root / "skiller.db").projection().of_kind("domain")
    stats = json.loads((root / "outputs/task_templates" / f"{domain.stream.split(':')[1]}.json").read_text())["stats"]
    # every proposal ends valid (the fake judge scores refusals low, which is s14's other filter)
    assert (stats["proposed"], stats["invalid"], stats["kept"] + stats["low_score"]) == (20, 0, 20)


def test_a_placeholder_in_sql_becomes_one_literal_quoted_or_not():
    bindings = {"person": {"person_id": "P-0001", "age": 41}}
    sql = "SELECT * FROM t WHERE a = '<person.person_id>' AND b = <person.person_id> AND c = <person.age> AND d >= '<clock+3>'"
    assert resolve_sql(sql, bindings, dt.date(2026, 3, 2)) == (
        "SELECT * FROM t WHERE a = 'P-0001' AND b = 'P-0001' AND c = 41 AND d >= '2026-03-05'")
