"""skiller.servers.coherence: the integrity check counts rows that contradict the world and fails above 1%."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from skiller.servers.coherence import AmountRule, CategoryRule, DataInvariants, HoldingRule, StatusTiming, coherence_report
from skiller.steps.s06_database import check_database

TODAY = "2026-03-02"
INVARIANTS = DataInvariants(
    status_dates=[StatusTiming(table="booking", status_column="status", date_column="day",
                               past=["completed"], future=["scheduled"])],
    amounts=[AmountRule(table="booking", amount_column="amount_due", target_table="tour", target_key="tour_id",
                        price_column="price", quantity_column="participants", fixed_column="booking_fee")],
    categories=[CategoryRule(table="booking", target_table="tour", target_key="tour_id", target_column="kind",
                             column="reason", allowed={"food": ["tasting"], "history": ["walk", "museum"]})],
)


def build(path: Path, rows: int = 200, bad: dict[str, int] | None = None) -> Path:
    """A tour-booking database of `rows` coherent bookings, then `bad[kind]` rows broken by kind."""
    bad = bad or {}
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE person (person_id TEXT PRIMARY KEY)")
    db.execute("CREATE TABLE tour (tour_id TEXT PRIMARY KEY, kind TEXT, price REAL, booking_fee REAL)")
    db.execute("CREATE TABLE booking (booking_id TEXT PRIMARY KEY, person_id TEXT REFERENCES person(person_id), "
               "tour_id TEXT REFERENCES tour(tour_id), reason TEXT, status TEXT, day TEXT, participants INTEGER, "
               "amount_due REAL)")
    db.execute("INSERT INTO person VALUES ('P-0001')")
    db.executemany("INSERT INTO tour VALUES (?, ?, ?, ?)",
                   [("T-1", "tasting", 40.0, 2.5), ("T-2", "walk", 15.5, 0.0), ("T-3", "museum", 22.0, 1.0)])
    prices = {"T-1": (40.0, 2.5), "T-2": (15.5, 0.0), "T-3": (22.0, 1.0)}
    for i in range(rows):
        tour, reason = [("T-1", "food"), ("T-2", "history"), ("T-3", "history")][i % 3]
        status, day = [("completed", "2026-02-10"), ("scheduled", "2026-04-01"), ("cancelled", "2025-12-24")][i % 3]
        if bad.get("status_date", 0) + bad.get("amount", 0) <= i < sum(bad.values()):
            tour, reason = "T-2", "food"  # a food tasting booked on a walk
        qty = 1 + i % 4
        amount = round(prices[tour][0] * qty + prices[tour][1], 2)
        if i < bad.get("status_date", 0):
            status, day = "completed", "2026-03-20"  # completed in a fortnight
        elif i < bad.get("status_date", 0) + bad.get("amount", 0):
            amount = prices[tour][0]  # one person's price for the whole party
        db.execute("INSERT INTO booking VALUES (?, 'P-0001', ?, ?, ?, ?, ?, ?)",
                   (f"B-{i:04d}", tour, reason, status, day, qty, amount))
    db.commit()
    db.close()
    return path


def test_a_coherent_database_passes_with_every_row_checked(tmp_path: Path) -> None:
    report = coherence_report(build(tmp_path / "ok.sqlite"), INVARIANTS, TODAY)
    assert report.ok and report.problems() == []
    assert report.checked == {"status_date": 200, "amount": 200, "category": 200}
    assert report.violations == {}


def test_each_kind_of_contradiction_is_counted_and_fails_above_one_percent(tmp_path: Path) -> None:
    path = build(tmp_path / "bad.sqlite", bad={"status_date": 6, "amount": 5, "category": 4})
    report = coherence_report(path, INVARIANTS, TODAY)
    assert report.violations == {"status_date": 6, "amount": 5, "category": 4}
    assert not report.ok
    lines = report.problems()
    assert len(lines) == 3
    assert lines[0].startswith("5 of 200 rows (2.5%) break the amount rule") and "rowid 7 charges 40.0, expected 122.5" in lines[0]
    assert "is completed on 2026-03-20 (today 2026-03-02)" in lines[2]
    assert "(food) points at a walk tour" in lines[1]


def test_up_to_one_percent_is_tolerated(tmp_path: Path) -> None:
    report = coherence_report(build(tmp_path / "few.sqlite", bad={"status_date": 2}), INVARIANTS, TODAY)
    assert report.violations == {"status_date": 2} and report.ok  # 2 of 200 = 1%
    report = coherence_report(build(tmp_path / "more.sqlite", bad={"status_date": 3}), INVARIANTS, TODAY)
    assert not report.ok


def test_a_status_is_timed_against_the_simulated_today(tmp_path: Path) -> None:
    path = build(tmp_path / "ok.sqlite")
    assert coherence_report(path, INVARIANTS, "2026-02-01").violations == {"status_date": 67}  # completed ahead
    assert coherence_report(path, INVARIANTS, "2026-05-01").violations == {"status_date": 67}  # scheduled behind


def test_a_planned_status_is_tolerated_for_the_grace_days_after_its_date(tmp_path: Path) -> None:
    path = build(tmp_path / "ok.sqlite")  # scheduled bookings are on 2026-04-01
    strict = INVARIANTS.status_dates[0]
    lenient = DataInvariants(status_dates=[strict.model_copy(update={"grace_days": 3})])
    assert coherence_report(path, DataInvariants(status_dates=[strict]), "2026-04-03").violations == {"status_date": 67}
    assert coherence_report(path, lenient, "2026-04-03").violations == {}
    assert coherence_report(path, lenient, "2026-04-05").violations == {"status_date": 67}


def test_an_invariant_naming_a_missing_column_fails_clearly(tmp_path: Path) -> None:
    wrong = DataInvariants(amounts=[AmountRule(table="booking", amount_column="total", target_table="tour",
                                               target_key="tour_id", price_column="price")])
    report = coherence_report(build(tmp_path / "ok.sqlite"), wrong, TODAY)
    assert not report.ok
    assert report.problems() == ["invariant names column booking.total, which the database lacks"]


def test_s06_integrity_check_rejects_a_contradicting_database(tmp_path: Path) -> None:
    content = build(tmp_path / "bad.sqlite", bad={"amount": 30}).read_bytes()
    import datetime as dt

    problems, summary = check_database(content, INVARIANTS, dt.date(2026, 3, 2))
    assert summary is None and len(problems) == 1 and "break the amount rule" in problems[0]
    problems, summary = check_database(content)  # no invariants declared: keys and tables only
    assert problems == [] and summary is not None


def test_a_target_held_alone_is_held_by_one_row_and_not_marked_free(tmp_path: Path) -> None:
    path = tmp_path / "units.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE unit (unit_id TEXT PRIMARY KEY, available INTEGER)")
    db.execute("CREATE TABLE rental (rental_id TEXT PRIMARY KEY, unit_id TEXT, status TEXT)")
    db.executemany("INSERT INTO unit VALUES (?, ?)", [("U-1", 0), ("U-2", 1), ("U-3", 0), ("U-4", 1)])
    db.executemany("INSERT INTO rental VALUES (?, ?, ?)", [
        ("R-1", "U-1", "active"), ("R-2", "U-1", "reserved"),  # U-1 held twice
        ("R-3", "U-2", "active"),  # U-2 held, yet marked available
        ("R-4", "U-3", "reserved"), ("R-5", "U-3", "closed"), ("R-6", "U-4", "cancelled")])  # coherent
    db.commit()
    db.close()
    rule = HoldingRule(table="rental", status_column="status", holding=["reserved", "active"], target_table="unit",
                       target_key="unit_id", flag_column="available")
    report = coherence_report(path, DataInvariants(holdings=[rule]), TODAY)
    assert report.checked == {"holding": 4} and report.violations == {"holding": 2} and not report.ok
    assert "rowid 2 holds U-1, which an earlier row holds" in report.problems()[0]
    assert "rowid 3 holds U-2, whose available says it is free" in report.problems()[0]
    assert "holdings" not in DataInvariants().model_dump()  # absent where a domain has none: other bytes unchanged
