"""skiller.world.builtin.tasks: templates that validate through the real s14-s17 steps, a judge, a re-plan, personas and queries."""
from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio
import pytest

from skiller.contract.dialogue import said_value, value_text
from skiller.evaluator.quality import template_text
from skiller.servers.database import summarize
from skiller.contract.environment import ModuleSource
from skiller.servers.task import EnvironmentBundle, Persona, Task
from skiller.world.catalog.model import CatalogDomain
from skiller.config import Config
from skiller.world.builtin import BuiltinProvider
from skiller.world.builtin.codegen import implementation_module
from skiller.world.builtin.dbgen import database_program
from skiller.world.builtin.tasks import judge_template, relax_sql, templates_for
from skiller.llm.interface import LLMRequest
from skiller.steps import s14_task_templates as s14
from skiller.steps import s15_instances as s15
from skiller.steps import s16_validation as s16
from skiller.steps import s17_instantiation as s17
from skiller.steps.base import StepContext, seeded_rng
from skiller.steps.s02_entity_extraction import DomainEntities, EntityCatalog
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s07_policy import Policy, policy_problems
from skiller.steps.s08_tool_graph import ToolGraph
from skiller.steps.s15_instances import Replan
from tests.world.builtin.test_dbgen import CLOCK, DOMAINS, SANDBOX, built_db

SEED = 7
COUNT = 24  # the pipeline default steps.s14.templates_per_domain
CONFIG = Config()
PROVIDER = BuiltinProvider()
# End to end for every domain at the test size; these also run at the pipeline's default size.
FULL_SIZE = ["Hospital", "Pharmacy", "Banking", "PublicLibrary", "HealthInsurance", "TheaterTickets"]


class _LLM:
    """ctx.llm over the builtin provider (no cache, no events)."""

    async def ask(self, request: LLMRequest, response_model: Any = None) -> Any:
        return (await PROVIDER.complete(request)).output


def _ask(purpose: str, model: Any, **context: Any) -> Any:
    request = LLMRequest(purpose=purpose, response_model=model, context=context)
    return anyio.run(PROVIDER.complete, request).output


def _ctx(stream: str, step: str) -> StepContext:
    return StepContext(stream=stream, config=CONFIG, llm=_LLM(), rng=seeded_rng(SEED, stream, step),
                       clock=dt.date.fromisoformat(CLOCK), sandbox=SANDBOX)


@lru_cache(maxsize=None)
def database(name: str, rows: int = 40, people: int = 30) -> bytes:
    if (rows, people) == (40, 30):
        return built_db(name)
    domain = next(d for d in DOMAINS if d.name == name)
    args = ["--seed", str(SEED), "--rows", str(rows), "--people", str(people), "--clock", CLOCK, "--out", "db.sqlite"]
    result = SANDBOX.run_python({"gen_db.py": database_program(domain, DOMAINS)}, "gen_db.py", args, collect=["db.sqlite"])
    assert result.ok, result.stderr[-2000:]
    return result.outputs["db.sqlite"]


@lru_cache(maxsize=None)
def blueprint(name: str) -> Blueprint:
    return _ask("s04.blueprint", Blueprint, domain=name)


@lru_cache(maxsize=None)
def policy(name: str) -> Policy:
    from skiller.steps.s07_policy import PolicyDoc

    doc = _ask("s07.policy", PolicyDoc, domain=name, attempt=0)
    problems, rules = policy_problems(doc.markdown, blueprint(name))
    assert not problems, problems
    return Policy(markdown=doc.markdown, rules=rules)


@dataclass
class Outcome:
    """What the real steps made of one domain's templates."""

    proposed: int = 0
    kept: int = 0
    validated: list[tuple[s14.ScoredTemplate, s16.ValidatedTask]] = field(default_factory=list)
    rejected: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    tools: set[str] = field(default_factory=set)


