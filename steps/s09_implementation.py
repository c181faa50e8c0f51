"""s09: implementation with test-driven self-correction: implementing -> testing <-> repairing -> implemented | failed."""
from __future__ import annotations

import json
from pathlib import Path

from skiller.events import Repaired, TestsRan
from skiller.contract.environment import ModuleSource
from skiller.servers.database import DatabaseSummary
from skiller.servers.task import EnvironmentBundle
from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepOutput, step
from skiller.steps.prompt_text import database_text, ranges_text
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s05_tool_lists import ToolList
from skiller.steps.s07_policy import Policy
from skiller.steps.worker_probe import probe

PROMPT = (Path(__file__).with_name("s09_implementation.txt")).read_text()
CONTRACT_FAILED = ("Runtime contract failure: the tests pass, but called once each through the worker that serves "
                   "the module (see the runtime contract above), these tools break it:\n")
CONTRACT_TESTS = (Path(__file__).with_name("s09_contract_tests.py.txt")).read_text()


class Implementation(Frozen):
    module: str  # impl.py: the tool functions (see contract/environment.py)
    tests: str  # test_impl.py: pytest file exercising every tool, policy violations included


class TestOutcome(Frozen):
    ok: bool
    passed: int
    failed: int
    output: str  # the tail of the test run, fed back to the coding model on failure


class S09StartInput(Frozen):
    domain: str


class S09StartOutput(StepOutput):
    pass


class WriteInput(Frozen):
    domain: str
    tool_list: ToolList
    policy: Policy
    database_summary: DatabaseSummary
    blueprint: Blueprint | None = None  # the records' value ranges (what a request may ask for)


class WriteOutput(StepOutput):
    implementation: Implementation


class TestInput(Frozen):
    domain: str
    tool_list: ToolList
    policy: Policy
    implementation: Implementation
    database: bytes
    database_summary: DatabaseSummary
    attempt: int = 0


class TestOutput(StepOutput):
    test_outcome: TestOutcome
    environment: EnvironmentBundle | None = None  # once tests pass: what tasks and `skiller serve` run


class RepairInput(Frozen):
    domain: str
    tool_list: ToolList
    policy: Policy
    database_summary: DatabaseSummary
    implementation: Implementation
    test_outcome: TestOutcome
    attempt: int = 0
    blueprint: Blueprint | None = None


class RepairOutput(StepOutput):
    implementation: Implementation | None = None


def _prompt(inputs: WriteInput | RepairInput, ctx: StepContext) -> str:
    return PROMPT.format(name=inputs.domain, clock=ctx.clock.isoformat(),
                         tools=json.dumps(inputs.tool_list.tools, indent=1), modes=json.dumps(inputs.tool_list.modes),
                         database=database_text(inputs.database_summary), policy=inputs.policy.markdown,
                         ranges=ranges_text(inputs.blueprint.relationships if inputs.blueprint else []))


@step("s09.start", machine="domain", source="tool_graph_built", triggers={"start_implementation": "implementing"})
async def start(inputs: S09StartInput, ctx: StepContext) -> S09StartOutput:
    return S09StartOutput()


@step("s09.write", machine="domain", source="implementing", triggers={"write_code": "testing"})
async def write(inputs: WriteInput, ctx: StepContext) -> WriteOutput:
    request = LLMRequest(purpose="s09.implementation", role="code", response_model=Implementation,
                         messages=(Message(role="user", content=_prompt(inputs, ctx)),),
                         context={"domain": inputs.domain, "clock": ctx.clock.isoformat(),
                                  "tool_list": inputs.tool_list.model_dump(mode="json")})
    implementation: Implementation = await ctx.llm.ask(request)
    return WriteOutput(implementation=implementation, payload={"attempt": 0})


