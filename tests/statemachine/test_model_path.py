"""The model path holds: a whole run on the anthropic provider against a loopback Messages server, with
realistic answer sizes cut at each request's max_tokens, validates (nearly) as many tasks as a builtin run,
fused tasks included. Tool graphs (s08), implementations (s09 module and tests), task templates (s14),
personas and queries (s17) are read from the prompt text alone (tests/fakes/reading_model.py,
reading_domain.py, reading_templates.py); the fusion requests (s10 fit, s11 fuse, s13 policy merge) take
their members, hand-overs, tables, segments and date from the prompt, but the builtin's fusion answers still
look each member's tools, records, policy and bridge rules up in the catalog by the member's name (a side
channel left to close). s01-s04, s06 and s07 are creative steps where a model invents the world, the data and
the rules from its own knowledge: there the fake draws on the builtin catalog as that knowledge, by the
domain name the prompt states. The whole default run is bench/model_path.py."""
from __future__ import annotations

import ast
import json
import re
from collections import Counter

from pydantic import BaseModel

from skiller.world.builtin.registry import ANSWERS
from skiller.world.builtin.tasks import judge_template
from skiller.llm.interface import LLMRequest
from skiller.store import Store
from tests.conftest import cli, make_workspace, small
from tests.fakes import sized_tool_use_reply, tokens_of
from tests.fakes import MessagesServer
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


def _json_objects(text: str) -> list[dict]:
    """The JSON objects at the start of `text`, separated by "; " (how the fusion prompts list links)."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text) and text[at] == "{":
        obj, at = decoder.raw_decode(text, at)
        out.append(obj)
        at += 2 if text.startswith("; ", at) else len(text)
    return out


def _combination(members: list[str], links: list[dict]) -> dict:
    # the name is the members joined by '_' (a model names it as it likes; the builtin seeds with it)
    return {"name": "_".join(members), "members": members, "links": links}


def _links_from_prose(text: str) -> list[dict]:
    """s10 states each hand-over in words: "T takes S's R as F (reference)" or "S and T serve the same person"."""
    links = []
    for part in text.split("; "):
        ref = re.fullmatch(r"(\w+) takes (\w+)'s (\w+) as (\w+) \(reference\)", part)
        person = re.fullmatch(r"(\w+) and (\w+) serve the same person", part)
        if ref:
            links.append({"source": ref[2], "target": ref[1], "kind": "reference", "record": ref[3], "field": ref[4]})
        elif person:
            links.append({"source": person[1], "target": person[2], "kind": "person"})
        else:
            raise AssertionError(f"fit prompt: unreadable hand-over {part!r}")
    return links


def fit_context(prompt: str) -> dict:
    links = _links_from_prose(re.search(r"to the next \((.*)\)\? Score", prompt, re.S)[1])
    members = [links[0]["source"], *(l["target"] for l in links)]
    sectors = [re.search(rf"\b{m} \(([^:()]+): ", prompt)[1] for m in members]
    return {"combination": _combination(members, links), "sectors": sectors}


def fuse_context(prompt: str) -> dict:
    members_text, count = re.search(r"tasks of (.*?) into (\d+) cross-domain", prompt, re.S).groups()
    members = members_text.split(", ")
    links = _json_objects(prompt.split("Hand-overs: ", 1)[1])
    tables_text = re.search(r"Member tables: (.*?)\. Today is", prompt, re.S)[1]
    tables = {m: t.split(", ") for m, t in (part.split(": ", 1) for part in tables_text.split("; "))}
    return {"combination": _combination(members, links), "count": int(count), "tables": tables,
            "segments": ast.literal_eval(prompt.split("Segments: ", 1)[1]),
            "clock": re.search(r"Today is (\d{4}-\d\d-\d\d)", prompt)[1], "seed": 7}


def merge_context(prompt: str) -> dict:
    members = re.search(r"Merge the policies of (.*?) into one policy", prompt, re.S)[1].split(", ")
    links = _json_objects(prompt.split("for each hand-over (", 1)[1])
    return {"combination": _combination(members, links)}


# Fusion requests, told apart by their response schema and their opening words.
FUSION = {("Fit", "Would a person plausibly use"): ("s10.fit", fit_context),
          ("TemplateBatch", "Fuse these validated"): ("s11.fuse", fuse_context),
          ("PolicyDoc", "Merge the policies of"): ("s13.policy_merge", merge_context)}


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
        for (schema, opening), (purpose, read) in FUSION.items():  # before READERS: s11 also answers TemplateBatch
            if title == schema and prompt.startswith(opening):
                self.fusion_purposes.add(purpose)
                request = LLMRequest(purpose=purpose, response_model=BaseModel, context=read(prompt))
                return ANSWERS[purpose](request)
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
    return next((purpose for (schema, opening), (purpose, _) in FUSION.items()
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
