"""skiller.world.builtin.codegen/testgen: compiled implementations pass their generated tests in the sandbox."""
from __future__ import annotations

import ast
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from skiller.servers.standalone import standalone_server
from mcp import Client, StdioServerParameters

from skiller.world.catalog import get_domain
from skiller.world.catalog.model import CatalogDomain
from skiller.world.builtin.codegen import implementation_module
from skiller.world.builtin.testgen import implementation_tests
from tests.world.builtin.test_dbgen import CLOCK, DOMAINS, SANDBOX, built_db

MODULE_IMPORTS = {"__future__", "datetime", "math", "sqlite3", "typing"}


def run_generated_tests(domain: CatalogDomain, impl: str | None = None) -> Any:
    files = {
        "impl.py": impl if impl is not None else implementation_module(domain, CLOCK),
        "test_impl.py": implementation_tests(domain, CLOCK),
        "db.sqlite": built_db(domain.name),
    }
    return SANDBOX.run_pytest(files, "test_impl.py")


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_generated_tests_pass_in_the_sandbox(domain: CatalogDomain) -> None:
    result = run_generated_tests(domain)
    assert result.ok and result.failed == 0 and result.errors == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.passed >= 2 * len(domain.tools)


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name)
def test_module_is_deterministic_stdlib_only_and_enforces_every_rule(domain: CatalogDomain) -> None:
    source = implementation_module(domain, CLOCK)
    assert source == implementation_module(domain, CLOCK)
    tree = ast.parse(source)
    top = set()
    for node in tree.body:  # the module needs the stdlib only; MCP serving is added at export
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add((node.module or "").split(".")[0])
    assert top <= MODULE_IMPORTS, top - MODULE_IMPORTS
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {t.name for t in domain.tools} | {"_t"} <= functions
    for rule in domain.rules:  # once, or once per tier of a tier limit (a refund schedule's tiers are not limits)
        assert source.count(f'_violation("{rule.id}", ') == (max(1, len(rule.limits)) if rule.kind == "tier_limit" else 1), rule.id
    tests = implementation_tests(domain, CLOCK)
    assert tests == implementation_tests(domain, CLOCK)
    for rule in domain.rules:
        name = f"_enforces_{rule.id.replace('-', '_')}"
        assert f"{name}(db)" in tests or (rule.limits and f"{name}_for_" in tests), f"no test rejects a {rule.id} violation"


def test_removing_one_rule_check_makes_the_generated_tests_fail() -> None:
    domain = get_domain("Hospital")
    source = implementation_module(domain, CLOCK)
    start = source.index("    # HOS-4: ")
    end = source.index("\n", source.index('_violation("HOS-4"', start)) + 1
    mutant = source[:start] + source[end:]
    compile(mutant, "impl.py", "exec")
    result = run_generated_tests(domain, mutant)
    assert result.failed >= 1 and "test_cancel_appointment_enforces_HOS_4" in result.stdout, result.stdout[-3000:]


def test_a_target_held_alone_is_taken_and_freed_with_its_record_and_the_tests_notice_when_not() -> None:
    domain = get_domain("PetBoarding")  # a suite holds one pet at a time: checked in, it is not available
    source = implementation_module(domain, CLOCK)
    assert source.count('{"available": False})') == 1 and source.count('{"available": True})') == 1
    assert run_generated_tests(domain).failed == 0
    mutant = "\n".join(line for line in source.split("\n") if '{"available": ' not in line)
    result = run_generated_tests(domain, mutant)
    failed = {name for name in ("check_in_pet", "check_out_pet") if f"test_{name}_is_permitted" in result.stdout}
    assert result.failed >= 2 and len(failed) == 2, result.stdout[-3000:]


def test_exported_module_serves_its_tools_over_mcp_stdio(tmp_path: Path) -> None:
    domain = get_domain("Hospital")
    server = tmp_path / "Hospital.py"
    server.write_text(standalone_server(implementation_module(domain, CLOCK)))
    db_path = tmp_path / "db.sqlite"
    db_path.write_bytes(built_db("Hospital"))
    target, owner = sqlite3.connect(db_path).execute(
        "SELECT appointment_id, person_id FROM appointment WHERE status = 'scheduled' AND scheduled_date > ? "
        "ORDER BY appointment_id LIMIT 1", (CLOCK,)).fetchone()
    params = StdioServerParameters(command=sys.executable, args=[str(server), "--db", str(db_path)], cwd=str(tmp_path))

    async def run() -> None:
        async with Client(params) as client:
            listed = await client.list_tools()
            assert [t.name for t in listed.tools] == [t.name for t in domain.tools]
            assert {t.name: t.annotations.read_only_hint for t in listed.tools}["cancel_appointment"] is False
            got = await client.call_tool("get_appointment", {"appointment_id": target})
            assert not got.is_error and json.loads(got.content[0].text)["status"] == "scheduled"
            missing = await client.call_tool("get_doctor", {"doctor_id": "DOC-9999"})
            assert missing.is_error and missing.content[0].text == "Doctor DOC-9999 not found"
            done = await client.call_tool("cancel_appointment", {"appointment_id": target, "person_id": owner})
            assert not done.is_error and done.structured_content["status"] == "cancelled"
            again = await client.call_tool("cancel_appointment", {"appointment_id": target, "person_id": owner})
            assert again.is_error and "in status cancelled" in again.content[0].text

    anyio.run(run)
    status = sqlite3.connect(db_path).execute(
        "SELECT status FROM appointment WHERE appointment_id = ?", (target,)).fetchone()[0]
    assert status == "cancelled"