async def _pipeline(domain: CatalogDomain, db: bytes, graph: ToolGraph, with_tasks: bool) -> Outcome:
    name = domain.name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite"
        path.write_bytes(db)
        summary = summarize(path)
    entities = (await PROVIDER.complete(LLMRequest(purpose="s02.entities", response_model=DomainEntities,
                                                   context={"domain": name}))).output
    out14 = await s14.run(s14.S14Input(domain=name, blueprint=blueprint(name), policy=policy(name), tool_graph=graph,
                                       database_summary=summary, entities=EntityCatalog(entities=entities.entities)),
                          _ctx(f"domain:{name}", "s14"))
    bundle = EnvironmentBundle(name=name, domains=[name], policy=policy(name).markdown,
                               modules=[ModuleSource(server=name, code=implementation_module(domain, CLOCK))])
    outcome = Outcome(proposed=out14.task_templates.stats["proposed"], kept=len(out14.task_templates.templates))
    for i, scored in enumerate(out14.task_templates.templates):
        stream = f"task:{name}/{i:04d}"
        got15 = await s15.run(s15.S15Input(domain=name, template=scored, database=db, database_summary=summary),
                              _ctx(stream, "s15"))
        if got15.instance is None:
            outcome.rejected.append((scored.template.instruction, got15.payload))
            continue
        got16 = await s16.run(s16.S16Input(template=scored, instance=got15.instance, environment=bundle, database=db),
                              _ctx(stream, "s16"))
        if got16.validated is None:
            outcome.rejected.append((scored.template.instruction, got16.payload))
            continue
        outcome.validated.append((scored, got16.validated))
        outcome.tools |= {a.name for a in got16.validated.actions}
        if scored.template.forbidden is not None:
            outcome.tools.add(scored.template.forbidden.tool)
        if with_tasks:
            got17 = await s17.run(s17.S17Input(domain=name, template=scored, instance=got15.instance,
                                               validated=got16.validated, environment=bundle, database=db),
                                  _ctx(stream, "s17"))
            outcome.tasks.append(got17.task)
    return outcome


@lru_cache(maxsize=None)
def pipeline(name: str, rows: int = 40, people: int = 30, with_tasks: bool = True) -> Outcome:
    domain = next(d for d in DOMAINS if d.name == name)
    graph, _, _ = _ask("s08.tool_graph", ToolGraph, domain=name), blueprint(name), policy(name)
    return anyio.run(_pipeline, domain, database(name, rows, people), graph, with_tasks)


def _bigram_ratio(texts: list[str]) -> float:
    grams = [tuple(ws[i:i + 2]) for t in texts for ws in [re.findall(r"[\w'-]+", t.lower())] for i in range(len(ws) - 1)]
    return len(set(grams)) / max(1, len(grams))


def _untold(task: Task) -> list[str]:
    """Values a golden write sets that the customer never knows and no earlier call returned: the assistant
    could only have made them up."""
    facts, seen, untold = "\n".join(task.user_scenario.facts.values()), "", []
    for a in task.golden_actions:
        if a.mode == "write":
            untold += [f"{a.name}.{k}={v!r}" for k, v in a.arguments.items() if not isinstance(v, (bool, dict, list))
                       and not said_value(facts, value_text(v)) and value_text(v) not in seen]
        seen += json.dumps(a.expected)
    return untold


# ---------------------------------------------------------------- end to end through the real steps
@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_templates_validate_cover_the_tools_and_become_distinct_tasks(domain: CatalogDomain) -> None:
    outcome = pipeline(domain.name)
    assert outcome.proposed == COUNT and outcome.kept == COUNT, "every proposal passes template_problems and the judge"
    assert len(outcome.validated) >= 20, outcome.rejected
    assert len(outcome.tools) >= 0.8 * len(domain.tools), sorted({t.name for t in domain.tools} - outcome.tools)
    lengths = {len(v.actions) for _, v in outcome.validated}
    kinds = {s.template.kind for s, _ in outcome.validated}
    assert 1 in lengths and max(lengths) >= 3 and {"read", "write", "refusal"} <= kinds
    refused = {s.template.violated_rule for s, _ in outcome.validated if s.template.kind == "refusal"}
    kinds_of = {r.id: r.kind for r in domain.rules}
    assert {kinds_of[r] for r in refused} == set(kinds_of.values()), "a refusal for every rule kind"
    for scored, v in outcome.validated:
        if scored.template.kind == "write":
            assert v.gold_state_hash != v.initial_state_hash
        if scored.template.kind == "refusal":
            assert f"[{scored.template.violated_rule}]" in (v.refusal_error or "")
    queries = [t.first_query for t in outcome.tasks]
    assert len(set(queries)) == len(queries), "no two tasks of a domain open with the same message"
    assert _bigram_ratio(queries) > 0.3
    for task in outcome.tasks:
        references = [v for v in task.user_scenario.facts.values() if re.fullmatch(r"[A-Z][A-Z0-9]*-\d+", v)]
        assert not any(v in task.first_query for v in references), task.first_query  # given when asked
        assert not template_text(task.first_query), task.first_query
        assert "###STOP###" in task.user_scenario.instructions.task_instructions
        if task.kind == "refusal":
            assert task.rule is not None and task.rule.id == task.violated_rule and task.rule.statement
        assert not _untold(task), (task.first_query, _untold(task))
        slip = task.user_scenario.mistake
        if slip is not None:  # a slip on a reference only ever a read looks up first, and no row has it
            assert slip.fact in task.user_scenario.facts and slip.wrong != task.user_scenario.facts[slip.fact]
    slips = [t for t in outcome.tasks if t.user_scenario.mistake is not None]
    assert 0.1 * len(outcome.tasks) <= len(slips) <= 0.5 * len(outcome.tasks)


