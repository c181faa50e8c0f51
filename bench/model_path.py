"""Must-hold 1 of issue 15 on a whole default run: `skiller init`'s config (10 domains, fusion on, rollouts
in the run) once on the builtin provider and once with `provider.name: anthropic` pointed at the loopback
model of the tests (answers sized realistically, cut at each request's `max_tokens` with
`stop_reason: max_tokens`). Prints the validated tasks of both runs, the model path's share of the
builtin's, the requests, truncations and re-asks, the largest answer per request kind, wall and CPU
seconds. Exits 1 when the model path validates fewer than `--floor` of the builtin's tasks.

    python bench/model_path.py [--floor 0.9] [--keep DIR] [--tight]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the loopback model lives with the tests

from skiller.cli import main as skiller  # noqa: E402
from tests.fakes import MessagesServer  # noqa: E402
from tests.statemachine.test_model_path import TIGHT, FaithfulModel, kind_of, validated  # noqa: E402


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(args: list[str]) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    code = skiller(args)
    return code, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", type=float, default=0.9, help="least share of the builtin's validated tasks")
    parser.add_argument("--keep", type=Path, help="keep both workspaces under this folder")
    parser.add_argument("--tight", action="store_true",
                        help="caps below the largest answers (the model-path test's), so cut answers are asked again larger")
    args = parser.parse_args()
    os.environ.setdefault("ANTHROPIC_API_KEY", "loopback-not-a-key")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        builtin, model_ws = base / "builtin", base / "anthropic"
        skiller(["init", str(builtin)])
        code, wall, cpu = timed(["run", "-w", str(builtin)])
        print(f"builtin run: exit {code}, {wall:.0f} s wall, {cpu:.0f} s CPU")
        model = FaithfulModel()
        with MessagesServer(responder=model) as server:
            skiller(["init", str(model_ws)])
            sets = ["--set", "provider.name=anthropic", "--set", f"provider.anthropic.base_url={server.base_url}",
                    "--set", "provider.anthropic.text_model=fake-text", "--set", "provider.anthropic.code_model=fake-code",
                    "--set", "provider.anthropic.backoff_base=0.0"]
            mcode, mwall, mcpu = timed(["run", "-w", str(model_ws), *sets, *(TIGHT if args.tight else [])])
            requests = list(server.requests)
        print(f"anthropic-loopback run: exit {mcode}, {mwall:.0f} s wall, {mcpu:.0f} s CPU (server included)")
        expected, got = validated(builtin), validated(model_ws)
        total, share = sum(got.values()), sum(got.values()) / max(1, sum(expected.values()))
        print(f"validated tasks: builtin {sum(expected.values())} {expected}, "
              f"anthropic-loopback {total} {got} ({share:.1%})")
        kinds = Counter(kind_of(r) for r in requests)
        print(f"requests: {len(requests)}; truncated at max_tokens: {model.truncated} "
              f"{dict(model.truncated_by_kind)}; re-asked after a rejected answer: {model.reasked}")
        print(f"requests by kind: {dict(sorted(kinds.items()))}")
        print(f"largest whole answer by kind (tokens): {dict(sorted(model.largest.items()))}")
        print(f"answered from the request text alone: {sorted(model.read_purposes | model.fusion_purposes)}")
    sys.exit(0 if code == 0 and mcode == 0 and share >= args.floor else 1)


if __name__ == "__main__":
    main()
