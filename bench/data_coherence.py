"""Data-coherence figures of builtin databases: status/date contradictions, amount/price mismatches,
target-category mismatches (as the s06 integrity check counts them) and how often entity names repeat.

    python bench/data_coherence.py                  # every catalog domain at the default run's size and seed
    python bench/data_coherence.py --keep DIR       # keep them in DIR/<Domain>.sqlite (or measure those there)

The default config's seed, rows, people and clock are what s06 passes, so these are the default run's
databases (for the domains it picks) and those of every other catalog domain.
"""
from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from skiller.servers.coherence import coherence_report
from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.model import CatalogDomain
from skiller.config import Config
from skiller.world.builtin.codegen import snake
from skiller.world.builtin.dbgen import database_invariants, database_program
from skiller.servers.sandbox import Sandbox, SandboxLimits

KINDS = ("status_date", "amount", "category", "holding")


def _name_columns(domain: CatalogDomain) -> list[tuple[str, str]]:
    """(table, column) of the entity attributes that name an entry (…name, title)."""
    return [(snake(e.name), a.name) for e in domain.entities for a in e.attributes
            if a.type == "str" and (a.name.endswith("name") or a.name == "title")]


def generate(domain: CatalogDomain, out: Path, cfg: Config) -> Path:
    s06 = cfg.steps.s06
    args = ["--seed", str(cfg.seed), "--rows", str(s06.rows_per_table), "--people", str(s06.people),
            "--clock", cfg.clock.isoformat(), "--out", "db.sqlite"]
    result = Sandbox(SandboxLimits(cpu_seconds=60, wall_seconds=300)).run_python(
        {"gen_db.py": database_program(domain, load_catalog())}, "gen_db.py", args, collect=["db.sqlite"])
    if not result.ok:
        raise SystemExit(f"{domain.name}: generator failed: {result.stderr[-500:]}")
    path = out / f"{domain.name}.sqlite"
    path.write_bytes(result.outputs["db.sqlite"])
    return path


def measure(name: str, path: Path, clock: str) -> dict[str, tuple[int, int]]:
    domain = get_domain(name)
    report = coherence_report(path, database_invariants(domain), clock)
    figures = {k: (report.violations.get(k, 0), report.checked.get(k, 0)) for k in KINDS}
    conn = sqlite3.connect(path)
    for table, column in _name_columns(domain):
        distinct, rows = conn.execute(f"SELECT COUNT(DISTINCT {column}), COUNT(*) FROM {table}").fetchone()
        figures[f"{table}.{column}"] = (distinct, rows)
    conn.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="generate into (or, if it holds them, read) DIR/<Domain>.sqlite")
    args = parser.parse_args()
    cfg = Config()
    totals = {k: [0, 0] for k in KINDS}
    names: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep and any(args.keep.glob("*.sqlite")):
            dbs = [(p.stem, p) for p in sorted(args.keep.glob("*.sqlite"))]
        else:
            out = args.keep or Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            dbs = [(d.name, generate(d, out, cfg)) for d in load_catalog()]
        for name, path in dbs:
            figures = measure(name, path, cfg.clock.isoformat())
            line = []
            for key, (a, b) in figures.items():
                if key in totals:
                    totals[key][0] += a
                    totals[key][1] += b
                    line.append(f"{key} {a}/{b}")
                else:
                    names.append(a / b if b else 1.0)
                    line.append(f"{key} distinct {a}/{b}")
            print(f"{name:24s} " + "; ".join(line))
    print("---")
    for key, (a, b) in totals.items():
        print(f"{key:12s} {a:5d} of {b:6d} rows break the rule ({a / b if b else 0:.2%})")
    if names:
        print(f"entity names: mean distinct ratio {sum(names) / len(names):.3f}, "
              f"{sum(r < 0.5 for r in names)} of {len(names)} name columns below 0.5")


if __name__ == "__main__":
    main()
