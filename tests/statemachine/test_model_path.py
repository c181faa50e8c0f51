"""The model path holds: a whole run on the anthropic provider against a loopback Messages server, with
realistic answer sizes cut at each request's max_tokens, validates (nearly) as many tasks as a builtin run,
fused tasks included. Tool graphs (s08), implementations (s09 module and tests), task templates (s14),
personas and queries (s17) and the fusion requests (s10 fit, s11 fuse, s13 policy merge) are read from the
prompt text alone (tests/fakes/reading_model.py, reading_domain.py, reading_templates.py, reading_fusion.py).
s01-s04, s06 and s07 are creative steps where a model invents the world, the data and the rules (the rules
on other services' records included) from its own knowledge: there the fake draws on the builtin catalog as
that knowledge, by the domain name the prompt states. The whole default run is bench/model_path.py."""
from __future__ import annotations

import json
from collections import Counter

from skiller.world.builtin.tasks import judge_template
from skiller.store import Store
from tests.conftest import cli, make_workspace, small
from tests.fakes import sized_tool_use_reply, tokens_of
from tests.fakes import MessagesServer
from tests.fakes.reading_fusion import FUSION_READERS
from tests.fakes.reading_model import READERS
from tests.statemachine.test_anthropic_pipeline import FakeModel, anthropic_workspace, key  # noqa: F401

AFTER_VALIDATION = {"validated", "instantiated", "rolled_out", "evaluated"}
# Four domains, three of whose records pass between them (a vet visit is claimed at the insurer and shown
# at the boarding kennel), so fusion forms two reference pairs and a triple. The whole default run (10
# domains) is bench/model_path.py.
RUN = [*small(), "--set", "steps.s01.num_domains=4", "--set", "steps.s01.min_sectors=2",
       "--set", "steps.s01.domains=[VetClinic,PetInsurance,PetBoarding]",
       "--set", "rollout.in_run=false", "--set", "steps.s14.templates_per_domain=18"]
# Caps below the answers' sizes, so the cut-and-ask-larger path runs inside a whole run.
TIGHT = ["--set", "output_caps.s09_implementation=4096", "--set", "output_caps.s06_database_code=2048",
         "--set", "output_caps.s14_templates=1024", "--set", "output_caps.s13_policy_merge=1024",
         "--set", "output_caps.s11_fuse=1024"]


class FaithfulModel(FakeModel):
    """Judges and fuses as the builtin would from what the prompt states; every answer is sized, and cut at
    the request's max_tokens like a real model's."""

    def __init__(self) -> None:
        super().__init__()
        self.fusion_purposes: set[str] = set()
        self.read_purposes: set[str] = set()  # schemas answered by the text readers
        self.largest: dict[str, int] = {}  # the largest whole answer (tokens) of each kind of request
        self.truncated_by_kind: Counter[str] = Counter()  # replies cut at the request's max_tokens
        self.reasked = 0  # requests that carry a rejected answer and its problems (a re-ask by a step)

    @property
    def truncated(self) -> int:
        return sum(self.truncated_by_kind.values())

    def own_answer(self, title: str, prompt: str) -> dict | None:
        for (schema, opening), (purpose, read) in FUSION_READERS.items():  # before READERS: s11 answers TemplateBatch
            if title == schema and prompt.startswith(opening):
                self.fusion_purposes.add(purpose)  # answered from the prompt alone (tests/fakes/reading_fusion.py)
                return read(prompt)
        if title in READERS:  # answered from the prompt alone (tests/fakes/reading_model.py)
            self.read_purposes.add(title)
            return READERS[title](prompt)
        if title == "TemplateScores":
            return judge_template(json.loads(prompt.split("Template: ", 1)[1]))
        return super().own_answer(title, prompt)

    def __call__(self, body: dict) -> dict:
        reply = super().__call__(body)
        answer = reply["content"][-1]["input"]
        kind = kind_of(body)
        self.largest[kind] = max(self.largest.get(kind, 0), tokens_of(answer))
        self.reasked += "was rejected" in json.dumps(body["messages"][-1])
        sized = sized_tool_use_reply("respond", answer, body["max_tokens"])
        self.truncated_by_kind[kind] += sized["stop_reason"] == "max_tokens"
        return sized


def kind_of(body: dict) -> str:
    """A request's fusion purpose, else the title of its response schema."""
    title, prompt = body["tools"][0]["input_schema"]["title"], body["messages"][0]["content"]
    prompt = prompt if isinstance(prompt, str) else prompt[0]["text"]
    return next((purpose for (schema, opening), (purpose, _) in FUSION_READERS.items()
                 if title == schema and prompt.startswith(opening)), title)


def validated(root) -> dict[str, int]:
    """Tasks past validation, by the kind of their parent (domain or fusion)."""
    proj = Store(root / "skiller.db").projection()
    out = {"domain": 0, "fusion": 0}
    for m in proj.of_kind("task"):
        if m.state in AFTER_VALIDATION:
            out[m.inputs["parent"].split(":")[0]] += 1
    return out


def test_a_whole_run_on_the_messages_api_validates_as_many_tasks_as_the_builtin(tmp_path, key):
    builtin = make_workspace(tmp_path / "builtin")
    assert cli("run", "-w", str(builtin), *RUN) == 0
    model = FaithfulModel()
    with MessagesServer(responder=model) as server:
        root = anthropic_workspace(tmp_path / "model", server.base_url)
        assert cli("run", "-w", str(root), *RUN, *TIGHT) == 0
        caps: dict[str, set[int]] = {}
        for r in server.requests:
            caps.setdefault(kind_of(r), set()).add(r["max_tokens"])
    assert model.fusion_purposes == {"s10.fit", "s11.fuse", "s13.policy_merge"}
    assert model.read_purposes == set(READERS)  # tool graphs, personas and queries read from the text alone
    # answers were cut at their caps and asked again with doubled caps (never at the same cap)
    assert {4096, 8192}.issubset(caps["Implementation"]) and {1024, 2048}.issubset(caps["TemplateBatch"])
    assert {1024, 2048}.issubset(caps["s11.fuse"]) and {1024, 2048}.issubset(caps["s13.policy_merge"])
    expected, got = validated(builtin), validated(root)
    print(f"validated tasks: builtin {expected}, model path {got}; largest answers {model.largest}")
    assert expected["fusion"] > 0 and got["fusion"] >= 0.9 * expected["fusion"]
    assert sum(got.values()) >= 0.9 * sum(expected.values())
