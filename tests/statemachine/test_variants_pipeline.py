"""Seeded variants go through s01-s19 like catalog domains: implemented, tested in the sandbox, validated
tasks the oracle passes and a do-nothing agent fails; never fused with their own base."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from skiller.world.catalog import load_catalog
from skiller.world.catalog.variants import base_of, variant_name
from skiller.store import Store
from tests.conftest import cli, make_workspace

SMALL = ["--set", "steps.s01.num_domains=2", "--set", "steps.s01.min_sectors=2", "--set",
         "steps.s01.variants_per_domain=1", "--set", "steps.s06.rows_per_table=60", "--set", "steps.s06.people=40",
         "--set", "steps.s14.templates_per_domain=16", "--set", "fusion.templates_per_fusion=3"]
BASES = [d.name for d in load_catalog()]


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("variants") / "ws")
    assert cli("run", "-w", str(root), *SMALL) == 0
    return root


def _results(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "outputs/evaluation/results.jsonl").read_text().splitlines()]


def test_each_domain_gets_a_seeded_variant_that_is_implemented_and_tested(done):
    proj = Store(done / "skiller.db").projection()
    domains = {m.inputs["domain"]: m for m in proj.of_kind("domain")}
    bases = [d for d in domains if d in BASES]
    assert len(bases) == 2 and set(domains) == {*bases, *(variant_name(b, 7, 0) for b in bases)}
    assert all(m.state == "templated" for m in domains.values())
    for name in domains:  # its own server tests ran in the sandbox and passed
        tested = [r for r in Store(done / "skiller.db").rows(stream=f"domain:{name}") if r.type == "TestsRan"]
        assert tested and json.loads(tested[-1].payload)["failed"] == 0, name


def test_variant_tasks_validate_and_the_oracle_passes_them(done):
    results = _results(done)
    variants = {r["environment"] for r in results if base_of(r["environment"], BASES)}
    assert len(variants) == 2
    assert sum(r["environment"] in variants for r in results) >= 20
    assert results and all(r["reward"] == 1.0 and r["agent"] == "oracle" for r in results)
    assert cli("replay", "--verify", "-w", str(done)) == 0  # golden trajectories replay on fresh workers


def test_a_variant_is_fused_with_other_services_but_never_with_its_own_base(done):
    fused = [m.inputs["members"] for m in Store(done / "skiller.db").projection().of_kind("fusion")]
    assert any(any(base_of(m, BASES) for m in members) for members in fused)
    for members in fused:
        families = [(base_of(m, BASES) or (m,))[0] for m in members]
        assert len(set(families)) == len(families), members


def test_do_nothing_fails_every_variant_task_with_a_db_basis(done):
    assert cli("rollout", "-w", str(done), *SMALL, "--agent", "noop") == 0
    assert cli("evaluate", "-w", str(done), *SMALL) == 0
    results = [r for r in _results(done) if r["agent"] == "noop" and base_of(r["environment"], BASES)]
    with_db = [r for r in results if any(c["name"] == "DB" for c in r["components"])]
    assert with_db and all(r["reward"] == 0.0 for r in with_db)
