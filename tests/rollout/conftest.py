"""Fixtures for rollouts: a sandbox and a running Library environment shared by a test module."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from skiller.servers import Environment, ModuleSource
from skiller.servers.sandbox import Sandbox, SandboxLimits
from tests.fixtures import library_db_bytes, library_module_source


@pytest.fixture(scope="session")
def rollout_sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(cpu_seconds=60, memory_mb=512))


def start_library(sandbox: Sandbox, extra_code: str = "") -> Environment:
    module = ModuleSource(server="Library", code=library_module_source() + extra_code)
    return Environment.start([module], library_db_bytes(), sandbox)


@pytest.fixture(scope="module")
def env(rollout_sandbox: Sandbox) -> Iterator[Environment]:
    with start_library(rollout_sandbox) as running:
        yield running
