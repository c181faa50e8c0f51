"""Fixtures for the evaluator tests: one Library environment shared by the session (every use resets it)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from skiller.servers import Environment, ModuleSource
from skiller.servers.sandbox import Sandbox, SandboxLimits
from tests.fixtures import library_db_bytes, library_module_source


@pytest.fixture(scope="session")
def library_env() -> Iterator[Environment]:
    sandbox = Sandbox(SandboxLimits(cpu_seconds=60, memory_mb=512))
    module = ModuleSource(server="Library", code=library_module_source())
    with Environment.start([module], library_db_bytes(), sandbox) as env:
        yield env


@pytest.fixture
def env(library_env: Environment) -> Environment:
    library_env.reset()
    return library_env
