"""World steps re-ask a domain's invalid answer with its problems listed, then drop only that domain."""
from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from skiller.world.builtin.registry import ANSWERS
from skiller.llm.interface import LLMRequest
from skiller.store import Store
from tests.conftest import cli, small
from tests.fakes import MessagesServer, tool_use_reply
from tests.statemachine.test_anthropic_pipeline import ROUTES, FakeModel, anthropic_workspace, key  # noqa: F401

# What makes each step's answer invalid for the victim domain (the schema holds, the content does not).
SPOIL = {
    "DomainRelationships": lambda a: a | {"relationships": [
        r | {"target_entity": "Spaceship"} if i == 1 else r for i, r in enumerate(a["relationships"])]},
    "Blueprint": lambda a: a | {"peripheral_entities": ["Spaceship"]},
}


class SpoilingModel(FakeModel):
    """Answers like the builtin, except that every answer of one step for one domain is invalid."""

    def __init__(self, victim: str, title: str) -> None:
        super().__init__()
        self.victim, self.title = victim, title
        self.victim_requests: list[dict] = []

    def __call__(self, body: dict) -> dict:
        reply = super().__call__(body)
        schema = body["tools"][0]["input_schema"]["title"]
        prompt = body["messages"][0]["content"]
        if schema == self.title and f" {self.victim} " in prompt.split("\n")[0] + " ":
            self.victim_requests.append(body)
            block = reply["content"][-1]
            return tool_use_reply("respond", SPOIL[schema](block["input"]))
        return reply


def domain_names() -> list[str]:
    answer = ANSWERS["s01.domains"](LLMRequest(purpose="s01.domains", response_model=BaseModel,
                                               context={"seed": 7, "count": 3, "min_sectors": 3}))
    return [d["name"] for d in answer["domains"]]


@pytest.mark.parametrize("title, step", [("DomainRelationships", "s03"), ("Blueprint", "s04")])
def test_one_domain_invalid_twice_is_dropped_and_the_others_complete(tmp_path, key, title, step):
    names = domain_names()
    victim = names[1]
    model = SpoilingModel(victim, title)
    with MessagesServer(responder=model) as server:
        root = anthropic_workspace(tmp_path / "ws", server.base_url)
        code = cli("run", "-w", str(root), *small(), "--set", "scheduler.stop_after=tools_listed")
    assert code == 0
    # asked twice: the second time with the first answer and its problems listed
    assert len(model.victim_requests) == 2
    feedback = model.victim_requests[1]["messages"][-1]["content"]
    feedback = feedback if isinstance(feedback, str) else json.dumps(feedback)
    assert "rejected" in feedback and "Spaceship" in feedback
    proj = Store(root / "skiller.db").projection()
    domains = {m.stream.split(":")[1]: m.state for m in proj.of_kind("domain")}
    assert domains == {n: "tools_listed" for n in names if n != victim}
    assert proj.machines["world"].state == "blueprinted"
    store = Store(root / "skiller.db")
    payloads = [json.loads(r.payload) for r in store.rows(stream="world") if r.type == "Transitioned"]
    [dropped] = [p.get("dropped") or p.get("invalid") for p in payloads
                 if isinstance(p.get("dropped") or p.get("invalid"), dict)]
    assert list(dropped) == [victim] and "Spaceship" in dropped[victim]
