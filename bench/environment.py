"""Environment benchmark: tool calls per second through the sandboxed worker, and MCP stdio round-trip latency."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from skiller.servers.environment import Environment
from skiller.servers.task import EnvironmentBundle
from skiller.cli import main as skiller
from skiller.store import Store

REPO = Path(__file__).resolve().parents[1]


def build(root: Path, domain: str | None) -> tuple[Path, str]:
    skiller(["init", str(root)])
    skiller(["run", "-w", str(root), "--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1",
             "--set", "scheduler.stop_after=implemented"])
    store = Store(root / "skiller.db")
    name = domain or next(m.inputs["domain"] for m in store.projection().of_kind("domain"))
    return root, name


def in_process(store: Store, name: str, calls: int) -> None:
    m = store.projection().machines[f"domain:{name}"]
    bundle = EnvironmentBundle.model_validate_json(store.artifact(m.artifacts["environment"]))
    with Environment.start(list(bundle.modules),
                           store.artifact(m.artifacts["database"])) as env:
        profile = next(t.name for t in env.tools if "profile" in t.name)
        started = time.perf_counter()
        for i in range(calls):
            env.call(profile, {"person_id": f"P-{i % 200 + 1:04d}"})
        read = calls / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(200):
            env.reset()
        reset = 200 / (time.perf_counter() - started)
    print(f"in-process (sandboxed worker) reads: {read:,.0f} calls/s; reset: {reset:,.0f}/s")


def over_mcp(root: Path, name: str, calls: int) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "skiller", "serve", "-w", str(root),
                                                                  "--domain", name], cwd=str(REPO))

    async def run() -> list[float]:
        async with Client(params) as client:
            tools = await client.list_tools()
            profile = next(t.name for t in tools.tools if "profile" in t.name)
            latencies = []
            for i in range(calls):
                started = time.perf_counter()
                result = await client.call_tool(profile, {"person_id": f"P-{i % 200 + 1:04d}"})
                latencies.append(time.perf_counter() - started)
                json.loads(result.content[0].text)
            return latencies

    lat = anyio.run(run)
    print(f"MCP stdio round trip: median {statistics.median(lat) * 1000:.2f} ms, "
          f"p95 {sorted(lat)[int(len(lat) * 0.95)] * 1000:.2f} ms over {len(lat)} calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--domain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, name = build(Path(tmp) / "ws", args.domain)
        print(f"domain: {name}")
        in_process(Store(root / "skiller.db"), name, args.calls)
        over_mcp(root, name, min(args.calls, 500))


if __name__ == "__main__":
    main()
