"""The CLI as a real process: progress when output is piped, and `serve` stopping on the first Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skiller.store import Store
from tests.conftest import make_workspace, small

ONE = ["--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1", "--set", "scheduler.stop_after=implemented"]

CLIENT = """
import asyncio, sys
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

async def main(url):
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            print("connected", flush=True)
            await asyncio.sleep(600)

asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def implemented(tmp_path_factory) -> tuple[Path, str, str]:
    """One implemented domain, built by a real `skiller run` whose output is piped."""
    root = make_workspace(tmp_path_factory.mktemp("cli") / "ws")
    env = {k: v for k, v in os.environ.items() if "KEY" not in k} | {"SKILLER_PROGRESS_SECONDS": "0"}
    done = subprocess.run([sys.executable, "-m", "skiller", "run", "-w", str(root), *small(), *ONE], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    domain = Store(root / "skiller.db").projection().of_kind("domain")[0].inputs["domain"]
    return root, domain, done.stderr


def test_piped_output_gets_plain_progress_lines(implemented):
    _, _, stderr = implemented
    lines = [line for line in stderr.splitlines() if "machines done" in line]
    assert lines and lines[-1].split("]", 1)[1].strip() == "0/1 machines done; implemented:1"  # where it stopped
    assert "\x1b[" not in stderr and "\r" not in stderr  # no live bar, no terminal codes


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=60)


@pytest.mark.timeout(300)
def test_serve_stops_on_the_first_ctrl_c_with_a_client_connected(implemented):
    root, domain, _ = implemented
    env = {k: v for k, v in os.environ.items() if "KEY" not in k}
    # As from a terminal: a pytest-xdist worker may ignore SIGINT, and its children would inherit that.
    server = subprocess.Popen([sys.executable, "-m", "skiller", "serve", "-w", str(root), "--domain", domain,
                               "--transport", "http"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    client = None
    try:
        ready = server.stderr.readline()
        assert "MCP server ready at" in ready, ready
        client = subprocess.Popen([sys.executable, "-c", CLIENT, ready.split()[-1]], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        assert client.stdout.readline().strip() == "connected"
        started = time.monotonic()
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)  # one Ctrl-C, no second one
        assert server.returncode == 130 and f"stopped serving domain:{domain}" in err
        assert time.monotonic() - started < 60
        assert "Traceback" not in err
    finally:
        _stop(server)
        if client is not None:
            _stop(client)
