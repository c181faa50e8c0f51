"""Cross-domain fusion on the builtin provider: combinations, interlocked trajectories, namespaced databases."""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from skiller.servers.environment import Environment, ModuleSource
from skiller.servers.fusion import FusionError, fuse_databases, namespace_of
from skiller.servers.task import EnvironmentBundle
from skiller.store import Store
from tests.conftest import cli, make_workspace
from tests.fixtures import library_db_bytes

FOUR = ["--set", "steps.s01.num_domains=4", "--set", "steps.s01.min_sectors=2", "--set", "steps.s06.rows_per_table=60",
        "--set", "steps.s06.people=40", "--set", "rollout.in_run=false"]


@pytest.fixture(scope="module")
def fused(tmp_path_factory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("fusion") / "ws")
    assert cli("run", "-w", str(root), *FOUR) == 0
    return root


def _fusions(root: Path):
    store = Store(root / "skiller.db")
    return store, store.projection(), sorted(store.projection().of_kind("fusion"), key=lambda m: m.stream)


def test_fusions_follow_the_references_and_records_flow_between_members(fused):
    """The journey lease -> move -> storage and lease -> utility visit: pairs and triples joined by references
    (unrelated pairs pruned by fit); most fused tasks pass a record id, amount or date from one member's
    output into another member's call; at least 15% refuse a bridge rule."""
    store, proj, fusions = _fusions(fused)
    assert {f.inputs["name"] for f in fusions} == {
        "PropertyRental_MovingServices", "MovingServices_SelfStorage", "PropertyRental_PowerUtility",
        "PropertyRental_MovingServices_SelfStorage", "PropertyRental_MovingServices_PowerUtility"}
    tasks = []
    for f in fusions:
        assert f.state == "templated", (f.stream, f.state, f.payload)
        mine = [json.loads(store.artifact(m.artifacts["task"])) for m in proj.of_kind("task")
                if m.inputs["parent"] == f.stream and "task" in m.artifacts]
        assert mine, f.stream
        tasks += [(t, f.inputs["members"]) for t in mine]
    flowing = [t for t, members in tasks if _record_flows(t, members)]
    refusals = [t for t, _ in tasks if t["kind"] == "refusal" and "-X" in t["violated_rule"]]
    assert len(flowing) >= 0.5 * len(tasks) and len(refusals) >= 0.15 * len(tasks), (len(flowing), len(refusals), len(tasks))
    for t in refusals:  # a do-nothing agent misses the reads that establish the refusal
        assert t["evaluation_criteria"]["actions"] and "ACTION" in t["evaluation_criteria"]["reward_basis"]


def test_a_value_taken_from_the_handed_over_record_is_named_in_the_customer_s_words(fused):
    """The customer says which value of the other service's record the request uses, so the assistant fills it
    from the record it reads rather than choosing it: 'using the first day of the lease as the day of the move'."""
    store, proj, fusions = _fusions(fused)
    streams = {f.stream for f in fusions}
    moves = [t["first_query"] for m in proj.of_kind("task") if m.inputs["parent"] in streams and "task" in m.artifacts
             for t in [json.loads(store.artifact(m.artifacts["task"]))]
             if "book a move into the home of a lease" in t["first_query"] and t["kind"] == "write"]
    assert moves and all("using the first day of the lease as the day of the move" in q for q in moves), moves[:2]


def _record_flows(task: dict, members: list[str]) -> bool:
    prefixes = sorted(((namespace_of(m), m) for m in members), key=lambda p: -len(p[0]))
    calls = task["evaluation_criteria"]["actions"]
    owners = [next(m for p, m in prefixes if c["name"].startswith(p)) for c in calls]
    for j, call in enumerate(calls):
        for name, value in call["arguments"].items():
            for i in range(j):
                rows = calls[i]["expected"] if isinstance(calls[i]["expected"], list) else [calls[i]["expected"]]
                produced = {json.dumps(v) for r in rows if isinstance(r, dict) for k, v in r.items() if k != "person_id"}
                if name != "person_id" and owners[i] != owners[j] and json.dumps(value) in produced:
                    return True
    return False


