"""Volume benchmark: `skiller init --preset volume` then `skiller run`, printing environments, evaluated
tasks, cross-domain share, oracle reward, wall and CPU time (this process and its sandboxed workers).

    python bench/volume.py                       # the full preset (155 domains and their fusions)
    python bench/volume.py --domains 8 --variants 2   # a medium run: 24 domains and their fusions
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from skiller.world.catalog import load_catalog
from skiller.world.catalog.variants import base_of
from skiller.cli import main as skiller
from skiller.store import Store

TARGET_TASKS = 11_500


def cpu_seconds() -> tuple[float, float]:
    """(this process, its waited-for children: the sandboxed workers and test runs)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", type=int, help="steps.s01.num_domains (preset: 31)")
    parser.add_argument("--variants", type=int, help="steps.s01.variants_per_domain (preset: 4)")
    parser.add_argument("--combinations", type=int, help="fusion.num_combinations (preset: 700)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other override")
    parser.add_argument("--keep", help="run in this folder (kept) instead of a temporary one")
    parser.add_argument("--noop", action="store_true", help="then roll out a do-nothing agent: DB tasks must score 0")
    args = parser.parse_args()
    overrides = list(args.set)
    for key, value in (("steps.s01.num_domains", args.domains), ("steps.s01.variants_per_domain", args.variants),
                       ("fusion.num_combinations", args.combinations)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.domains is not None and args.domains < 5:
        overrides.append(f"steps.s01.min_sectors={args.domains}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or Path(tmp) / "ws")
        skiller(["init", str(root), "--preset", "volume"])
        sets = [x for o in overrides for x in ("--set", o)]
        wall, (own, kids), load = time.perf_counter(), cpu_seconds(), os.getloadavg()[0]
        with contextlib.redirect_stdout(io.StringIO()):  # the per-environment table is long at this size
            code = skiller(["run", "-w", str(root), *sets])
        wall = time.perf_counter() - wall
        own, kids = (a - b for a, b in zip(cpu_seconds(), (own, kids)))
        report(Store(root / "skiller.db"), code, wall, own, kids, overrides)
        print(f"load average (1 min) at the start {load:.1f}, at the end {os.getloadavg()[0]:.1f}: "
              f"{os.cpu_count()} cores shared with whatever else runs")
        if args.noop:
            noop(root, sets)


def noop(root: Path, sets: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        skiller(["rollout", "-w", str(root), *sets, "--agent", "noop"])
        skiller(["evaluate", "-w", str(root), *sets])
    results = [json.loads(line) for line in (root / "outputs/evaluation/results.jsonl").read_text().splitlines()]
    db = [r for r in results if r["agent"] == "noop" and any(c["name"] == "DB" for c in r["components"])]
    print(f"do-nothing agent: {len(db)} tasks with a DB basis, {sum(r['reward'] == 0.0 for r in db)} score 0")


def report(store: Store, code: int, wall: float, own: float, kids: float, overrides: list[str]) -> None:
    proj = store.projection()
    domains = [m for m in proj.of_kind("domain") if m.state == "templated"]
    fusions = [m for m in proj.of_kind("fusion") if m.state == "templated"]
    tasks = [m for m in proj.of_kind("task") if m.state == "evaluated"]
    cross = [m for m in tasks if str(m.inputs.get("parent", "")).startswith("fusion:")]
    rejected = sum(m.state == "rejected" for m in proj.of_kind("task"))
    rewards = [json.loads(store.artifact(m.artifacts["evaluation"]))["results"][0]["reward"] for m in tasks]
    cpu = own + kids
    print(f"overrides: {' '.join(overrides) or '(the preset as is)'}; exit code {code}")
    bases = [d.name for d in load_catalog()]
    variants = sum(base_of(m.inputs["domain"], bases) is not None for m in domains)
    print(f"environments: {len(domains) + len(fusions)}: {len(domains)} domains ({variants} seeded variants), "
          f"{len(fusions)} fusions")
    print(f"tasks evaluated: {len(tasks)} ({len(cross)} cross-domain, {len(cross) / max(1, len(tasks)):.1%}); "
          f"rejected: {rejected}; mean oracle reward {sum(rewards) / max(1, len(rewards)):.3f}, "
          f"min {min(rewards, default=0):.3f}")
    print(f"wall: {wall:.1f} s; CPU: {cpu:.1f} s (main {own:.1f} s, worker processes and sandboxes {kids:.1f} s); "
          f"{len(tasks) / wall:.1f} tasks/s; {cpu / max(1, len(tasks)):.3f} CPU-s per task")
    cores = os.cpu_count() or 1
    print(f"if the run had the {cores} cores to itself: at least {max(own, cpu / cores):.0f} s "
          f"(the busier of: this process alone, all CPU over {cores} cores); the rest of the wall was waiting")
    if tasks and len(tasks) < TARGET_TASKS:
        need = cpu / len(tasks) * TARGET_TASKS
        print(f"projected for {TARGET_TASKS:,} tasks at this cost per task: {need:.0f} CPU-s, "
              f"{need / cores / 60:.1f} min on {cores} idle cores (if all stay busy)")


if __name__ == "__main__":
    main()
