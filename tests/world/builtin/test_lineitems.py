"""Line items (an order with several products): the catalog validates the spec, the compiled multi-item create and
partial cancel keep rows and amounts exact through the real sandboxed worker (a refused line writes nothing), the
generated rows are coherent, the generated tests catch a broken module, and tasks use the list argument."""
from __future__ import annotations

import datetime
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest

from skiller.contract.placeholders import Unresolved, resolve
from skiller.servers import Environment, ModuleSource
from skiller.servers.coherence import coherence_report
from skiller.steps.s04_blueprints import Blueprint
from skiller.steps.s05_tool_lists import openai_tool
from skiller.world.builtin.codegen import id_column, implementation_module, tool_parameters
from skiller.world.builtin.dbgen import database_invariants
from skiller.world.builtin.fusion import _Segment
from skiller.world.builtin.policygen import policy_markdown
from skiller.world.builtin.tasks import templates_for
from skiller.world.builtin.testgen import implementation_tests
from skiller.world.builtin.world import blueprint
from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.check import check_domain
from skiller.world.catalog.model import CatalogDomain
from skiller.llm.interface import LLMRequest, Message
from tests.world.builtin.test_dbgen import CLOCK, SANDBOX, built_db

LINED = ["Pharmacy", "ConcertHall"]
CLOCK_DATE = datetime.date.fromisoformat(CLOCK)


def _db(name: str) -> bytes:
    return built_db(name, seed=11)


