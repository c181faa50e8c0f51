"""The hash chain: written with each append, and a local check that names the seq of every break."""
import sqlite3

from skiller.events import MachineCreated, Transitioned
from skiller.store import Store, chain_drift, row_link


def small_log(path, events: int = 8) -> Store:
    store = Store(path)
    store.append([MachineCreated(stream="world", kind="world", initial="seeded")], run_id="run-0001")
    for i in range(events - 1):
        store.append([Transitioned(stream="world", trigger=f"t{i}", source=f"s{i}", dest=f"s{i + 1}",
                                   payload={"i": i})], run_id="run-0001")
    return store


def test_every_appended_event_chains_to_the_one_before(tmp_path):
    store = small_log(tmp_path / "s.db")
    rows = list(store.rows())
    assert [r.seq for r in rows] == list(range(1, 9))
    assert all(len(r.hash) == 64 for r in rows) and len({r.hash for r in rows}) == 8
    assert all(row_link(rows[i - 1].hash if i else "", r) == r.hash for i, r in enumerate(rows))
    assert chain_drift(rows) == []


def test_the_hash_ignores_wall_time_but_not_the_run(tmp_path):
    a = list(small_log(tmp_path / "a.db").rows())
    b = list(small_log(tmp_path / "b.db").rows())
    assert [r.hash for r in a] == [r.hash for r in b]  # written at different times, same chain
    assert row_link("", a[0]._replace(run_id="run-0002")) != a[0].hash


def test_an_edit_is_named_at_its_seq_and_nowhere_else(tmp_path):
    rows = list(small_log(tmp_path / "s.db").rows())
    rows[4] = rows[4]._replace(payload='{"i": 99}')
    assert chain_drift(rows) == [(5, "edited", "the event does not match its hash")]


def test_a_deleted_event_leaves_a_named_gap(tmp_path):
    rows = list(small_log(tmp_path / "s.db").rows())
    del rows[3:5]
    assert chain_drift(rows) == [(4, "deleted", "event(s) 4-5 are missing from the log")]


def test_swapped_events_are_named_as_reordered_adjacent_or_apart(tmp_path):
    rows = list(small_log(tmp_path / "s.db").rows())
    for i, j in [(2, 3), (1, 6)]:
        moved = list(rows)
        # what `UPDATE events SET seq = ...` does: each row keeps its content and hash, seqs trade places
        moved[i], moved[j] = rows[j]._replace(seq=rows[i].seq), rows[i]._replace(seq=rows[j].seq)
        seq_i, seq_j = rows[i].seq, rows[j].seq
        assert chain_drift(moved) == [(seq_i, "reordered", f"events {seq_i} and {seq_j} were swapped")]


def test_a_log_written_before_the_chain_is_sealed_when_a_writer_opens_it(tmp_path):
    path = tmp_path / "old.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE events DROP COLUMN hash")  # the layout of a workspace from before the chain
    conn.execute("INSERT INTO events (stream, type, trigger, source, dest, payload, artifacts, run_id, at) "
                 "VALUES ('world', 'MachineCreated', NULL, NULL, NULL, '{\"initial\": \"seeded\", \"inputs\": {}, "
                 "\"kind\": \"world\"}', '{}', '', 'x')")
    conn.commit()
    conn.close()
    reader = Store(path, readonly="shared")
    assert [r.hash for r in reader.rows()] == [""]  # readers never write; an unsealed log reads as such
    assert chain_drift(list(reader.rows())) == [(1, "unsealed", "the event carries no hash")]
    reader.close()
    store = Store(path)
    store.append([Transitioned(stream="world", trigger="t", source="seeded", dest="domains_expanded")])
    assert chain_drift(list(store.rows())) == [] and store.projection().machines["world"].state == "domains_expanded"
