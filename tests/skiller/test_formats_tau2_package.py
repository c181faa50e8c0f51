"""A τ²-bench package over an awkward database: names Python cannot use as-is, composite and missing keys,
values SQLite kept against their column type. The state survives db.json, pydantic and back, exactly."""
from __future__ import annotations

import json
import shutil
import sqlite3

from skiller.contract.environment import ModuleSource, ToolSpec
from skiller.servers.database import state_hash
from skiller.servers.task import EnvironmentBundle
from skiller.formats.tau2 import package_files
from skiller.servers.sandbox import Sandbox, SandboxLimits

SCHEMA = """
CREATE TABLE person (person_id TEXT PRIMARY KEY NOT NULL, first_name TEXT);
CREATE TABLE "load" (load_id TEXT PRIMARY KEY NOT NULL, "class" TEXT, "copy" INTEGER, "a b" REAL,
                     model_kind TEXT, person_id TEXT REFERENCES person(person_id));
CREATE TABLE pair (left_id TEXT NOT NULL, right_id INTEGER NOT NULL, note TEXT, PRIMARY KEY (left_id, right_id));
CREATE TABLE loose (what TEXT, amount NUMERIC);
CREATE INDEX load_person ON "load"(person_id);
INSERT INTO person VALUES ('P-1', 'Ada'), ('P-2', 'Bo');
INSERT INTO "load" VALUES ('L-2', NULL, 3, 2, 'x', 'P-1'), ('L-1', 'first', 'many', 0.5, NULL, 'P-2');
INSERT INTO pair VALUES ('a', 1, NULL), ('a', 2, 'two');
INSERT INTO loose VALUES ('w', 1.5), (NULL, 7);
"""

IMPLEMENTATION = '''
SERVER = "Odd"
CLOCK = "2026-03-02"
NAMESPACE = ""


def _t(name):
    return name if name == "person" else NAMESPACE + name


class ToolError(Exception):
    pass


def count_rows(db, table):
    return {"rows": db.execute(f'SELECT COUNT(*) FROM "{_t(table)}"').fetchone()[0]}


def add_pair(db, left_id, right_id, note=None):
    if db.execute(f"SELECT 1 FROM {_t('pair')} WHERE left_id = ? AND right_id = ?", (left_id, right_id)).fetchone():
        raise ToolError(f"pair {left_id}/{right_id} exists")
    db.execute(f"INSERT INTO {_t('pair')} VALUES (?, ?, ?)", (left_id, right_id, note))
    return {"left_id": left_id, "right_id": right_id, "note": note}


TOOLS = {
    "count_rows": {"fn": count_rows, "mode": "read", "description": "Count a table's rows.", "parameters": {
        "type": "object", "properties": {"table": {"type": "string", "enum": ["load", "pair", "loose", "person"]}},
        "required": ["table"]}},
    "add_pair": {"fn": add_pair, "mode": "write", "description": "Add a pair.", "parameters": {
        "type": "object", "properties": {"left_id": {"type": "string"}, "right_id": {"type": "integer"},
                                         "note": {"type": "string"}}, "required": ["left_id", "right_id"]}},
}
'''

DRIVER = r'''
import json, os, sys
sys.path.insert(0, os.getcwd())
from odd.data_model import OddDB, get_db
from odd.tools import OddTools
tools = OddTools(get_db())
tools.to_sqlite("initial.sqlite")
out = {"count": json.loads(tools.use_tool("count_rows", table="loose")),
       "added": tools.use_tool("add_pair", left_id="b", right_id=3, note='say """hi"""')}
try:
    tools.use_tool("add_pair", left_id="b", right_id=3)
except Exception as exc:
    out["again"] = f"{type(exc).__name__}: {exc}"
dumped = json.loads(json.dumps(tools.db.model_dump(by_alias=True)))
out["pair_keys"] = list(dumped["pair"])
OddTools(OddDB.model_validate(json.loads(json.dumps(tools.db.model_dump())))).to_sqlite("after.sqlite")
json.dump(out, open("out.json", "w"))
'''


def test_awkward_names_keys_and_types_round_trip_through_the_package(tmp_path):
    original = tmp_path / "odd.sqlite"
    conn = sqlite3.connect(original)
    conn.executescript(SCHEMA)
    conn.close()
    specs = [ToolSpec(name=n, description=t, mode=m, parameters=p) for n, t, m, p in [
        ("count_rows", "Count a table's rows.", "read", {"type": "object", "properties": {
            "table": {"type": "string", "enum": ["load", "pair", "loose", "person"]}}, "required": ["table"]}),
        ("add_pair", 'Add a pair.\nQuotes """ and \\ survive.', "write", {"type": "object", "properties": {
            "left_id": {"type": "string"}, "right_id": {"type": "integer"}, "note": {"type": "string"}},
            "required": ["left_id", "right_id"]})]]
    bundle = EnvironmentBundle(name="Odd", domains=["Odd"], policy="# Odd\n",
                               modules=[ModuleSource(server="Odd", code=IMPLEMENTATION)])
    domain, files, _ = package_files(bundle, specs, original.read_bytes(), [])
    assert domain == "odd"
    model = files["data_model.py"].decode()
    assert "class_: Optional[str] = Field(default=None, alias='class'" in model
    assert "copy_: Optional[Union[int, str]]" in model and "load_: Dict[str, Load]" in model
    db = json.loads(files["db.json"])
    assert list(db["pair"]) == ["a|1", "a|2"] and list(db["loose"]) == ["0", "1"] and list(db["load"]) == ["L-2", "L-1"]

    result = Sandbox(SandboxLimits(cpu_seconds=60, wall_seconds=300)).run_python(
        {**{f"odd/{k}": v for k, v in files.items()}, "driver.py": DRIVER}, "driver.py",
        collect=["out.json", "initial.sqlite", "after.sqlite"])
    assert result.ok, result.stderr[-3000:]
    out = json.loads(result.outputs["out.json"])
    assert out["count"] == {"rows": 2}
    assert json.loads(out["added"]) == {"left_id": "b", "right_id": 3, "note": 'say """hi"""'}
    assert out["again"] == "ToolCallError: pair b/3 exists"
    assert out["pair_keys"] == ["a|1", "a|2", "b|3"]
    (tmp_path / "initial.sqlite").write_bytes(result.outputs["initial.sqlite"])
    assert state_hash(tmp_path / "initial.sqlite") == state_hash(original)
    expected = tmp_path / "expected.sqlite"
    shutil.copy(original, expected)
    conn = sqlite3.connect(expected)
    conn.execute("INSERT INTO pair VALUES ('b', 3, 'say \"\"\"hi\"\"\"')")
    conn.commit()
    conn.close()
    (tmp_path / "after.sqlite").write_bytes(result.outputs["after.sqlite"])
    assert state_hash(tmp_path / "after.sqlite") == state_hash(expected) != state_hash(original)