def _rows(db: bytes, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite"
        path.write_bytes(db)
        conn = sqlite3.connect(path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def _mutated(change) -> list[str]:
    data = get_domain("Pharmacy").model_dump(mode="json")
    change(data)
    return check_domain(CatalogDomain.model_validate(data), load_catalog())


def _order(data: dict) -> dict:
    return next(r for r in data["records"] if r["name"] == "MedicineOrder")


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: _order(d)["lines"].update(target="Nope"),
     "Pharmacy: record MedicineOrder lines OrderLine: target 'Nope' is not an entity of the domain"),
    (lambda d: _order(d)["lines"].update(price="drug_name"),
     "Pharmacy: record MedicineOrder lines OrderLine: price 'drug_name' is not a numeric attribute of Medication"),
    (lambda d: _order(d)["lines"].update(amount="status"),
     "Pharmacy: record MedicineOrder lines OrderLine: amount 'status' is not a float attribute of MedicineOrder"),
    (lambda d: _order(d)["lines"].update(id_prefix="MED"),
     "Pharmacy: record MedicineOrder lines OrderLine: id_prefix 'MED' must be 2-5 capitals, unique in the domain"),
    (lambda d: _order(d)["lines"].update(name="Medication"),
     "Pharmacy: record MedicineOrder lines Medication: table medication is already a table of the domain"),
    (lambda d: d["rules"].append({"id": "PHA-99", "tool": "place_medicine_order", "kind": "date_window",
                                  "field": "collection_date", "min": 0, "max": 7, "statement": "Within 7 days."}),
     "Pharmacy: rule PHA-99: a date_window rule cannot guard create_items tool place_medicine_order"),
    (lambda d: d["rules"].append({"id": "PHA-99", "tool": "place_medicine_order", "kind": "value_range",
                                  "field": "collection_date", "max": 3, "statement": "At most 3."}),
     "Pharmacy: rule PHA-99: a value_range rule on place_medicine_order bounds each line's quantity"),
    (lambda d: next(t for t in d["tools"] if t["name"] == "remove_order_line").update(entity="PrescriptionFill"),
     "Pharmacy: tool remove_order_line: a cancel_item tool needs a record with lines, PrescriptionFill has none"),
])
def test_the_catalog_check_rejects_a_bad_line_item_spec_with_one_clear_line(change, problem: str) -> None:
    problems = _mutated(change)
    assert any(p.startswith(problem) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_both_lined_domains_pass_every_check_and_state_the_tools_in_their_policy() -> None:
    for name in LINED:
        domain = get_domain(name)
        assert check_domain(domain, load_catalog()) == [], name
        policy = policy_markdown(domain)
        assert "each element an object with" in policy and "One refused line refuses the whole call" in policy


def test_the_items_argument_is_an_array_of_typed_objects_in_the_implementation_and_the_tool_list() -> None:
    domain = get_domain("Pharmacy")
    tool = next(t for t in domain.tools if t.kind == "create_items")
    items = tool_parameters(domain, tool)["properties"]["items"]
    assert items["type"] == "array" and items["minItems"] == 1 and items["maxItems"] == 4
    assert items["items"] == {"type": "object", "additionalProperties": False, "required": ["medication_id", "quantity"],
                              "properties": {"medication_id": {"type": "string", "description": "Medication id, e.g. MED-0001"},
                                             "quantity": {"type": "integer", "minimum": 1,
                                                          "description": "How many of this medication"}}}
    request = LLMRequest(purpose="s04.blueprint", role="text", response_model=Blueprint,
                         messages=(Message(role="user", content="-"),), context={"domain": "Pharmacy"})
    bp = Blueprint.model_validate(blueprint(request))  # the s04 artifact, as the builtin writes it
    published = openai_tool(next(f for f in bp.functions if f.name == tool.name))["parameters"]
    assert published == tool_parameters(domain, tool)  # s09's contract test compares exactly these


def test_generated_rows_are_coherent_and_every_record_totals_its_live_lines() -> None:
    for name in LINED:
        domain = get_domain(name)
        db = _db(name)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "db.sqlite"
            path.write_bytes(db)
            report = coherence_report(path, database_invariants(domain), CLOCK)
        parents = "medicine_order" if name == "Pharmacy" else "merch_order"
        lines = "order_line" if name == "Pharmacy" else "merch_line"
        key = f"{parents}_id"
        count = _rows(db, f"SELECT COUNT(*) FROM {parents}")[0][0]
        assert report.ok and report.checked["line_total"] == count >= 40, report.problems()
        assert report.violations.get("line_total", 0) == 0 and report.violations.get("amount", 0) == 0
        sizes = [n for (n,) in _rows(db, f"SELECT COUNT(*) FROM {lines} GROUP BY {key}")]
        assert len(sizes) == count and min(sizes) >= 1 and max(sizes) <= (4 if name == "Pharmacy" else 3)
        assert len(set(sizes)) >= 2  # 1 to max lines, not a constant
        stock = _rows(db, f"SELECT COUNT(*) FROM {lines} l JOIN {'medication' if name == 'Pharmacy' else 'merch_item'} t "
                          f"USING ({'medication_id' if name == 'Pharmacy' else 'merch_item_id'}) WHERE t.in_stock = 0")
        assert stock == [(0,)]  # lines are for items the order rules admit
        assert _rows(db, f"SELECT COUNT(*) FROM {lines} WHERE line_status = 'cancelled'")[0][0] >= 1


def test_the_generated_tests_pass_and_catch_a_module_that_forgets_to_recompute_the_total() -> None:
    for name in LINED:
        source = implementation_module(get_domain(name), CLOCK)
        tests = implementation_tests(get_domain(name), CLOCK)
        result = SANDBOX.run_pytest({"impl.py": source, "test_impl.py": tests, "db.sqlite": _db(name)}, "test_impl.py")
        assert result.ok and result.failed == 0, result.stdout[-3000:]
    source = implementation_module(get_domain("Pharmacy"), CLOCK)
    recompute = '    _update(db, "medicine_order", "medicine_order_id", row["medicine_order_id"], {"total_amount": '
    assert source.count(recompute) == 1
    start = source.index(recompute)
    mutant = source[:start] + source[source.index("\n", start) + 1:]
    tests = implementation_tests(get_domain("Pharmacy"), CLOCK)
    result = SANDBOX.run_pytest({"impl.py": mutant, "test_impl.py": tests, "db.sqlite": _db("Pharmacy")}, "test_impl.py")
    assert result.failed >= 1 and "test_remove_order_line_cancels_one_line" in result.stdout, result.stdout[-3000:]


def test_multi_item_create_and_partial_cancel_through_the_sandboxed_worker() -> None:
    domain = get_domain("Pharmacy")
    db = _db("Pharmacy")
    ok_meds = _rows(db, "SELECT medication_id, unit_price FROM medication WHERE in_stock = 1 ORDER BY medication_id LIMIT 3")
    out_of_stock = _rows(db, "SELECT medication_id FROM medication WHERE in_stock = 0 ORDER BY medication_id")[0][0]
    person = _rows(db, "SELECT person_id FROM customer ORDER BY person_id")[0][0]
    branch = _rows(db, "SELECT pharmacy_branch_id FROM pharmacy_branch ORDER BY 1")[0][0]
    args = {"person_id": person, "pharmacy_branch_id": branch, "collection_date": "2026-03-05",
            "items": [{"medication_id": ok_meds[0][0], "quantity": 2}, {"medication_id": ok_meds[1][0], "quantity": 3}]}
    module = ModuleSource(server="Pharmacy", code=implementation_module(domain, CLOCK))
    with Environment.start([module], db, SANDBOX) as env:
        start = env.state_hash()
        refused = [
            ({**args, "items": [args["items"][0], {"medication_id": out_of_stock, "quantity": 1}]}, "[PHA-11]"),
            ({**args, "items": [args["items"][0], {"medication_id": ok_meds[2][0], "quantity": 4}]}, "[PHA-12]"),
            ({**args, "items": [args["items"][0], {"medication_id": "MED-9999", "quantity": 1}]}, "MED-9999 not found"),
            ({**args, "items": [args["items"][0], args["items"][0]]}, "listed twice"),
            ({**args, "items": []}, "items"),
            ({**args, "items": [{"medication_id": ok_meds[0][0], "quantity": 0}]}, "quantity"),
        ]
        for bad, needle in refused:  # all or nothing: the good first line is not written either
            result = env.call("place_medicine_order", bad)
            assert not result.ok and needle in (result.error or ""), (needle, result)
            assert env.state_hash() == start
        made = env.call("place_medicine_order", args)
        assert made.ok, made.error
        order = made.value
        expected = [round(round(ok_meds[0][1], 2) * 2, 2), round(round(ok_meds[1][1], 2) * 3, 2)]
        assert [line["line_amount"] for line in order["items"]] == expected
        assert [line["line_status"] for line in order["items"]] == ["active", "active"]
        assert order["total_amount"] == round(sum(expected), 2) and order["status"] == "placed"
        with sqlite3.connect(env.db_path) as conn:
            stored = conn.execute("SELECT medication_id, quantity, unit_price, line_amount FROM order_line WHERE "
                                  "medicine_order_id = ? ORDER BY order_line_id", (order["medicine_order_id"],)).fetchall()
        assert stored == [(ok_meds[0][0], 2, round(ok_meds[0][1], 2), expected[0]),
                          (ok_meds[1][0], 3, round(ok_meds[1][1], 2), expected[1])]
        assert env.call("get_medicine_order", {"medicine_order_id": order["medicine_order_id"]}).value == order

        dropped = env.call("remove_order_line", {"order_line_id": order["items"][0]["order_line_id"]})
        assert dropped.ok, dropped.error
        assert dropped.value["total_amount"] == expected[1]
        assert [line["line_status"] for line in dropped.value["items"]] == ["cancelled", "active"]
        before = env.state_hash()
        last = env.call("remove_order_line", {"order_line_id": order["items"][1]["order_line_id"]})
        assert not last.ok and "only active line" in (last.error or "") and env.state_hash() == before
        packed = _rows(db, "SELECT l.order_line_id FROM order_line l JOIN medicine_order r USING (medicine_order_id) "
                           "WHERE r.status = 'packed' AND l.line_status = 'active' ORDER BY 1")[0][0]
        late = env.call("remove_order_line", {"order_line_id": packed})
        assert not late.ok and "[PHA-13]" in (late.error or "") and env.state_hash() == before


def test_templates_pass_the_item_list_cancel_a_line_and_refuse_each_line_rule() -> None:
    for name, rules in (("Pharmacy", {"PHA-11", "PHA-12", "PHA-13"}), ("ConcertHall", {"CHP-6", "CHP-7", "CHP-11"})):
        domain = get_domain(name)
        create = next(t.name for t in domain.tools if t.kind == "create_items")
        cancel = next(t.name for t in domain.tools if t.kind == "cancel_item")
        found = templates_for(domain, 400, seed=3)
        orders = [t for t in found if t["kind"] == "write" and t["trajectory"][-1]["tool"] == create]
        assert sorted(len(t["trajectory"][-1]["arguments"]["items"]) for t in orders) == [2, 3]
        for t in orders:
            assert all(set(i) == {next(iter(i)), "quantity"} for i in t["trajectory"][-1]["arguments"]["items"])
            assert any(c.endswith("_amount>") or c.endswith("amount_due>") for c in t["communicate"])
        cancels = [t for t in found if t["kind"] == "write" and t["trajectory"][-1]["tool"] == cancel]
        assert len(cancels) == 1 and cancels[0]["communicate"]  # the new total, a computed figure
        refused = {t["violated_rule"] for t in found if t["kind"] == "refusal" and t["forbidden"]["tool"] in (create, cancel)}
        assert refused == rules


def test_a_fused_template_renames_the_placeholders_inside_the_item_list() -> None:
    domain = get_domain("Pharmacy")
    order = next(t for t in templates_for(domain, 400, seed=3)
                 if t["kind"] == "write" and t["trajectory"][-1]["tool"] == "place_medicine_order")
    segment = _Segment(domain, order, 1, 2, ["medication", "medicine_order", "order_line", "pharmacy_branch"])
    items = segment.calls[-1]["arguments"]["items"]
    assert [i["medication_id"] for i in items] == [f"<s1_item{k + 1}.medication_id>" for k in range(len(items))]
    assert all(isinstance(i["quantity"], int) for i in items)
    assert any("pharmacy_medication" in s["sql"] for s in segment.selectors)  # tables take the member's namespace


def test_a_cancelled_line_is_named_by_its_item_and_read_off_the_order_never_told_by_id() -> None:
    for name in LINED:
        domain = get_domain(name)
        cancel = next(t for t in domain.tools if t.kind == "cancel_item")
        spec = next(r.lines for r in domain.records if r.lines is not None)
        line_key, look = id_column(spec.name), next(t.name for t in domain.tools if t.kind == "get" and t.entity == spec.target)
        found = [t for t in templates_for(domain, 400, seed=3)
                 if cancel.name in [c["tool"] for c in t["trajectory"]] + [(t["forbidden"] or {}).get("tool")]]
        assert {t["kind"] for t in found} == {"write", "refusal"}, name
        for t in found:
            calls = t["trajectory"] + ([t["forbidden"]] if t["forbidden"] else [])
            line = next(c for c in calls if c["tool"] == cancel.name)["arguments"][line_key]
            # the customer knows the item (its id, as ordered), never the line's id
            assert not any("line" in label or line_key in value for label, value in t["known_info"].items()), t["known_info"]
            item = [v for k, v in t["known_info"].items() if " to remove" in k]
            assert item == [f"<line.{id_column(spec.target)}>"], t["known_info"]
            read = int(line[len("<out"):line.index(".")]) - 1  # the line id is read off the order the agent got
            assert line == f"<out{read + 1}.items.0.{line_key}>" and t["trajectory"][read]["tool"].startswith("get_")
            if t["kind"] == "write":  # the item the customer names is looked up before its line goes
                assert [c["tool"] for c in t["trajectory"]][read + 1:] == [look, cancel.name]


def test_an_output_placeholder_walks_into_a_records_lines_by_index() -> None:
    outputs = [{"medicine_order_id": "MOR-1", "items": [{"order_line_id": "OLN-1"}, {"order_line_id": "OLN-2"}]}]
    assert resolve("<out1.items.0.order_line_id>", {}, outputs, CLOCK_DATE) == "OLN-1"
    assert resolve("<out1.items.1.order_line_id>", {}, outputs, CLOCK_DATE) == "OLN-2"
    assert resolve("<out1.medicine_order_id>", {}, outputs, CLOCK_DATE) == "MOR-1"
    with pytest.raises(Unresolved, match="has no field items.2.order_line_id"):
        resolve("<out1.items.2.order_line_id>", {}, outputs, CLOCK_DATE)
