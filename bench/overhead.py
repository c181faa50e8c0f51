"""Framework overhead next to a model: the pipeline (synthesis and model rollouts) against a loopback
Messages-API server that answers every request after a fixed latency, with many requests in flight.

Single-domain synthesis only: the loopback model borrowed from the tests answers no fusion prompt.
Prints the wall time, the number of model calls, the ideal (calls x latency / concurrency, as if the
framework cost nothing and every slot were always busy), the framework's share of wall time against
that ideal, and the CPU the framework spent (the figure that does not depend on machine load).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the loopback model lives with the tests

from skiller.cli import main as skiller  # noqa: E402
from tests.fakes import Delay, MessagesServer, tool_use_reply  # noqa: E402
from tests.statemachine.test_anthropic_pipeline import FakeAssistant, FakeModel  # noqa: E402


class SlowModel:
    """Synthesis answers (structured, through the `respond` tool) and assistant turns, after `latency` s."""

    def __init__(self, latency: float) -> None:
        self.latency, self.synthesis, self.assistant = latency, FakeModel(), FakeAssistant()

    def __call__(self, body: dict):
        tools = body.get("tools", [])
        if tools and tools[0].get("input_schema", {}).get("title") == "Fit":  # s10's fit judge
            return Delay(self.latency, tool_use_reply("respond", {"score": 5, "rationale": "a natural journey"}))
        structured = any(t.get("name") == "respond" for t in tools)
        return Delay(self.latency, (self.synthesis if structured else self.assistant)(body))


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds before the server answers")
    parser.add_argument("--in-flight", type=int, default=128, help="requests in flight (provider and scheduler)")
    parser.add_argument("--domains", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("ANTHROPIC_API_KEY", "loopback-not-a-key")
    with tempfile.TemporaryDirectory() as tmp, MessagesServer(responder=SlowModel(args.latency)) as server:
        root = Path(tmp) / "ws"
        skiller(["init", str(root)])
        sets = {"provider.name": "anthropic", "provider.anthropic.base_url": server.base_url,
                "provider.anthropic.text_model": "fake-text", "provider.anthropic.code_model": "fake-code",
                "provider.anthropic.max_concurrency": args.in_flight,
                "scheduler.max_parallel_steps": args.in_flight, "steps.s01.num_domains": args.domains,
                "steps.s01.min_sectors": min(args.domains, 3), "rollout.agent": "anthropic",
                "fusion.enabled": "false"}  # the loopback model (tests/) does not write fusion prompts' answers
        argv = ["run", "-w", str(root)] + [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
        cpu, started = cpu_seconds(), time.perf_counter()
        code = skiller(argv)
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        calls = len(server.requests)
        ideal = calls * args.latency / args.in_flight
        print(f"exit {code}; {calls} model calls, at most {server.max_in_flight} in flight; "
              f"latency {args.latency * 1000:.0f} ms, concurrency {args.in_flight}")
        print(f"wall {wall:.1f} s; ideal (calls x latency / concurrency) {ideal:.1f} s; "
              f"framework share of wall vs ideal {(wall - ideal) / wall:.1%}")
        print(f"framework CPU {cpu:.1f} s ({cpu / wall:.1%} of wall; includes the loopback server's threads)")


if __name__ == "__main__":
    main()
