"""Sandboxed tool host: loads implementation modules and answers JSON-line requests (stdlib only, runs with -I)."""
# This file is copied into the sandbox's temp dir and run as `python -I worker.py`; it must not import
# anything outside the standard library. Protocol (one JSON object per line each way):
#   {"op": "load", "modules": [{"file", "namespace", "prefix"}], "db": "db.sqlite"} -> value: tool table
#   {"op": "call", "name": str, "arguments": {...}}                                  -> value: tool return
#       with "settle": true, first what {"op": "reset"} does (the parent restored the file since the last
#       call); if that fails the reply is {"ok": false, "error": ..., "settled": false} and nothing ran
#   {"op": "reset", "db": "fresh.sqlite"}   (moved over the current DB file, then reopened)
#   {"op": "reset"}   (the parent restored the DB file itself: end any transaction, drop temporary objects)
#   {"op": "close"}
# Every reply is {"ok": true, "value": ...} or {"ok": false, "error": "one line"}.
from __future__ import annotations

import collections
import importlib.util
import io
import json
import os
import re
import sqlite3
import sys

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SAVEPOINT = "skiller_call_savepoint"
MAX_VALUE_CHARS = 4_000_000
MAX_ERROR_CHARS = 500
ALLOWED_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                   "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check"}


class ArgumentError(Exception):
    """Arguments that do not match the tool's JSON Schema."""


def one_line(text: object) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


