"""The workspace store: one SQLite file holding the event log, artifacts and the LLM cache."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Iterator

import sqlite_utils
from pydantic import BaseModel, ConfigDict

from events import EVENT_ADAPTER, Event, EventRow, Projection, apply

_COLUMNS = ("stream", "type", "trigger", "source", "dest")


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
    """Single writer over `skiller.db` (WAL). One `append` = one transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite_utils.Database(self.path)
        self.db.conn.execute("PRAGMA journal_mode=WAL")
        self.db.conn.execute("PRAGMA synchronous=NORMAL")
        self._ensure_schema()
        self._projection = Projection()
        self._folded_seq = 0

    def _ensure_schema(self) -> None:
        if "events" not in self.db.table_names():
            self.db["events"].create(
                {"seq": int, "stream": str, "type": str, "trigger": str, "source": str, "dest": str,
                 "payload": str, "artifacts": str, "run_id": str, "at": str},
                pk="seq",
            )
            self.db["events"].create_index(["stream"])
        if "artifacts" not in self.db.table_names():
            self.db["artifacts"].create(
                {"sha256": str, "kind": str, "media_type": str, "content": bytes}, pk="sha256")
        if "llm_cache" not in self.db.table_names():
            self.db["llm_cache"].create(
                {"key": str, "provider": str, "model": str, "purpose": str, "response": str,
                 "input_tokens": int, "output_tokens": int}, pk="key")

    def close(self) -> None:
        self.db.conn.close()

    # -- writing -----------------------------------------------------------------------------
    def append(self, events: list[Event], artifacts: list[Artifact] = (), run_id: str = "") -> None:
        """Commit artifacts and events atomically: all of them or none."""
        at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
        conn = self.db.conn
        with conn:
            conn.executemany(
                "INSERT OR IGNORE INTO artifacts (sha256, kind, media_type, content) VALUES (?,?,?,?)",
                [(a.sha256, a.kind, a.media_type, a.content) for a in artifacts])
            conn.executemany(
                "INSERT INTO events (stream, type, trigger, source, dest, payload, artifacts, run_id, at)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                [_row_values(e, run_id, at) for e in events])

    # -- reading -----------------------------------------------------------------------------
    def rows(self, stream: str | None = None, after: int = 0) -> Iterator[EventRow]:
        sql = "SELECT seq, stream, type, trigger, source, dest, payload, artifacts, run_id, at FROM events WHERE seq > ?"
        args: list = [after]
        if stream is not None:
            sql += " AND stream = ?"
            args.append(stream)
        for r in self.db.conn.execute(sql + " ORDER BY seq", args):
            yield EventRow(*r)

    def projection(self) -> Projection:
        """The current fold of the log, advanced incrementally from the last folded event."""
        for row in self.rows(after=self._folded_seq):
            apply(self._projection, row)
            self._folded_seq = row.seq
        return self._projection

    def artifact(self, sha: str) -> bytes:
        row = self.db.conn.execute("SELECT content FROM artifacts WHERE sha256 = ?", (sha,)).fetchone()
        if row is None:
            raise KeyError(f"artifact {sha[:12]} is missing from the store")
        return row[0]

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


def _row_values(event: Event, run_id: str, at: str) -> tuple:
    data = event.model_dump(mode="json")
    artifacts = data.pop("artifacts")
    cols = [data.pop(c, None) for c in _COLUMNS]
    payload = data.pop("payload", None)
    if payload is None:
        payload = data  # event-specific fields live in the payload column
    return (*cols, json.dumps(payload, sort_keys=True), json.dumps(artifacts, sort_keys=True), run_id, at)


def event_from_row(row: EventRow) -> Event:
    """Typed view of a stored row (for `skiller log`; the fold reads rows directly)."""
    payload = json.loads(row.payload)
    data: dict = {"stream": row.stream, "type": row.type, "artifacts": json.loads(row.artifacts)}
    if row.type == "Transitioned":
        data.update(trigger=row.trigger, source=row.source, dest=row.dest, payload=payload)
    else:
        data.update(payload)
    return EVENT_ADAPTER.validate_python(data)
