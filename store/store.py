"""The workspace store: one SQLite file holding the event log, artifacts and the LLM cache."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sqlite3
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import sqlite_utils
from pydantic import BaseModel, ConfigDict

from skiller.events import EVENT_ADAPTER, Event, EventRow, Projection, apply
from skiller.store.chain import GENESIS, link

RECENT_ARTIFACT_BYTES = 64 << 20  # artifacts a store keeps in memory after reading them
_COLUMNS = ("stream", "type", "trigger", "source", "dest")
_SELECT = "SELECT seq, stream, type, trigger, source, dest, payload, artifacts, run_id, at, {hash} FROM events"
# The fold reads only the columns it folds, as the cursor's plain tuples: strings for trigger, source,
# run id, time and hash it never looks at, and a named tuple per event, would cost a third of replay speed.
_FOLD = "SELECT seq, stream, type, NULL, NULL, dest, payload, artifacts FROM events WHERE seq > ? ORDER BY seq"


class StoreError(Exception):
    """The database file cannot serve as a workspace log (corrupt, not SQLite, unreplayable), as one line."""


class Artifact(BaseModel):
    """Content-addressed bytes with a name (how a machine refers to it) and a kind."""

    model_config = ConfigDict(frozen=True)
    name: str
    kind: str
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @classmethod
    def of_model(cls, name: str, model: BaseModel) -> "Artifact":
        return cls(name=name, kind=type(model).__name__, media_type="application/json",
                   content=canonical_model_json(model))

    @classmethod
    def of_text(cls, name: str, kind: str, text: str, media_type: str = "text/plain") -> "Artifact":
        return cls(name=name, kind=kind, media_type=media_type, content=text.encode())


def canonical_model_json(model: BaseModel) -> bytes:
    return json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


class Store:
    """`skiller.db` (WAL). The writer appends, one `append` = one transaction; readers never write.

    `readonly="shared"` reads alongside a live writer; `readonly="immutable"` is for a workspace
    nobody may write (SQLite then creates no -wal or -shm file next to it)."""

    def __init__(self, path: str | Path, readonly: str | None = None):
        self.path = Path(path)
        self.readonly = readonly
        try:
            self.db = sqlite_utils.Database(_connect(self.path, readonly))
            if readonly:
                self._check_readable()
            else:
                self.db.conn.execute("PRAGMA journal_mode=WAL")
                self.db.conn.execute("PRAGMA synchronous=NORMAL")
                self._ensure_schema()
            self._select = _SELECT.format(hash="hash" if self._has_hash() else "''")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is corrupt or not a skiller database ({exc})") from exc
        self._projection = Projection()
        self._folded_seq = 0
        # Artifacts read lately: every step of a task reads its environment's bundle and database again.
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._recent_bytes = 0

    def _has_hash(self) -> bool:
        return any(r[1] == "hash" for r in self.db.conn.execute("PRAGMA table_info(events)"))

    def _check_readable(self) -> None:
        self.db.conn.execute("PRAGMA query_only=1")
        if not {"events", "artifacts"} <= set(self.db.table_names()):
            raise StoreError(f"{self.path} holds no skiller event log")

    def _ensure_schema(self) -> None:
        if "events" not in self.db.table_names():
            self.db["events"].create(
                {"seq": int, "stream": str, "type": str, "trigger": str, "source": str, "dest": str,
                 "payload": str, "artifacts": str, "run_id": str, "at": str, "hash": str},
                pk="seq",
            )
            self.db["events"].create_index(["stream"])
        elif not self._has_hash():
            self._seal_legacy_log()
        if "artifacts" not in self.db.table_names():
            self.db["artifacts"].create(
                {"sha256": str, "kind": str, "media_type": str, "content": bytes}, pk="sha256")
        if "llm_cache" not in self.db.table_names():
            self.db["llm_cache"].create(
                {"key": str, "provider": str, "model": str, "purpose": str, "response": str,
                 "input_tokens": int, "output_tokens": int}, pk="key")

    def _seal_legacy_log(self) -> None:
        """A log written before the hash chain: add the column and chain what is there (once)."""
        conn = self.db.conn
        with conn:
            _begin(conn)
            conn.execute("ALTER TABLE events ADD COLUMN hash TEXT")
            prev, sealed = GENESIS, []
            for r in conn.execute(_SELECT.format(hash="''") + " ORDER BY seq").fetchall():
                prev = link(prev, *r[:9])
                sealed.append((prev, r[0]))
            conn.executemany("UPDATE events SET hash = ? WHERE seq = ?", sealed)

    def close(self) -> None:
        self.db.conn.close()

    # -- writing -----------------------------------------------------------------------------
    def append(self, events: list[Event], artifacts: list[Artifact] = (), run_id: str = "") -> None:
        """Commit artifacts and events atomically: all of them or none, each event chained to the last."""
        at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
        conn = self.db.conn
        with conn:
            _begin(conn)  # the tail read below and the inserts are one transaction
            conn.executemany(
                "INSERT OR IGNORE INTO artifacts (sha256, kind, media_type, content) VALUES (?,?,?,?)",
                [(a.sha256, a.kind, a.media_type, a.content) for a in artifacts])
            tail = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = tail if tail else (0, GENESIS)
            rows = []
            for e in events:
                seq += 1
                values = _row_values(e, run_id)
                prev = link(prev, seq, *values)
                rows.append((seq, *values, at, prev))
            conn.executemany(
                "INSERT INTO events (seq, stream, type, trigger, source, dest, payload, artifacts, run_id, at, hash)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)

    # -- reading -----------------------------------------------------------------------------
    def rows(self, stream: str | None = None, after: int = 0) -> Iterator[EventRow]:
        sql = self._select + " WHERE seq > ?"
        args: list = [after]
        if stream is not None:
            sql += " AND stream = ?"
            args.append(stream)
        return map(EventRow._make, self.db.conn.execute(sql + " ORDER BY seq", args))

    def projection(self) -> Projection:
        """The current fold of the log, advanced incrementally from the last folded event."""
        row = None
        try:
            for row in self.db.conn.execute(_FOLD, (self._folded_seq,)):
                apply(self._projection, row)
                self._folded_seq = row[0]
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # a hand-edited log; json errors are ValueErrors
            where = f"event {row[0]}" if row is not None else "the log"
            raise StoreError(f"{where} cannot be replayed ({type(exc).__name__}: {exc}); "
                             "run `skiller replay --verify` for an audit") from exc
        return self._projection

    def artifact(self, sha: str) -> bytes:
        content = self._recent.get(sha)  # content-addressed, so a kept copy is never stale
        if content is not None:
            self._recent.move_to_end(sha)
            return content
        row = self.db.conn.execute("SELECT content FROM artifacts WHERE sha256 = ?", (sha,)).fetchone()
        if row is None:
            raise KeyError(f"artifact {sha[:12]} is missing from the store")
        content = row[0]
        self._recent[sha] = content
        self._recent_bytes += len(content)
        while self._recent_bytes > RECENT_ARTIFACT_BYTES and len(self._recent) > 1:
            self._recent_bytes -= len(self._recent.popitem(last=False)[1])
        return content

    def artifact_json(self, sha: str):
        return json.loads(self.artifact(sha))

    def artifact_shas(self) -> Iterator[tuple[str, bytes]]:
        yield from self.db.conn.execute("SELECT sha256, content FROM artifacts ORDER BY sha256")

    # -- LLM cache ---------------------------------------------------------------------------
    def cache_get(self, key: str) -> dict | None:
        row = self.db.conn.execute(
            "SELECT response, input_tokens, output_tokens FROM llm_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return {"response": json.loads(row[0]), "input_tokens": row[1], "output_tokens": row[2]}

    def cache_put(self, key: str, provider: str, model: str, purpose: str, response: dict,
                  input_tokens: int, output_tokens: int) -> None:
        with self.db.conn:
            self.db.conn.execute(
                "INSERT OR REPLACE INTO llm_cache VALUES (?,?,?,?,?,?,?)",
                (key, provider, model, purpose, json.dumps(response, sort_keys=True), input_tokens, output_tokens))


def _begin(conn: sqlite3.Connection) -> None:
    if not conn.in_transaction:
        conn.execute("BEGIN IMMEDIATE")


def _connect(path: Path, readonly: str | None) -> sqlite3.Connection:
    if readonly and not path.is_file():
        raise StoreError(f"{path} does not exist")
    if readonly == "immutable":
        return sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
    # a shared reader is an ordinary connection made query-only: as the last one out it tidies the WAL away
    return sqlite3.connect(path)


def _row_values(event: Event, run_id: str) -> tuple:
    data = event.model_dump(mode="json")
    artifacts = data.pop("artifacts")
    cols = [data.pop(c, None) for c in _COLUMNS]
    payload = data.pop("payload", None)
    if payload is None:
        payload = data  # event-specific fields live in the payload column
    return (*cols, json.dumps(payload, sort_keys=True), json.dumps(artifacts, sort_keys=True), run_id)


def event_from_row(row: EventRow) -> Event:
    """Typed view of a stored row (for `skiller log`; the fold reads rows directly)."""
    payload = json.loads(row.payload)
    data: dict = {"stream": row.stream, "type": row.type, "artifacts": json.loads(row.artifacts)}
    if row.type == "Transitioned":
        data.update(trigger=row.trigger, source=row.source, dest=row.dest, payload=payload)
    else:
        data.update(payload)
    return EVENT_ADAPTER.validate_python(data)