@pytest.mark.parametrize("name", FULL_SIZE)
def test_templates_also_validate_at_the_pipeline_default_size(name: str) -> None:
    rows, people = CONFIG.steps.s06.rows_per_table, CONFIG.steps.s06.people
    outcome = pipeline(name, rows, people, with_tasks=False)
    assert len(outcome.validated) >= 20, outcome.rejected


def test_builtin_answers_are_deterministic_and_depend_on_seed_and_count() -> None:
    context = {"domain": "Hospital", "count": COUNT, "seed": SEED, "min_length": 1, "max_length": 5, "clock": CLOCK}
    first = _ask("s14.templates", s14.TemplateBatch, **context)
    assert first == _ask("s14.templates", s14.TemplateBatch, **context)
    assert first != _ask("s14.templates", s14.TemplateBatch, **(context | {"seed": SEED + 1}))
    smaller = _ask("s14.templates", s14.TemplateBatch, **(context | {"count": 6}))
    assert len(smaller.templates) == 6 and {t.kind for t in smaller.templates} == {"read", "write", "refusal"}
    short = _ask("s14.templates", s14.TemplateBatch, **(context | {"max_length": 2}))
    assert short.templates and all(len(t.trajectory) <= 2 for t in short.templates)
    facts = {"person id": "P-0003", "full name": "Ana Lee"}
    for purpose, model, ctx in [("s17.persona", Persona, {"stream": "task:Hospital/0001", "seed": 7, "domain": "Hospital"}),
                                ("s17.query", s17.Query, {"persona": _persona(0).model_dump(), "facts": facts,
                                                          "instruction": "You want to cancel your appointment APT-0002.",
                                                          "kind": "write", "reason": "Plans changed.",
                                                          "unknown": "Nothing.", "stream": "task:Hospital/0001",
                                                          "seed": 7})]:
        assert _ask(purpose, model, **ctx) == _ask(purpose, model, **ctx)


def test_templates_pass_the_s14_checks_in_every_domain() -> None:
    for domain in DOMAINS:
        batch = templates_for(domain, COUNT, SEED)
        for t in batch:
            template = s14.TaskTemplate.model_validate(t)
            assert s14.template_problems(template, blueprint(domain.name), policy(domain.name), 1, 5) == [], t
            assert judge_template(t)["overall_score"] >= 4, t
            if re.search(r"\bwant to know\b", t["instruction"]):  # what the customer asks is what must be told
                assert t["communicate"], t["instruction"]


# ---------------------------------------------------------------- judge
def test_judge_scores_a_bad_template_low_and_a_good_one_high() -> None:
    good = templates_for(next(d for d in DOMAINS if d.name == "Hospital"), COUNT, SEED)
    assert min(judge_template(t)["overall_score"] for t in good) >= 4
    bad = {"kind": "refusal", "instruction": "do it", "reason_for_call": "", "known_info": {}, "unknown_info": "",
           "trajectory": [{"tool": "cancel_appointment", "arguments": {"appointment_id": "APT-1"}},
                          {"tool": "get_appointment", "arguments": {"appointment_id": "<out3.appointment_id>"}}],
           "forbidden": None, "violated_rule": None, "selectors": [], "communicate": []}
    scores = judge_template(bad)
    assert scores["overall_score"] < 3, scores
    verdict = _ask("s14.judge", s14.TemplateScores, template=bad)
    assert verdict.overall_score < 3


def test_judge_notices_ids_the_user_cannot_know_and_unordered_outputs() -> None:
    t = templates_for(next(d for d in DOMAINS if d.name == "Hospital"), COUNT, SEED)[1]
    assert judge_template(t)["completeness"] == 5 and judge_template(t)["logical_coherence"] == 5
    hidden = t | {"known_info": {}, "instruction": "You want to book a consultation with a doctor today, please."}
    assert judge_template(hidden)["completeness"] < 3
    first = t["trajectory"][0]
    early = t | {"trajectory": [{"tool": first["tool"], "arguments": {"person_id": "<out2.person_id>"}}, *t["trajectory"][1:]]}
    assert judge_template(early)["logical_coherence"] < 5