def test_fused_tasks_confirm_who_asks_in_each_service_before_touching_their_data_there(fused):
    """Each member's policy asks for the person's identity before their data is read or changed there: in every
    fused golden trajectory a member's profile lookup comes before that member's first call on a record of theirs
    (catalogue searches are public)."""
    store, proj, fusions = _fusions(fused)
    checked = 0
    for f in fusions:
        prefixes = sorted(((namespace_of(m), m) for m in f.inputs["members"]), key=lambda p: -len(p[0]))
        for m in proj.of_kind("task"):
            if m.inputs["parent"] != f.stream or "task" not in m.artifacts:
                continue
            verified: set[str] = set()
            for call in json.loads(store.artifact(m.artifacts["task"]))["evaluation_criteria"]["actions"]:
                member = next(m for p, m in prefixes if call["name"].startswith(p))
                if "profile" in call["name"]:
                    verified.add(member)
                elif not re.search(r"_(search|list_catalog)", call["name"]):
                    assert member in verified, (m.stream, call["name"])
            checked += 1
    assert checked >= 10


def test_noop_scores_zero_on_fused_bridge_refusals(fused):
    name = "PropertyRental_MovingServices"
    assert cli("rollout", "-w", str(fused), *FOUR, "--agent", "noop", "--domain", name) == 0
    assert cli("evaluate", "-w", str(fused), *FOUR, "--domain", name) == 0
    store, proj, _ = _fusions(fused)
    kinds = {json.loads(store.artifact(m.artifacts["task"]))["id"]: json.loads(store.artifact(m.artifacts["task"]))["kind"]
             for m in proj.of_kind("task") if m.inputs["domain"] == name and "task" in m.artifacts}
    results = [json.loads(line) for line in (fused / "outputs/evaluation/results.jsonl").read_text().splitlines()]
    mine = [r for r in results if r["task_id"] in kinds]
    assert any(kinds[r["task_id"]] == "refusal" for r in mine)
    assert mine and all(r["reward"] == 0.0 and r["agent"] == "noop" for r in mine)
    assert cli("rollout", "-w", str(fused), *FOUR, "--agent", "oracle", "--domain", name) == 0


def test_fused_environment_rejects_dangling_references_and_broken_bridges_without_change(fused):
    store, proj, fusions = _fusions(fused)
    f = next(f for f in fusions if f.inputs["name"] == "PropertyRental_MovingServices")
    bundle = EnvironmentBundle.model_validate_json(store.artifact(f.artifacts["environment"]))
    writes = [json.loads(store.artifact(m.artifacts["task"])) for m in proj.of_kind("task")
              if m.inputs["parent"] == f.stream and "task" in m.artifacts]
    book = next(a for t in writes if t["kind"] == "write" for a in t["evaluation_criteria"]["actions"]
                if a["name"] == "moving_services_book_move")
    db = store.artifact(f.artifacts["database"])
    path = Path(str(fused)) / "probe.sqlite"
    path.write_bytes(db)
    conn = sqlite3.connect(path)
    other = conn.execute("SELECT lease_id FROM property_rental_lease WHERE person_id <> ? ORDER BY lease_id",
                         (book["arguments"]["person_id"],)).fetchone()[0]
    ended = conn.execute("SELECT lease_id FROM property_rental_lease WHERE person_id = ? AND status NOT IN "
                         "('applied', 'active')", (book["arguments"]["person_id"],)).fetchone()
    conn.close()
    path.unlink()
    with Environment.start(list(bundle.modules), db) as env:
        before = env.state_hash()
        missing = env.call("moving_services_book_move", {**book["arguments"], "lease_ref": "LSE-9999"})
        assert not missing.ok and "LSE-9999" in missing.error and "not found in PropertyRental" in missing.error
        foreign = env.call("moving_services_book_move", {**book["arguments"], "lease_ref": other})
        assert not foreign.ok and "not found" in foreign.error
        if ended is not None:
            broken = env.call("moving_services_book_move", {**book["arguments"], "lease_ref": ended[0]})
            assert not broken.ok and "[MOV-X1]" in broken.error
        assert env.state_hash() == before
        assert env.call("moving_services_book_move", book["arguments"]).value == book["expected"]
        assert env.state_hash() != before


