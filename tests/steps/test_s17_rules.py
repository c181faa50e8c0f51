"""s17 tells the rollout which rule a refusal breaks, with what a read shows about it: a bridge rule comparing the
request with the referenced record names that record's field, so the refusal can say its value."""
from __future__ import annotations

import json
from types import SimpleNamespace

from skiller.steps.s17_instantiation import _rule


def _policy(*bridges: dict) -> SimpleNamespace:
    markers = "\n".join(f"<!-- BRIDGE {json.dumps(b)} -->" for b in bridges)
    return SimpleNamespace(policy="# Merged policy\n\n" + markers)


def test_a_bridge_rule_on_a_referenced_date_or_amount_names_that_field_and_a_status_rule_its_statuses() -> None:
    window = {"id": "MOV-X2", "source": "PropertyRental", "target": "MovingServices", "kind": "date_after",
              "statement": "The move date is within 30 days of the lease start.", "tool": "book_move",
              "ref": "lease_ref", "record": "Lease", "source_field": "start_date", "field": "move_date"}
    status = {"id": "PIN-X1", "source": "VetClinic", "target": "PetInsurance", "kind": "source_status",
              "statement": "A claim only for a completed visit.", "tool": "file_pet_claim", "ref": "visit_ref",
              "record": "VetVisit", "statuses": ["completed"], "source_field": "status"}
    env = _policy(window, status)

    moved = _rule(env, "MOV-X2")
    assert (moved.tool, moved.kind, moved.field, moved.attribute) == \
        ("moving_services_book_move", "date_after", "move_date", "start_date")
    claimed = _rule(env, "PIN-X1")
    assert (claimed.statuses, claimed.attribute) == (["completed"], None)  # the status is the rule's own field
    assert _rule(env, "NOPE-1") is None and _rule(None, "MOV-X2") is None