# ---------------------------------------------------------------- re-plan
def test_replan_relaxes_what_is_not_policy_and_otherwise_returns_the_same_plan() -> None:
    sql = ("SELECT r.* FROM appointment r WHERE r.status IN ('scheduled') /*relax*/AND r.reason = 'headache'/*end*/"
           " /*relax*/ORDER BY r.appointment_id/*end*/")
    assert relax_sql(sql) == "SELECT r.* FROM appointment r WHERE r.status IN ('scheduled')"
    assert relax_sql("SELECT * FROM t WHERE (SELECT COUNT(*) FROM u ORDER BY x) > 1 ORDER BY y LIMIT 3") == \
        "SELECT * FROM t WHERE (SELECT COUNT(*) FROM u ORDER BY x) > 1"
    template = {"selectors": [{"slot": "person", "sql": "SELECT 1 /*relax*/ORDER BY 1/*end*/"},
                              {"slot": "rec", "sql": sql}]}
    plan = _ask("s15.replan", Replan, domain="Hospital", template=template, slot="rec", why="no row matched", attempt=0)
    assert [s.sql for s in plan.selectors] == ["SELECT 1 /*relax*/ORDER BY 1/*end*/", relax_sql(sql)]
    again = _ask("s15.replan", Replan, domain="Hospital", template={"selectors": [{"slot": "rec", "sql": relax_sql(sql)}]},
                 slot="rec", why="no row matched", attempt=1)
    assert again.selectors[0].sql == relax_sql(sql), "nothing left to relax: the same plan, so s15 stops"


def test_s15_relaxes_a_failing_selector_and_stops_when_it_cannot() -> None:
    name = "Hospital"
    db = database(name)
    sel = [s14.Selector(slot="rec", sql="SELECT * FROM appointment WHERE 1 = 1 /*relax*/AND reason = 'no such'/*end*/")]
    template = s14.TaskTemplate(kind="read", trajectory=[s14.PlannedCall(tool="get_appointment", arguments={
        "appointment_id": "<rec.appointment_id>"})], instruction="x", reason_for_call="x", known_info={},
        unknown_info="x", selectors=sel, domains=[name])
    scored = s14.ScoredTemplate(template=template, scores=s14.TemplateScores(**judge_template(template.model_dump())),
                                template_id="t")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "db.sqlite").write_bytes(db)
        summary = summarize(Path(tmp) / "db.sqlite")
    got = anyio.run(s15.run, s15.S15Input(domain=name, template=scored, database=db, database_summary=summary),
                    _ctx("task:Hospital/x", "s15"))
    assert got.instance is not None and got.instance.attempts == 2
    stuck = scored.model_copy(update={"template": template.model_copy(update={"selectors": [
        s14.Selector(slot="rec", sql="SELECT * FROM appointment WHERE status = 'no such'")]})})
    got = anyio.run(s15.run, s15.S15Input(domain=name, template=stuck, database=db, database_summary=summary),
                    _ctx("task:Hospital/y", "s15"))
    assert got.trigger == "find_no_instance" and got.payload["attempts"] == 2


# ---------------------------------------------------------------- personas and queries
def _persona(i: int) -> Persona:
    return _ask("s17.persona", Persona, stream=f"task:Hospital/{i:04d}", seed=SEED, domain="Hospital")


def test_personas_are_varied() -> None:
    personas = [_persona(i) for i in range(80)]
    assert len({p.name for p in personas}) >= 30
    assert len({p.style for p in personas}) >= 8
    for attr in ("patience", "verbosity", "language_register"):
        assert len({getattr(p, attr) for p in personas}) == 3, attr


def test_query_voice_follows_verbosity_and_register() -> None:
    facts = {"person id": "P-0012", "full name": "Ana Lee", "appointment id": "APT-0007"}
    base = {"facts": facts, "instruction": "You want to cancel a scheduled appointment: your appointment APT-0007.",
            "kind": "write", "reason": "Your plans changed.", "unknown": "Nothing.", "seed": SEED}
    terse = Persona(name="A B", style="curt", patience="low", verbosity="terse", language_register="casual")
    rich = Persona(name="C D", style="meticulous", patience="high", verbosity="detailed", language_register="formal")
    lengths = {"terse": [], "detailed": []}
    for i in range(10):
        for p in (terse, rich):
            q = _ask("s17.query", s17.Query, persona=p.model_dump(), stream=f"s{i}", **base)
            assert "APT-0007" not in q.first_query and "P-0012" not in q.first_query, "references come when asked"
            assert "cancel a scheduled appointment" in q.first_query and not template_text(q.first_query)
            lengths[p.verbosity].append(len(q.first_query))
    assert sum(lengths["detailed"]) > 1.5 * sum(lengths["terse"])
