"""Scaling benchmark: a builtin run at 1x, 2x and 4x the environments (domains, with fusions scaled alike);
prints wall and CPU time per evaluated task and the 4x/1x ratio (linear cost: close to 1)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skiller.store import Store


def run(root: Path, domains: int, fusions: int) -> tuple[float, float, int]:
    """(wall s, CPU s of the run and every process it started, evaluated tasks)."""
    subprocess.run([sys.executable, "-m", "skiller", "init", str(root)], check=True, capture_output=True)
    argv = [sys.executable, "-m", "skiller", "run", "-w", str(root), "--set", f"steps.s01.num_domains={domains}",
            "--set", f"steps.s01.min_sectors={min(domains, 5)}", "--set", f"fusion.num_combinations={fusions}"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"run with {domains} domains exited {proc.returncode}")
    tasks = sum(1 for m in Store(root / "skiller.db").projection().of_kind("task") if m.state == "evaluated")
    return wall, usage.ru_utime + usage.ru_stime, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=3, help="domains at 1x")
    parser.add_argument("--fusions", type=int, default=6, help="fusions at 1x")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (1, 2, 4):
            wall, cpu, tasks = run(Path(tmp) / f"x{factor}", args.domains * factor, args.fusions * factor)
            rows.append((factor, wall, cpu, tasks))
            print(f"{factor}x: {args.domains * factor} domains, {args.fusions * factor} fusions asked; {tasks} tasks "
                  f"evaluated; wall {wall:.1f} s ({wall / tasks * 1000:.0f} ms/task); "
                  f"CPU {cpu:.1f} s ({cpu / tasks * 1000:.0f} ms/task)", flush=True)
    (_, w1, c1, t1), (_, w4, c4, t4) = rows[0], rows[-1]
    print(f"time per task at 4x / at 1x: wall {(w4 / t4) / (w1 / t1):.2f}, CPU {(c4 / t4) / (c1 / t1):.2f}")


if __name__ == "__main__":
    main()