class _Sink(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


class GuardedConnection(sqlite3.Connection):
    """The handle tools receive: commit/rollback/close act on the call's savepoint, never past it."""

    runtime = False  # True while the host itself runs transaction statements

    def commit(self) -> None:  # the host commits after a successful call
        pass

    def rollback(self) -> None:  # undo this call's writes so far; the call itself goes on
        self._runtime_exec(f"ROLLBACK TO {SAVEPOINT}")

    def close(self) -> None:
        pass

    def __enter__(self) -> "GuardedConnection":
        return self

    def __exit__(self, *exc_info: object) -> bool:  # `with db:` in a tool: the host owns the transaction
        return False

    def _runtime_exec(self, sql: str) -> None:
        self.runtime = True
        try:
            # The marker keeps these out of reach of a tool running the same text: the authorizer only
            # sees statements when they are prepared, and prepared statements are cached by their text.
            self.execute(sql + " -- skiller runtime")
        finally:
            self.runtime = False

    def really_close(self) -> None:
        super().close()


def _authorize(conn: GuardedConnection):
    def check(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
        if conn.runtime:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_TRANSACTION or action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_SAVEPOINT and (arg2 or "").lower() == SAVEPOINT:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and (arg1 or "").lower() not in ALLOWED_PRAGMAS:
            return sqlite3.SQLITE_DENY  # setting pragmas (foreign_keys=OFF, writable_schema...) is not a tool's job
        return sqlite3.SQLITE_OK
    return check


def open_db(path: str) -> GuardedConnection:
    conn = sqlite3.connect(path, isolation_level=None, factory=GuardedConnection)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=OFF")  # a scratch copy: durability across OS crashes is not needed
    conn.set_authorizer(_authorize(conn))
    return conn


# --- JSON Schema subset -------------------------------------------------------

def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is(value: object, kind: str) -> bool:
    actual = json_type(value)
    if kind == "number":
        return actual in ("integer", "number")
    if kind == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())  # type: ignore[arg-type]
    return actual == kind


def validate(value: object, schema: dict, where: str, top: bool = False) -> object:
    """Check `value` against a JSON Schema subset; returns it with integral floats turned into ints."""
    if not isinstance(schema, dict):
        return value
    kinds = schema.get("type")
    if kinds is not None:
        options = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, k) for k in options):
            raise ArgumentError(f"{where} must be {' or '.join(map(str, options))}, got {json_type(value)}")
        if isinstance(value, float) and "integer" in options and "number" not in options:
            value = int(value)
    if "enum" in schema and not any(json_type(value) == json_type(e) and value == e for e in schema["enum"]):
        raise ArgumentError(f"{where} must be one of {json.dumps(schema['enum'])}, got {json.dumps(value)}")
    if "const" in schema and value != schema["const"]:
        raise ArgumentError(f"{where} must be {json.dumps(schema['const'])}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ArgumentError(f"{where} must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ArgumentError(f"{where} must have at most {schema['maxLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            raise ArgumentError(f"{where} must match {schema['pattern']}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, ok in (("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
                        ("exclusiveMinimum", lambda b: value > b), ("exclusiveMaximum", lambda b: value < b)):
            if isinstance(schema.get(key), (int, float)) and not ok(schema[key]):
                raise ArgumentError(f"{where} must satisfy {key} {schema[key]}, got {value}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise ArgumentError(f"{where} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ArgumentError(f"{where} must have at most {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            value = [validate(v, schema["items"], f"{where}[{i}]") for i, v in enumerate(value)]
    elif isinstance(value, dict):
        value = _validate_object(value, schema, where, top)
    return value


def _validate_object(value: dict, schema: dict, where: str, top: bool) -> dict:
    props = schema.get("properties") or {}
    # An unknown top-level parameter is always an error (it would reach the function as a stray keyword).
    extra = False if top else schema.get("additionalProperties", True)
    for name in schema.get("required") or []:
        if name not in value:
            raise ArgumentError(f"missing required parameter '{name}'" if top else f"{where} is missing '{name}'")
    out = {}
    for name, item in value.items():
        label = f"parameter '{name}'" if top else f"{where}.{name}"
        if name in props:
            out[name] = validate(item, props[name], label)
        elif extra is False:
            raise ArgumentError(f"unknown parameter '{name}'" if top else f"{where} has unknown key '{name}'")
        else:
            out[name] = validate(item, extra, label) if isinstance(extra, dict) else item
    return out


# --- the host -------------------------------------------------------------------

Tool = collections.namedtuple("Tool", "name fn module mode description parameters")


class Host:
    def __init__(self) -> None:
        self.tools: dict[str, Tool] = {}
        self.db: GuardedConnection | None = None
        self.db_path = ""

    def handle(self, request: dict) -> str:
        op = request.get("op")
        if op == "call":
            if request.get("settle") is True and (problem := self._settle()) is not None:  # a piggybacked reset
                return json.dumps({"ok": False, "error": one_line(problem), "settled": False}, ensure_ascii=False)
            return self.call(request.get("name"), request.get("arguments"))
        if op == "load":
            return self.load(request.get("modules"), request.get("db"))
        if op == "reset":
            return self.reset(request.get("db"))
        return fail(f"unknown op {op!r}")

    def load(self, modules: object, db: object) -> str:
        if self.tools or self.db is not None:
            return fail("already loaded")
        if not isinstance(modules, list) or not isinstance(db, str):
            return fail("load needs a list of modules and a db file name")
        table = []
        for index, entry in enumerate(modules):
            try:
                table += self._load_one(index, entry)
            except BaseException as exc:  # noqa: BLE001 - even SystemExit at import is the module's failure
                return fail(f"cannot load {entry.get('file') if isinstance(entry, dict) else entry}: {describe(exc)}")
        try:
            self.db, self.db_path = open_db(db), db
        except Exception as exc:  # noqa: BLE001
            return fail(f"cannot open database {db}: {describe(exc)}")
        return succeed(table)

    def _load_one(self, index: int, entry: object) -> list[dict]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ValueError("module entry needs a file")
        file, namespace, prefix = entry["file"], entry.get("namespace", ""), entry.get("prefix", "")
        spec = importlib.util.spec_from_file_location(f"skiller_impl_{index}", os.path.abspath(file))
        if spec is None or spec.loader is None:
            raise ImportError("not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        module.NAMESPACE = namespace  # tables resolve through _t(), which reads this at call time
        tool_error = getattr(module, "ToolError", None)
        if not (isinstance(tool_error, type) and issubclass(tool_error, Exception)):
            raise TypeError("module must define class ToolError(Exception)")
        tools = getattr(module, "TOOLS", None)
        if not isinstance(tools, dict) or not tools:
            raise TypeError("module must define a non-empty TOOLS dict")
        table = []
        for raw_name, entry_def in tools.items():
            name = f"{prefix}{raw_name}"
            if not isinstance(raw_name, str) or not NAME_RE.match(name):
                raise ValueError(f"bad tool name {name!r} (letters, digits, _ and -, at most 64)")
            if name in self.tools:
                raise ValueError(f"tool {name} is defined twice")
            if not isinstance(entry_def, dict) or not callable(entry_def.get("fn")):
                raise TypeError(f"TOOLS[{raw_name!r}] needs a callable 'fn'")
            mode, description, params = entry_def.get("mode"), entry_def.get("description"), entry_def.get("parameters")
            if mode not in ("read", "write"):
                raise ValueError(f"TOOLS[{raw_name!r}]['mode'] must be 'read' or 'write'")
            if not isinstance(description, str) or not description.strip():
                raise ValueError(f"TOOLS[{raw_name!r}] needs a description")
            if not isinstance(params, dict) or params.get("type") != "object":
                raise ValueError(f"TOOLS[{raw_name!r}]['parameters'] must be a JSON Schema object")
            params = json.loads(json.dumps(params))  # plain JSON, detached from module state
            self.tools[name] = Tool(name, entry_def["fn"], module, mode, description, params)
            table.append({"name": name, "description": description, "mode": mode, "parameters": params})
        return table

    def call(self, name: object, arguments: object) -> str:
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            return fail(f"unknown tool: {name}")
        if self.db is None:
            return fail("no database loaded")
        if arguments is None:
            arguments = {}
        try:
            arguments = validate(arguments, tool.parameters, "arguments", top=True)
        except ArgumentError as exc:
            return fail(f"invalid arguments for {name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a broken schema (e.g. bad regex) is the module's bug
            return fail(f"internal error in {name}: cannot check arguments: {describe(exc)}")
        db = self.db
        if db.in_transaction:  # left open by something outside a call: never let it leak into this one
            self._rollback()
        db.row_factory, db.text_factory, db.isolation_level = None, str, None  # calls cannot leak settings
        db._runtime_exec(f"SAVEPOINT {SAVEPOINT}")
        changes = db.total_changes
        try:
            value = tool.fn(db, **arguments)
            if tool.mode == "read" and db.total_changes != changes:
                raise RuntimeError("a read tool changed the database")
        except BaseException as exc:  # noqa: BLE001 - any failure, even SystemExit, rolls the call back
            self._rollback()
            if isinstance(exc, tool.module.ToolError):
                return fail(one_line(exc) or f"{name} failed")
            return fail(f"internal error in {name}: {describe(exc)}")
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except Exception as exc:  # noqa: BLE001 - a write whose result cannot be returned does not happen
            self._rollback()
            return fail(f"internal error in {name}: result is not JSON: {describe(exc)}")
        if len(text) > MAX_VALUE_CHARS:
            self._rollback()
            return fail(f"internal error in {name}: result is {len(text)} characters, over {MAX_VALUE_CHARS}")
        try:
            db._runtime_exec(f"RELEASE {SAVEPOINT}")  # commit, so the parent can read the file
        except sqlite3.Error as exc:
            self._rollback()
            return fail(f"internal error in {name}: cannot commit: {describe(exc)}")
        return '{"ok":true,"value":' + text + "}"

    def _rollback(self) -> None:
        # Our savepoint is always the outermost transaction, so a full ROLLBACK undoes exactly this call.
        if self.db is not None and self.db.in_transaction:
            self.db._runtime_exec("ROLLBACK")

    def reset(self, fresh: object) -> str:
        if self.db is not None and fresh is None:
            return fail(problem) if (problem := self._settle()) is not None else succeed(None)
        if self.db is None or not isinstance(fresh, str):
            return fail("reset needs a loaded database and a fresh file name")
        self.db.really_close()
        self.db = None
        try:
            for leftover in (self.db_path + "-journal", self.db_path + "-wal", self.db_path + "-shm"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            os.replace(fresh, self.db_path)
            self.db = open_db(self.db_path)
        except Exception as exc:  # noqa: BLE001
            return fail(f"cannot reset database: {describe(exc)}")
        return succeed(None)

    def _settle(self) -> str | None:
        """The file is the initial one again; what a connection keeps beyond it must go too (the error, if any)."""
        if self.db is None:
            return "cannot reset database: no database loaded"
        try:
            self._rollback()
            if self.db.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0]:
                self.db.really_close()
                self.db = None
                self.db = open_db(self.db_path)
        except Exception as exc:  # noqa: BLE001
            return f"cannot reset database: {describe(exc)}"
        return None


def describe(exc: BaseException) -> str:
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fail(error: str) -> str:
    return json.dumps({"ok": False, "error": one_line(error)}, ensure_ascii=False)


def succeed(value: object) -> str:
    return json.dumps({"ok": True, "value": value}, ensure_ascii=False, separators=(",", ":"))


def main() -> int:
    # Keep the protocol pipes private: tool code that prints or reads stdin must not touch them.
    inp = os.fdopen(os.dup(0), "r", encoding="utf-8")
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    r, w = os.pipe()
    os.dup2(r, 0)
    os.close(r)
    os.close(w)
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr: C-level writes to fd 1 then fail instead of corrupting the protocol
        r, w = os.pipe()
        os.dup2(w, 1)
        os.close(r)
        os.close(w)
    sys.stdin, sys.stdout = io.StringIO(""), _Sink()
    host = Host()
    for line in inp:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request must be a JSON object")
        except ValueError as exc:
            reply = fail(f"bad request: {exc}")
        else:
            if request.get("op") == "close":
                out.write(succeed(None) + "\n")
                out.flush()
                break
            try:
                reply = host.handle(request)
            except BaseException as exc:  # noqa: BLE001 - the host answers every request, whatever happens
                reply = fail(f"host error: {describe(exc)}")
        out.write(reply + "\n")
        out.flush()
    if host.db is not None:
        host.db.really_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
