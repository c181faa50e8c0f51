"""Writes keep the data rule: after every validated task's golden actions (the s16 gold state) the
database still has amount = price x quantity (+ fixed charge) in every priced row (issue 11)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from skiller.servers.coherence import coherence_report
from skiller.servers.task import EnvironmentBundle
from skiller.world.catalog import get_domain
from skiller.world.builtin.codegen import charged
from skiller.world.builtin.dbrules import database_invariants
from skiller.workspace import Workspace
from skiller.steps.s16_validation import ValidatedTask, open_environment
from tests.conftest import cli, make_workspace

# Domains whose records declare `pricing` and whose tools create them or change their quantity.
PRICED = ["CityTours", "Pharmacy", "SelfStorage", "TheaterTickets"]


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("priced") / "ws")
    # Validated tasks are all this module reads: no fusions (their environments are skipped) nor rollouts.
    assert cli("run", "-w", str(root), "--set", f"steps.s01.domains=[{','.join(PRICED)}]",
               "--set", "steps.s06.rows_per_table=30", "--set", "steps.s06.people=20",
               "--set", "fusion.enabled=false", "--set", "rollout.in_run=false") == 0
    return root


def test_gold_end_states_have_no_amount_price_mismatch(done):
    ws = Workspace.open(done)
    try:
        store, sandbox = ws.store, ws.sandbox()
        proj = store.projection()
        tasks: dict[str, list] = {}
        for m in proj.of_kind("task"):
            if "validated" in m.artifacts and m.state != "rejected":
                tasks.setdefault(m.inputs["parent"], []).append(m)
        checked: dict[str, int] = {}
        priced_calls: dict[str, int] = {}
        for parent, members in sorted(tasks.items()):
            holder = proj.machines[parent]
            bundle = EnvironmentBundle.model_validate_json(store.artifact(holder.artifacts["environment"]))
            if bundle.domains != [bundle.name] or bundle.name not in PRICED:
                continue  # fused environments prefix their tables; their parts are checked alone
            domain = get_domain(bundle.name)
            invariants = database_invariants(domain)
            assert invariants.amounts, bundle.name
            priced_tools = {t.name for t in domain.tools if charged(domain, t) is not None}
            with open_environment(bundle, store.artifact(holder.artifacts["database"]), sandbox) as env:
                for m in sorted(members, key=lambda m: m.stream):
                    v = ValidatedTask.model_validate_json(store.artifact(m.artifacts["validated"]))
                    env.reset()
                    for action in v.actions:
                        assert env.call(action.name, action.arguments).ok, (m.stream, action.name)
                    assert env.state_hash() == v.gold_state_hash, m.stream
                    with tempfile.TemporaryDirectory() as tmp:  # a copy: the report must not touch the live file
                        copy = Path(tmp) / "gold.sqlite"
                        copy.write_bytes(env.db_path.read_bytes())
                        report = coherence_report(copy, invariants, ws.config.clock)
                    assert not report.unknown, report.unknown
                    assert report.violations.get("amount", 0) == 0, (m.stream, report.examples.get("amount"))
                    checked[bundle.name] = checked.get(bundle.name, 0) + 1
                    calls = sum(a.name in priced_tools for a in v.actions)
                    priced_calls[bundle.name] = priced_calls.get(bundle.name, 0) + calls
        assert set(checked) == set(PRICED), checked
        # the check has teeth: gold trajectories do create priced rows and change quantities
        assert all(priced_calls[name] > 0 for name in PRICED), priced_calls
    finally:
        ws.close()
