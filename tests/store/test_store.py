"""The store commits artifacts and events atomically and caches LLM answers."""
import sqlite3

import pytest

from skiller.events import MachineCreated, Transitioned
from skiller.store import Artifact, Store, StoreError


def test_append_is_one_transaction_all_or_nothing(tmp_path):
    store = Store(tmp_path / "s.db")
    good = Artifact.of_text("note", "Note", "hello")
    store.append([MachineCreated(stream="world", kind="world", initial="seeded")])
    # the second event's stream is fine but we make the insert fail by a duplicate primary key
    store.db.conn.execute("CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.type = 'Transitioned' "
                          "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(sqlite3.DatabaseError):
        store.append([Transitioned(stream="world", trigger="t", source="seeded", dest="domains_expanded",
                                   artifacts={"note": good.sha256})], [good])
    assert store.projection().machines["world"].state == "seeded"
    with pytest.raises(KeyError):
        store.artifact(good.sha256)  # the artifact of the failed transaction was not kept


def test_same_content_is_one_artifact_row(tmp_path):
    store = Store(tmp_path / "s.db")
    a, b = Artifact.of_text("x", "N", "same"), Artifact.of_text("y", "N", "same")
    store.append([MachineCreated(stream="world", kind="world", initial="seeded")], [a, b])
    assert store.db["artifacts"].count == 1
    assert store.artifact(a.sha256) == b"same"


def test_log_survives_reopen_and_uses_wal(tmp_path):
    store = Store(tmp_path / "s.db")
    store.append([MachineCreated(stream="world", kind="world", initial="seeded")])
    store.close()
    again = Store(tmp_path / "s.db")
    assert again.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert list(again.projection().machines) == ["world"]


def test_cache_round_trip(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.cache_get("k") is None
    store.cache_put("k", "builtin", "m", "s01.domains", {"a": [1]}, 5, 7)
    assert store.cache_get("k") == {"response": {"a": [1]}, "input_tokens": 5, "output_tokens": 7}


def test_an_immutable_reader_writes_nothing_next_to_the_database(tmp_path):
    store = Store(tmp_path / "s.db")
    store.append([MachineCreated(stream="world", kind="world", initial="seeded")])
    store.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    reader = Store(tmp_path / "s.db", readonly="immutable")
    assert list(reader.projection().machines) == ["world"]
    with pytest.raises(sqlite3.DatabaseError):
        reader.append([MachineCreated(stream="x", kind="task", initial="templated")])
    reader.close()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no -wal, no -shm, same bytes


def test_a_shared_reader_sees_what_the_writer_commits_and_cannot_write(tmp_path):
    writer = Store(tmp_path / "s.db")
    writer.append([MachineCreated(stream="world", kind="world", initial="seeded")])
    reader = Store(tmp_path / "s.db", readonly="shared")
    assert reader.projection().machines["world"].state == "seeded"
    writer.append([Transitioned(stream="world", trigger="t", source="seeded", dest="domains_expanded")])
    assert reader.projection().machines["world"].state == "domains_expanded"
    with pytest.raises(sqlite3.DatabaseError, match="readonly|read-only|query_only"):
        reader.append([MachineCreated(stream="x", kind="task", initial="templated")])


@pytest.mark.parametrize("readonly", [None, "shared", "immutable"])
def test_a_file_that_is_not_a_skiller_database_is_one_store_error(tmp_path, readonly):
    (tmp_path / "s.db").write_bytes(b"this is not SQLite\n" * 64)
    with pytest.raises(StoreError, match="corrupt or not a skiller database") as bad:
        Store(tmp_path / "s.db", readonly=readonly)
    assert "\n" not in str(bad.value)


def test_a_hand_edited_log_that_cannot_be_folded_is_one_store_error_naming_the_seq(tmp_path):
    store = Store(tmp_path / "s.db")
    store.append([MachineCreated(stream="world", kind="world", initial="seeded"),
                  Transitioned(stream="world", trigger="t", source="seeded", dest="domains_expanded")])
    with store.db.conn:
        store.db.conn.execute("UPDATE events SET payload = '{oops' WHERE seq = 2")
    with pytest.raises(StoreError, match=r"event 2 cannot be replayed .*replay --verify"):
        Store(tmp_path / "s.db", readonly="shared").projection()