def test_every_merged_policy_states_the_global_rules_it_cites(fused):
    from skiller.steps.s13_policy_merge import citation_problems

    store, proj, fusions = _fusions(fused)
    for f in fusions:
        markdown = json.loads(store.artifact(f.artifacts["policy"]))["markdown"]
        head = markdown.split("<!-- GLOBAL_RULES_END -->")[0]
        assert re.search(r"^3\. \*\*Confirm writes", head, re.M) and "(global rule 3)" in markdown
        assert citation_problems(markdown) == []
        bridges = json.loads(store.artifact(f.artifacts["policy"]))["bridges"]
        assert all(b["kind"] != "person" for b in bridges) and bridges
    # what the old merge produced: an empty global section still citing global rule 3
    stale = "<!-- POLICY_START -->\n## Global rules\n- be kind\n<!-- GLOBAL_RULES_END -->\n(global rule 3)"
    assert citation_problems(stale) == ["cites global rule 3, which its global rules do not state"]


def test_fused_databases_are_sound_and_namespaced(fused, tmp_path):
    store, proj, fusions = _fusions(fused)
    for f in fusions:
        path = tmp_path / f"{f.inputs['name']}.sqlite"
        path.write_bytes(store.artifact(f.artifacts["database"]))
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert len(tables) == len(set(tables))
        members = f.inputs["members"]
        assert all(t == "person" or any(t.startswith(namespace_of(m)) for m in members) for t in tables)
        ids = [r[0] for r in conn.execute("SELECT person_id FROM person")]
        assert len(ids) == len(set(ids)) == 40  # the shared people, once


def test_member_tools_answer_the_same_on_the_fused_database(fused):
    store, proj, fusions = _fusions(fused)
    f = fusions[0]
    bundle = EnvironmentBundle.model_validate_json(store.artifact(f.artifacts["environment"]))
    with Environment.start(list(bundle.modules),
                           store.artifact(f.artifacts["database"])) as env_fused:
        for module in bundle.modules:
            own = proj.machines[f"domain:{module.server}"]
            tools = json.loads(store.artifact(own.artifacts["tool_list"]))["tools"]
            with Environment.start([ModuleSource(server=module.server, code=module.code)],
                                   store.artifact(own.artifacts["database"])) as env_own:
                reads = [t for t in tools if list(t["parameters"]["required"]) == ["person_id"]]
                assert reads
                for tool in reads:
                    for person in ("P-0001", "P-0007", "P-0023"):
                        a = env_own.call(tool["name"], {"person_id": person})
                        b = env_fused.call(module.prefix + tool["name"], {"person_id": person})
                        assert (a.ok, a.value, a.error) == (b.ok, b.value, b.error)


def test_replay_verify_reexecutes_fused_golden_trajectories(fused, capsys):
    assert cli("replay", "--verify", "-w", str(fused)) == 0
    assert "no drift" in capsys.readouterr().out


def test_exports_have_combinations_fused_databases_and_merged_policies(fused):
    assert cli("export", "-w", str(fused)) == 0
    out = fused / "outputs"
    combos = json.loads((out / "cross_domain_templates/_combinations.json").read_text())
    for combo in combos["selected"]:
        name = combo["name"]
        assert "_" in name and (out / f"cross_domain_templates/{name}.json").is_file()
        policy = (out / f"policies/{name}.md").read_text()
        assert "<!-- BRIDGE" in policy and "<!-- POLICY_END -->" in policy
        assert list((out / "database/outputs/relationships" / name).glob("*.json"))
        assert (out / f"queries/{name}.jsonl").is_file()


