"""skiller.world.builtin.dbgen: the database program runs sandboxed, is stdlib-only, deterministic and consistent."""
from __future__ import annotations

import ast
import sqlite3
from functools import lru_cache

import pytest

from skiller.servers.coherence import coherence_report
from skiller.world.catalog import get_domain, load_catalog, values
from skiller.world.catalog.model import CatalogDomain
from skiller.config import Config
from skiller.world.builtin.codegen import id_column, snake
from skiller.world.builtin.dbgen import database_invariants, database_program
from skiller.servers.sandbox import Sandbox, SandboxLimits
from skiller.steps.s06_database import check_database

SEED, ROWS, PEOPLE, CLOCK = 7, 40, 30, "2026-03-02"
DOMAINS = load_catalog()
SANDBOX = Sandbox(SandboxLimits(cpu_seconds=20, wall_seconds=60))
STDLIB = {"__future__", "argparse", "datetime", "os", "sqlite3", "sys", "types", "typing", "json", "random", "hashlib"}


def run_program(domain: CatalogDomain, seed: int = SEED) -> bytes:
    """Generate the domain's DB in the sandbox and return the file's bytes."""
    args = ["--seed", str(seed), "--rows", str(ROWS), "--people", str(PEOPLE), "--clock", CLOCK, "--out", "db.sqlite"]
    result = SANDBOX.run_python({"gen_db.py": database_program(domain, DOMAINS)}, "gen_db.py", args,
                                collect=["db.sqlite"])
    assert result.ok, result.stderr[-3000:]
    return result.outputs["db.sqlite"]


@lru_cache(maxsize=None)
def built_db(name: str, seed: int = SEED) -> bytes:
    """The DB of a catalog domain (40 rows, 30 people), built once per test session and seed."""
    return run_program(next(d for d in DOMAINS if d.name == name), seed)


def open_bytes(data: bytes) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(data)
    return conn


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_database_is_byte_identical_across_runs_and_consistent(domain: CatalogDomain) -> None:
    first = built_db(domain.name)
    assert run_program(domain) == first
    db = open_bytes(first)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    expected = {"person", snake(domain.role), *(snake(e.name) for e in domain.entities),
                *(snake(r.name) for r in domain.records), *(snake(r.lines.name) for r in domain.records if r.lines)}
    assert set(tables) == expected
    for table in tables:
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0, f"{table} is empty"
    assert db.execute(f"SELECT COUNT(*) FROM {snake(domain.role)}").fetchone()[0] == PEOPLE
    for rec in domain.records:
        fks = {(r[3], r[2]) for r in db.execute(f"PRAGMA foreign_key_list({snake(rec.name)})")}
        assert fks == {("person_id", "person"), (id_column(rec.target), snake(rec.target))}
        pk = [r[1] for r in db.execute(f"PRAGMA table_info({snake(rec.name)})") if r[5]]
        assert pk == [id_column(rec.name)]
        assert db.execute(f"SELECT MIN({id_column(rec.name)}) FROM {snake(rec.name)}").fetchone()[0] == f"{rec.id_prefix}-0001"
        statuses = {r[0] for r in db.execute(f"SELECT DISTINCT {rec.status_field} FROM {snake(rec.name)}")}
        assert statuses == set(rec.statuses), "every status appears at least once"


def test_person_table_is_identical_in_every_domain() -> None:
    expected = [tuple(r.values()) for r in values.person_rows(PEOPLE, SEED, CLOCK)]
    for domain in DOMAINS:
        rows = open_bytes(built_db(domain.name)).execute("SELECT * FROM person ORDER BY person_id").fetchall()
        assert rows == expected, domain.name


def test_another_seed_gives_other_data() -> None:
    domain = DOMAINS[0]
    assert run_program(domain, seed=SEED + 1) != built_db(domain.name)


@pytest.mark.parametrize("domain", DOMAINS[:3], ids=lambda d: d.name)
def test_program_is_self_contained(domain: CatalogDomain) -> None:
    source = database_program(domain, DOMAINS)
    assert source == database_program(domain, DOMAINS)
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= STDLIB, imported - STDLIB
    assert "skiller.world.catalog import" not in source.split("VALUES_SOURCE")[0]


@lru_cache(maxsize=None)
def default_size_db(name: str) -> bytes:
    """The DB of a catalog domain at the pipeline's default size (config defaults: rows, people, clock)."""
    cfg = Config()
    args = ["--seed", str(cfg.seed), "--rows", str(cfg.steps.s06.rows_per_table), "--people", str(cfg.steps.s06.people),
            "--clock", cfg.clock.isoformat(), "--out", "db.sqlite"]
    result = SANDBOX.run_python({"gen_db.py": database_program(get_domain(name), DOMAINS)}, "gen_db.py", args,
                                collect=["db.sqlite"])
    assert result.ok, result.stderr[-3000:]
    return result.outputs["db.sqlite"]


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_generated_rows_obey_the_world_at_the_default_size(domain: CatalogDomain, tmp_path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(default_size_db(domain.name))
    invariants = database_invariants(domain)
    report = coherence_report(path, invariants, Config().clock)
    assert report.ok, report.problems()
    assert report.violations == {}, report.examples
    assert report.checked.get("status_date", 0) == 300 * len(invariants.status_dates)
    with sqlite3.connect(path) as conn:  # every priced row: 300 per record table, every line of a lined one
        priced = sum(conn.execute(f"SELECT COUNT(*) FROM {a.table}").fetchone()[0] for a in invariants.amounts)
    assert report.checked.get("amount", 0) == priced
    assert report.checked.get("line_total", 0) == 300 * len(invariants.line_totals)
    problems, summary = check_database(path.read_bytes(), invariants, Config().clock)
    assert problems == [] and summary is not None


def test_priced_records_charge_price_times_quantity_and_names_rarely_repeat() -> None:
    db = open_bytes(default_size_db("CityTours"))
    rows = db.execute("SELECT b.amount_due, t.price_per_person, b.participants FROM tour_booking b "
                      "JOIN tour t USING (tour_id)").fetchall()
    assert all(abs(amount - round(price * n, 2)) < 0.005 for amount, price, n in rows)
    assert any(n > 1 for _, _, n in rows)
    db = open_bytes(default_size_db("Banking"))
    assert db.execute("SELECT COUNT(DISTINCT card_name) FROM card_product").fetchone()[0] == 300
    assert {r[0] for r in db.execute("SELECT DISTINCT p.payee_category FROM transfer t JOIN payee p USING (payee_id)")} \
        == {"utility"}  # every transfer settles an electricity bill


def test_statuses_follow_dates_in_both_directions() -> None:
    db = open_bytes(default_size_db("Hospital"))
    today = Config().clock.isoformat()
    late = db.execute("SELECT COUNT(*) FROM appointment WHERE status IN ('completed', 'checked_in') AND scheduled_date > ?",
                      (today,)).fetchone()[0]
    stale = db.execute("SELECT COUNT(*) FROM appointment WHERE status = 'scheduled' AND scheduled_date < ?",
                       (today,)).fetchone()[0]
    assert late == 0 and stale == 0
    assert db.execute("SELECT COUNT(*) FROM appointment WHERE status = 'completed'").fetchone()[0] > 0
