"""Runs inside the sandbox next to one exported τ²-bench package (τ²-bench not installed).

Reads spec.json {"domain", "tasks": [{"id", "actions": [{"name", "arguments"}]}], "bad_call"}; writes
results.json, initial.sqlite and final_<task id>.sqlite for the test to hash with Skiller's own state hash.
"""
import importlib
import importlib.util
import inspect
import json
import os
import sys
import threading

sys.path.insert(0, os.getcwd())
spec = json.load(open("spec.json", encoding="utf-8"))
domain = spec["domain"]
results = {"tau2_importable": importlib.util.find_spec("tau2") is not None}
package = importlib.import_module(domain)
data_model = importlib.import_module(domain + ".data_model")
tools_module = importlib.import_module(domain + ".tools")
compat = importlib.import_module(domain + "._tau2_compat")
Toolkit = next(v for v in vars(tools_module).values()
               if isinstance(v, type) and issubclass(v, compat.ToolKitBase) and v is not compat.ToolKitBase)
Database = next(v for v in vars(data_model).values()
                if isinstance(v, type) and issubclass(v, compat.DB) and v is not compat.DB)


def fresh():
    return Toolkit(data_model.get_db())


def through_json(db):
    """What τ²-bench's DB.dump then DB.load would give back."""
    return Database.model_validate(json.loads(json.dumps(db.model_dump())))


signatures = {}
for name, method in fresh().tools.items():
    params = inspect.signature(method).parameters.values()
    signatures[name] = {"type": method.__tool_type__.value, "mutates": method.__mutates_state__,
                        "doc": method.__doc__,
                        "params": [[p.name, str(p.annotation), p.default is inspect.Parameter.empty] for p in params]}
results["signatures"] = signatures
fresh().to_sqlite("initial.sqlite")
results["tasks"] = {}
for task in spec["tasks"]:
    runs = []
    for _ in range(2):  # a second run on a fresh toolkit: replay must give the same text and state
        toolkit = fresh()
        outputs = []
        for action in task["actions"]:
            try:
                outputs.append({"ok": True, "text": toolkit.use_tool(action["name"], **action["arguments"])})
            except Exception as exc:  # noqa: BLE001 - recorded for the test to report
                outputs.append({"ok": False, "text": f"{type(exc).__name__}: {exc}"})
        runs.append({"outputs": outputs, "hash": toolkit.get_db_hash(), "db": toolkit.db})
    Toolkit(through_json(runs[0]["db"])).to_sqlite(f"final_{task['id']}.sqlite")
    results["tasks"][task["id"]] = {"outputs": runs[0]["outputs"], "replayed": runs[1]["outputs"],
                                    "hash": runs[0]["hash"], "replayed_hash": runs[1]["hash"],
                                    "initial_hash": fresh().get_db_hash()}

# τ²-bench may build an environment in one thread and call its tools from another
first = spec["tasks"][0]["actions"][0]
toolkit, seen = fresh(), {}
worker = threading.Thread(target=lambda: seen.update(text=toolkit.use_tool(first["name"], **first["arguments"])))
worker.start()
worker.join()
results["other_thread"] = seen.get("text")

toolkit = fresh()
before = toolkit.get_db_hash()
try:
    toolkit._run(spec["bad_call"], {})
    results["bad_call"] = "accepted"
except Exception as exc:  # noqa: BLE001
    results["bad_call"] = f"{type(exc).__name__}: {exc}"
results["bad_call_changed_state"] = toolkit.get_db_hash() != before
results["registered"] = package.DOMAIN
json.dump(results, open("results.json", "w", encoding="utf-8"), ensure_ascii=False)
