"""s09 also runs the generated module through the real worker: code that passes its own tests but breaks
the runtime contract goes back to repair with the contract failure named."""
from __future__ import annotations

import json

from skiller.store import Store
from tests.conftest import cli, small
from tests.fakes import MessagesServer
from tests.statemachine.test_anthropic_pipeline import FakeModel, anthropic_workspace, key  # noqa: F401

# Harmless on the plain connection of the module's own tests; refused by the worker's authorizer.
PRAGMA_WRITE = 'def _require(db, table, key, value, what):\n    db.execute("PRAGMA foreign_keys = ON")\n    return _require_checked(db, table, key, value, what)\n\n\ndef _require_checked('


class ContractBreakingModel(FakeModel):
    """Its first implementation sets a pragma inside every lookup; its repair is sound."""

    def __init__(self) -> None:
        super().__init__()
        self.implementation_requests: list[dict] = []

    def __call__(self, body: dict) -> dict:
        reply = super().__call__(body)
        if body["tools"][0]["input_schema"]["title"] != "Implementation":
            return reply
        self.implementation_requests.append(body)
        if len(body["messages"]) == 1:
            block = reply["content"][-1]
            module = block["input"]["module"]
            assert "def _require(" in module
            block["input"] = block["input"] | {"module": module.replace("def _require(", PRAGMA_WRITE, 1)}
        return reply


def test_code_that_passes_its_tests_but_breaks_the_worker_contract_is_repaired_with_the_failure_named(tmp_path, key):
    model = ContractBreakingModel()
    with MessagesServer(responder=model) as server:
        root = anthropic_workspace(tmp_path / "ws", server.base_url)
        code = cli("run", "-w", str(root), *small(), "--set", "steps.s01.num_domains=1", "--set", "steps.s01.min_sectors=1",
                   "--set", "scheduler.stop_after=implemented")
    assert code == 0
    store = Store(root / "skiller.db")
    [domain] = store.projection().of_kind("domain")
    assert domain.state == "implemented"
    runs = [p for r in store.rows(stream=domain.stream) if r.type == "TestsRan" and (p := json.loads(r.payload))["step"] == "s09"]
    assert [r["ok"] for r in runs] == [False, True]
    first = runs[0]
    assert first["passed"] > 0  # its own tests (and the contract tests) passed
    assert "Runtime contract failure" in first["output"] and "not authorized" in first["output"]
    path = [r.dest for r in store.rows(stream=domain.stream) if r.type == "Transitioned"]
    assert path[-4:] == ["testing", "repairing", "testing", "implemented"]
    repair = model.implementation_requests[1]["messages"][-1]["content"]
    repair = repair if isinstance(repair, str) else json.dumps(repair)
    assert "Runtime contract failure" in repair and "not authorized" in repair
    assert "internal error in get_" in repair  # names the tool that broke it
