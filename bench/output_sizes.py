"""Sizes of the answers a run received, per request purpose, next to the configured output cap.

Tokens are estimated as characters of the answer's JSON / 4. Run after a builtin run with the
default config to size `output_caps` (e.g. `skiller run -w /tmp/ws --set rollout.in_run=false`):
    python bench/output_sizes.py /tmp/ws
"""
from __future__ import annotations

import sqlite3
import statistics
import sys
from pathlib import Path

from skiller.config import Config


def main(workspace: str) -> None:
    caps = Config().output_caps
    conn = sqlite3.connect(Path(workspace) / "skiller.db")
    sizes: dict[str, list[int]] = {}
    for purpose, response in conn.execute("SELECT purpose, response FROM llm_cache"):
        sizes.setdefault(purpose, []).append(len(response) // 4)
    print(f"{'purpose':22} {'answers':>7} {'median':>7} {'p95':>7} {'max':>7} {'cap':>7} {'cap/max':>7}")
    for purpose in sorted(sizes):
        xs = sorted(sizes[purpose])
        p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
        cap = caps.for_purpose(purpose)
        print(f"{purpose:22} {len(xs):7d} {int(statistics.median(xs)):7d} {p95:7d} {xs[-1]:7d} {cap:7d} "
              f"{cap / xs[-1]:7.1f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
