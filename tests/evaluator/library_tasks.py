"""Golden actions of the Library tasks the evaluator tests share, written out by hand from the fixture data."""
from __future__ import annotations

from typing import Any

# Ada (P-001, one active loan) borrows Knuth's book BK-005: it becomes loan LN-0005, due 14 days after CLOCK.
BORROW_LOAN: dict[str, Any] = {"loan_id": "LN-0005", "person_id": "P-001", "book_id": "BK-005",
                               "loan_date": "2026-03-02", "due_date": "2026-03-16", "return_date": None,
                               "status": "active", "fee": 0.0}
BORROW: list[dict[str, Any]] = [
    {"action_id": "member", "name": "get_member", "arguments": {"person_id": "P-001"}},
    {"action_id": "search", "name": "search_books", "arguments": {"query": "Knuth"}, "compare_args": ["query"]},
    {"action_id": "borrow", "name": "borrow_book", "arguments": {"person_id": "P-001", "book_id": "BK-005"},
     "expected": BORROW_LOAN},
]

# Ada's record as get_member returns it.
ADA: dict[str, Any] = {"person_id": "P-001", "name": "Ada Lovelace", "email": "ada@example.org",
                       "tier": "standard", "status": "active", "member_since": "2024-01-15", "active_loans": 1}
READ_ADA: list[dict[str, Any]] = [
    {"action_id": "member", "name": "get_member", "arguments": {"person_id": "P-001"}, "expected": ADA},
]

# Ada returns LN-0001 (not late) and borrows BK-005: two writes, for the mutation test.
SWAP: list[dict[str, Any]] = [
    {"action_id": "member", "name": "get_member", "arguments": {"person_id": "P-001"}},
    {"action_id": "return", "name": "return_book", "arguments": {"loan_id": "LN-0001"}},
    {"action_id": "borrow", "name": "borrow_book", "arguments": {"person_id": "P-001", "book_id": "BK-005"}},
]