def contract_report(broken: list[str], budget: int = 1400) -> str:
    """The contract failures, header first, short enough that the recorded output keeps all of it."""
    text, shown = CONTRACT_FAILED, 0
    for line in broken:
        if len(text) + len(line) > budget:
            break
        text, shown = text + f"- {line}\n", shown + 1
    return text + (f"- ... and {len(broken) - shown} more\n" if shown < len(broken) else "")


def contract_tests(tool_list: ToolList, clock: str) -> str:
    """Tests we add to the model's own: the module must implement exactly the listed tools."""
    return CONTRACT_TESTS.replace("__TOOLS__", json.dumps(tool_list.tools)).replace(
        "__MODES__", json.dumps(tool_list.modes)).replace("__CLOCK__", clock).replace("__SERVER__", tool_list.server)


@step("s09.test", machine="domain", source="testing", triggers={"pass_tests": "implemented", "fail_tests": "repairing"})
async def test(inputs: TestInput, ctx: StepContext) -> TestOutput:
    files = {"impl.py": inputs.implementation.module, "test_impl.py": inputs.implementation.tests,
             "test_contract.py": contract_tests(inputs.tool_list, ctx.clock.isoformat()), "db.sqlite": inputs.database}
    result = ctx.sandbox.run_pytest(files, ["test_contract.py", "test_impl.py"])
    ok = result.exit_code == 0 and result.failed == 0 and result.errors == 0 and result.passed > 0
    tail = (result.stdout + ("\n" + result.stderr if result.stderr else ""))[-4000:]
    if result.killed:
        tail = f"[sandbox: {result.killed}]\n" + tail
    passed, failed = result.passed, result.failed + result.errors
    if ok:  # its own tests pass; now the worker that serves it in every later step must too
        broken = probe(inputs.domain, inputs.implementation.module, inputs.tool_list.tools, inputs.database,
                       inputs.database_summary, ctx.clock, ctx.sandbox)
        if broken:
            ok, failed = False, len(broken)
            tail = contract_report(broken)
    outcome = TestOutcome(ok=ok, passed=passed, failed=failed, output=tail)
    ctx.record.append(TestsRan(stream=ctx.stream, step="s09", attempt=inputs.attempt, passed=outcome.passed,
                               failed=outcome.failed, ok=ok, output=tail[-1500:]))
    environment = EnvironmentBundle(
        name=inputs.domain, domains=[inputs.domain], policy=inputs.policy.markdown,
        modules=[ModuleSource(server=inputs.domain, code=inputs.implementation.module)]) if ok else None
    return TestOutput(test_outcome=outcome, environment=environment, trigger="pass_tests" if ok else "fail_tests",
                      payload={"attempt": inputs.attempt, "passed": outcome.passed, "failed": outcome.failed})


@step("s09.repair", machine="domain", source="repairing", triggers={"repair": "testing", "give_up": "failed"})
async def repair(inputs: RepairInput, ctx: StepContext) -> RepairOutput:
    if inputs.attempt >= ctx.config.steps.s09.max_repairs:
        return RepairOutput(trigger="give_up", payload={
            "attempt": inputs.attempt, "reason": f"tests still fail after {inputs.attempt} repairs",
            "last_output": inputs.test_outcome.output[-1500:]})
    request = LLMRequest(
        purpose="s09.repair", role="code", response_model=Implementation,
        messages=(Message(role="user", content=_prompt(inputs, ctx)),
                  Message(role="assistant", content=json.dumps(inputs.implementation.model_dump())),
                  Message(role="user", content="The module was rejected:\n" + inputs.test_outcome.output
                          + "\nReturn the corrected module and tests (both complete).")),
        context={"domain": inputs.domain, "clock": ctx.clock.isoformat(), "attempt": inputs.attempt + 1,
                 "tool_list": inputs.tool_list.model_dump(mode="json")})
    fixed: Implementation = await ctx.llm.ask(request)
    ctx.record.append(Repaired(stream=ctx.stream, step="s09", attempt=inputs.attempt + 1))
    return RepairOutput(implementation=fixed, trigger="repair", payload={"attempt": inputs.attempt + 1})