def test_infeasible_combinations_are_pruned_without_llm_calls(fused):
    """Mark one domain's tasks rejected: every combination with it is pruned and only the rest are ranked."""
    import asyncio
    import random

    from skiller.config import load_config
    from skiller.world.builtin import BuiltinProvider
    from skiller.llm.client import LLMClient, StepLLM
    from skiller.llm.scripted import ScriptedProvider
    from skiller.steps import MachineIndex, MachineSummary, StepContext
    from skiller.steps.s04_blueprints import Blueprint
    from skiller.steps.s10_combinations import S10Input, run
    from skiller.steps.s14_task_templates import TaskTemplates

    store, proj, _ = _fusions(fused)
    domains = sorted(m.inputs["domain"] for m in proj.of_kind("domain"))
    dropped = domains[0]
    machines = {s: MachineSummary(kind=m.kind, inputs=m.inputs, payload=m.payload,
                                  state="rejected" if m.kind == "task" and m.inputs.get("domain") == dropped else m.state)
                for s, m in proj.machines.items()}
    inputs = S10Input(
        machines=MachineIndex(machines=machines),
        members_blueprint={d: Blueprint.model_validate_json(store.artifact(proj.machines[f"domain:{d}"].artifacts["blueprint"])) for d in domains},
        members_task_templates={d: TaskTemplates.model_validate_json(store.artifact(proj.machines[f"domain:{d}"].artifacts["task_templates"])) for d in domains})
    provider = ScriptedProvider(fallback=BuiltinProvider())
    record: list = []
    ctx = StepContext(stream="world", config=load_config(None), llm=StepLLM(LLMClient(provider, store), "world", record),
                      rng=random.Random(0), clock=load_config(None).clock, sandbox=None, record=record)
    out = asyncio.run(run(inputs, ctx))
    pruned = {p.name: p.reason for p in out.combinations.pruned}
    infeasible = {n: r for n, r in pruned.items() if dropped in n}
    assert len(infeasible) == 5 and all(dropped in reason for reason in infeasible.values())
    fitted = [r.context["combination"]["name"] for r in provider.calls if r.purpose == "s10.fit"]
    assert not any(dropped in name for name in fitted) and len(fitted) == out.combinations.considered - len(infeasible)
    assert {c.name for c in out.combinations.selected} == {"PropertyRental_PowerUtility"}  # the others share no record
    assert all("semantic fit 1" in pruned[n] for n in fitted if n != "PropertyRental_PowerUtility")


def test_fusing_disagreeing_people_is_refused():
    a = library_db_bytes()
    conn_path = Path(__file__).with_name("_tmp_people.sqlite")
    conn_path.write_bytes(a)
    conn = sqlite3.connect(conn_path)
    conn.execute("UPDATE person SET last_name = 'Other' WHERE person_id = 'P-001'")
    conn.commit()
    conn.close()
    b = conn_path.read_bytes()
    conn_path.unlink()
    with pytest.raises(FusionError, match="different person rows"):
        fuse_databases([("a_", a), ("b_", b)])
    assert re.match(r"^[a-z_]+_$", namespace_of("HealthInsurance")) and namespace_of("HealthInsurance") == "health_insurance_"


def _default_selection(seed: int, count: int = 24, domains: list[str] | None = None):
    import random

    from skiller.world.builtin.fusion import fit
    from skiller.world.builtin.world import blueprint, domains as pick_domains
    from skiller.llm.interface import LLMRequest, Message
    from skiller.steps.s04_blueprints import Blueprint
    from skiller.steps.s10_combinations import Fit, candidates, spread

    class _Ask:
        def __init__(self, **context):
            self.context = context

    names = domains or [d["name"] for d in pick_domains(_Ask(seed=7, count=10, min_sectors=5))["domains"]]
    blueprints = {n: Blueprint.model_validate(blueprint(_Ask(domain=n))) for n in names}
    rng = random.Random(seed)
    considered = candidates(blueprints, 3, 1)
    draw = {c.name: rng.random() for c in considered}
    fitted = [c.model_copy(update={"fit": Fit.model_validate(fit(_Ask(
        combination=c.model_dump(mode="json"), sectors=[blueprints[m].sector for m in c.members])))})
        for c in considered]
    return names, spread([c for c in fitted if c.fit.score >= 2], count, draw)


