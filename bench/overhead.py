"""Framework overhead next to a model: the pipeline (synthesis and model rollouts) against a loopback
Messages-API server that answers every request after a fixed latency, with many requests in flight.

Single-domain synthesis only: the loopback model borrowed from the tests answers no fusion prompt.
Prints the wall time, the number of model calls and three views of what the framework costs:
- against the naive ideal (calls x latency / concurrency, as if the framework cost nothing and every
  slot were always busy). The pipeline's calls depend on each other (s02 needs s01's answer, a
  rollout's turn needs the previous turn), so that ideal is unreachable by construction;
- against the critical-path ideal: the longest chain of dependent calls x latency (or the naive ideal
  when greater). A chain runs through a machine's calls that do not overlap in time (calls a step
  makes at once overlap) and continues from the machines that had to finish work before it was
  created (its parent, a fusion's members);
- the share of wall time during which no model request is in flight (the model waits on us), from
  the intervals the loopback server saw;
and the CPU the framework spent (the figure that does not depend on machine load).

Measured (4 domains, 200 ms x 128, 503 calls, a critical path of 32 dependent calls = 6.4 s; load
average 5.3-5.6 from other jobs on 2 cores; the code before and after, run back to back):
- before: wall 34.8-38.2 s; 97.9% against the naive ideal, 81.6-83.3% against the critical path; no
  request in flight during 18.0-21.3 s (52-56% of wall); framework CPU 17.6-18.2 s; 67 worker starts,
  each stopping the event loop for ~0.25 s. (At load 8.9: wall 53.6 s, 36.2 s without a request.)
- after: wall 32.5-34.1 s; 97.7% naive, 80.4-81.2% critical path; no request in flight 15.6-16.9 s
  (48-50% of wall); framework CPU 17.6-17.9 s; 64 worker starts, in threads. What remains is CPU work
  on a loaded machine, while s18 (3.3-3.7 s: the builtin user, tool calls, worker starts),
  the scheduler between steps (2.8-3.0 s), s09's tests (2.3-3.1 s), s14 (2.0-3.1 s), s17 (1.3 s) run.
  Also removed: s19's row diff of a failed evaluation over every table (now only tables whose
  canonical dumps differ), which had run on the event loop for ~0.2 s per failed transcript.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the loopback model lives with the tests

from skiller.cli import main as skiller  # noqa: E402
from skiller.llm.client import LLMClient, RecordingChat  # noqa: E402
from skiller.statemachine import executor  # noqa: E402
from skiller.store import Store  # noqa: E402
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


class TimedServer(MessagesServer):
    """The loopback server, also noting when each request arrived (+1) and was answered (-1)."""

    def __init__(self, responder) -> None:
        super().__init__(responder=responder)
        self.marks: list[tuple[float, int]] = []

    def _record(self, body: dict, headers: dict):
        self.marks.append((time.perf_counter(), 1))
        return super()._record(body, headers)

    def _answered(self) -> None:
        super()._answered()
        self.marks.append((time.perf_counter(), -1))


def idle_seconds(marks: list[tuple[float, int]], start: float, end: float) -> float:
    """Time in [start, end] during which no request was in flight."""
    idle, depth, since = 0.0, 0, start
    for at, step in sorted(marks):
        if depth == 0 and step > 0:
            idle += max(0.0, at - since)
        depth += step
        if depth == 0:
            since = at
    return idle + (max(0.0, end - since) if depth == 0 else 0.0)


class CallLog:
    """Which machine made each uncached model call and when, and when each machine was created (this
    process only: the bench patches the LLM client, the chat recorder and the store's append)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.created: dict[str, tuple[float, dict]] = {}
        self.steps: list[tuple[str, float, float]] = []  # step name, start, end

    def install(self) -> None:
        log, ask, chat, append = self, LLMClient.ask, RecordingChat.chat, Store.append

        async def timed_ask(client, request, stream, record):
            started = time.perf_counter()
            output = await ask(client, request, stream, record)
            if record and not record[-1].cache_hit:
                log.calls[stream].append((started, time.perf_counter()))
            return output

        async def timed_chat(recorder, *args, **kwargs):
            started = time.perf_counter()
            turn = await chat(recorder, *args, **kwargs)
            log.calls[recorder._stream].append((started, time.perf_counter()))  # noqa: SLF001
            return turn

        def noted_append(store, events, *args, **kwargs):
            append(store, events, *args, **kwargs)
            for event in events:
                if event.type == "MachineCreated":
                    log.created.setdefault(event.stream, (time.perf_counter(), dict(event.inputs)))

        run_step = executor.run_step

        async def timed_step(job, *args, **kwargs):
            started = time.perf_counter()
            try:
                return await run_step(job, *args, **kwargs)
            finally:
                log.steps.append((executor.step_of(job).name, started, time.perf_counter()))

        LLMClient.ask, RecordingChat.chat, Store.append = timed_ask, timed_chat, noted_append
        executor.run_step = timed_step

    def idle_by_step(self, marks: list[tuple[float, int]], start: float, end: float) -> dict[str, float]:
        """Idle time (no request in flight) shared out among the steps running meanwhile ("between
        steps": none was)."""
        gaps, depth, since = [], 0, start
        for at, step in sorted(marks):
            if depth == 0 and step > 0 and at > since:
                gaps.append((since, at))
            depth += step
            if depth == 0:
                since = at
        if depth == 0 and end > since:
            gaps.append((since, end))
        edges = sorted({t for g in gaps for t in g} | {t for _, a, b in self.steps for t in (a, b)})
        shares: dict[str, float] = defaultdict(float)
        for lo, hi in gaps:
            cuts = [lo] + [t for t in edges if lo < t < hi] + [hi]
            for a, b in zip(cuts, cuts[1:]):
                mid = (a + b) / 2
                running = [name for name, s, e in self.steps if s <= mid < e]
                for name in running or ["between steps"]:
                    shares[name] += (b - a) / max(1, len(running))
        return dict(sorted(shares.items(), key=lambda kv: -kv[1]))

    def critical_chain(self) -> int:
        """The longest chain of dependent calls over every machine."""
        def within(stream: str, until: float) -> int:  # calls that overlap in time ran side by side
            spans = sorted(s for s in self.calls.get(stream, []) if s[1] <= until)
            best: list[int] = []
            for i, (start, _) in enumerate(spans):
                best.append(1 + max((best[j] for j in range(i) if spans[j][1] <= start), default=0))
            return max(best, default=0)

        def upto(stream: str, until: float) -> int:
            if stream == "world":
                return within(stream, until)
            born, inputs = self.created.get(stream, (until, {}))
            needs = [inputs.get("parent") or "world", *(f"domain:{m}" for m in inputs.get("members") or [])]
            return max((upto(n, born) for n in needs if n != stream), default=0) + within(stream, until)

        return max((upto(s, float("inf")) for s in set(self.calls) | set(self.created)), default=0)


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
    calls_log = CallLog()
    calls_log.install()
    with tempfile.TemporaryDirectory() as tmp, TimedServer(SlowModel(args.latency)) as server:
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
        ended = time.perf_counter()
        wall, cpu = ended - started, cpu_seconds() - cpu
        calls = len(server.requests)
        ideal = calls * args.latency / args.in_flight
        chain = calls_log.critical_chain()
        critical = max(chain * args.latency, ideal)
        idle = idle_seconds(server.marks, started, ended)
        print(f"exit {code}; {calls} model calls, at most {server.max_in_flight} in flight; "
              f"latency {args.latency * 1000:.0f} ms, concurrency {args.in_flight}")
        print(f"wall {wall:.1f} s; ideal (calls x latency / concurrency) {ideal:.1f} s; "
              f"framework share of wall vs ideal {(wall - ideal) / wall:.1%}")
        print(f"critical path {chain} dependent calls: ideal {critical:.1f} s; "
              f"framework share of wall vs critical path {(wall - critical) / wall:.1%}")
        print(f"no request in flight (the model waits on us): {idle:.1f} s, {idle / wall:.1%} of wall")
        shares = calls_log.idle_by_step(server.marks, started, ended)
        print("  of which: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in list(shares.items())[:8]))
        print(f"framework CPU {cpu:.1f} s ({cpu / wall:.1%} of wall; includes the loopback server's threads)")


if __name__ == "__main__":
    main()
