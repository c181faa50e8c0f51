"""skiller.servers.mcp_server: the official MCP client sees exactly the environment's tools, over stdio and HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from skiller.servers import build_mcp_server
from tests.fixtures import LIBRARY_PATH, write_library_db

REPO = Path(__file__).resolve().parents[2]


def _value(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


async def _exercise(client: Client, expected_tools: list[dict[str, Any]]) -> None:
    """List, read, write, read again, then a bad call that must change nothing."""
    listed = await client.list_tools()
    assert [{"name": t.name, "description": t.description, "parameters": t.input_schema} for t in listed.tools] \
        == expected_tools
    read_only = {t.name: t.annotations.read_only_hint for t in listed.tools}
    assert read_only == {"get_member": True, "search_books": True, "borrow_book": False, "return_book": False}

    assert _value(await client.call_tool("get_member", {"person_id": "P-001"}))["active_loans"] == 1
    loan = _value(await client.call_tool("borrow_book", {"person_id": "P-001", "book_id": "BK-005"}))
    assert loan["loan_id"] == "LN-0005"
    assert _value(await client.call_tool("get_member", {"person_id": "P-001"}))["active_loans"] == 2
    books = _value(await client.call_tool("search_books", {"query": "Knuth"}))
    assert books[0]["copies_available"] == 2

    bad = await client.call_tool("borrow_book", {"person_id": "P-003", "book_id": 5})
    assert bad.is_error and "parameter 'book_id' must be string" in bad.content[0].text
    policy = await client.call_tool("borrow_book", {"person_id": "P-001", "book_id": "BK-003"})
    assert policy.is_error and policy.content[0].text.startswith("Policy violation [LIB-1]")
    assert _value(await client.call_tool("search_books", {"query": "Knuth"}))[0]["copies_available"] == 2
    assert _value(await client.call_tool("get_member", {"person_id": "P-001"}))["active_loans"] == 2


def _expected(env_tools: list[Any]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in env_tools]


def test_in_process_client_lists_and_calls_the_environment_tools(env):
    async def run() -> None:
        async with Client(build_mcp_server(env, "Library")) as client:
            await _exercise(client, _expected(env.tools))

    anyio.run(run)
    assert env.call("get_member", {"person_id": "P-001"}).value["active_loans"] == 2


def _server_args(db: Path, *extra: str) -> list[str]:
    return ["-m", "skiller.servers.mcp_server", "--module", str(LIBRARY_PATH), "--db", str(db), "--name", "Library", *extra]


def test_stdio_server_subprocess_serves_the_library(env, tmp_path):
    db = write_library_db(tmp_path / "library.db")
    params = StdioServerParameters(command=sys.executable, args=_server_args(db), cwd=str(REPO))

    async def run() -> None:
        async with Client(params) as client:
            assert client.server_info.name == "Library"
            await _exercise(client, _expected(env.tools))

    anyio.run(run)
    assert env.call("get_member", {"person_id": "P-001"}).value["active_loans"] == 1  # separate state


@pytest.fixture
def http_server(tmp_path):
    db = write_library_db(tmp_path / "library.db")
    proc = subprocess.Popen([sys.executable, *_server_args(db, "--transport", "http", "--port", "0")],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stderr:  # blocks until the server has bound its socket and says where
            if line.startswith("MCP server ready at "):
                url = line.removeprefix("MCP server ready at ").strip()
                break
        assert url is not None, f"server exited with {proc.wait()}"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()


def test_streamable_http_server_serves_the_library(env, http_server):
    assert http_server.startswith("http://127.0.0.1:")

    async def run() -> None:
        async with Client(http_server) as client:
            await _exercise(client, _expected(env.tools))

    anyio.run(run)