def test_the_default_domains_make_journeys_spread_evenly_with_triples():
    names, selected = _default_selection(7)
    assert {"Hospital", "HealthInsurance", "Pharmacy", "PropertyRental", "MovingServices"} <= set(names)
    triples = [c.members for c in selected if len(c.members) == 3]
    assert len(triples) >= 4 and {"Hospital", "Pharmacy", "HealthInsurance"} in [set(t) for t in triples]
    use = {n: sum(n in c.members for c in selected) for n in {m for c in selected for m in c.members}}
    assert max(use.values()) <= 2 * min(use.values()), use
    assert all(c.fit.score == 5 and all(l.kind == "reference" for l in c.links) for c in selected if len(c.members) == 3)


def test_ties_are_broken_by_the_seeded_draw_so_selection_changes_with_the_seed():
    picks = {seed: [c.name for c in _default_selection(seed, count=6)[1]] for seed in (1, 2, 3)}
    assert len({tuple(sorted(p)) for p in picks.values()}) > 1
    assert picks[1] == [c.name for c in _default_selection(1, count=6)[1]]  # same seed, same selection


def _merge(fused, tmp_path, rewrite, cache: str):
    """Run s13 on the lease -> move fusion with the builtin answer passed through `rewrite`."""
    import asyncio
    import random

    from skiller.config import load_config
    from skiller.world.builtin import BuiltinProvider
    from skiller.world.builtin.fusion import merge_policies
    from skiller.llm.client import LLMClient, StepLLM
    from skiller.llm.scripted import ScriptedProvider
    from skiller.steps import StepContext
    from skiller.steps.s07_policy import Policy
    from skiller.steps.s09_implementation import Implementation
    from skiller.steps.s10_combinations import Combination
    from skiller.steps.s13_policy_merge import S13Input, run

    store, proj, fusions = _fusions(fused)
    f = next(f for f in fusions if f.inputs["name"] == "PropertyRental_MovingServices")
    combo = Combination.model_validate_json(store.artifact(f.artifacts["combination"]))
    member = lambda d, kind, model: model.model_validate_json(store.artifact(proj.machines[f"domain:{d}"].artifacts[kind]))  # noqa: E731
    inputs = S13Input(name=combo.name, combination=combo,
                      members_policy={d: member(d, "policy", Policy) for d in combo.members},
                      members_implementation={d: member(d, "implementation", Implementation) for d in combo.members})
    provider = ScriptedProvider(fallback=BuiltinProvider()).push(
        "s13.policy_merge", lambda request: {"markdown": rewrite(merge_policies(request)["markdown"])})
    record: list = []
    config = load_config(None)
    ctx = StepContext(stream=f.stream, config=config, llm=StepLLM(LLMClient(provider, Store(tmp_path / cache)), f.stream, record),
                      rng=random.Random(0), clock=config.clock, sandbox=None, record=record)
    return asyncio.run(run(inputs, ctx))


def test_a_merge_citing_a_missing_global_rule_or_an_unknown_bridge_fails(fused, tmp_path):
    from skiller.steps.base import StepError

    merged = _merge(fused, tmp_path, lambda md: md, "a.db")
    code = next(m.code for m in merged.environment.modules if m.server == "MovingServices")
    assert "_BRIDGE_CHECKS" in code and "MOV-X1" in code  # the taker of the lease checks the reference
    with pytest.raises(StepError, match="cites global rule 3"):
        _merge(fused, tmp_path, lambda md: re.sub(r"^3\. .*$", "", md, count=1, flags=re.M), "b.db")
    with pytest.raises(StepError, match="governs no reference"):
        _merge(fused, tmp_path, lambda md: md.replace('"ref": "lease_ref"', '"ref": "move_ref"', 1), "c.db")
