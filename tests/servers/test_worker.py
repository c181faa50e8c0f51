"""skiller.servers.worker's argument checking (the JSON Schema subset every call goes through), tested in-process."""
from __future__ import annotations

import pytest

from skiller.servers.worker import ArgumentError, validate

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^BK-[0-9]{3}$"},
        "count": {"type": "integer", "minimum": 1},
        "ratio": {"type": "number", "exclusiveMaximum": 1},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "note": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "where": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                  "additionalProperties": False},
    },
    "required": ["id"],
}


def check(arguments: dict) -> object:
    return validate(arguments, SCHEMA, "arguments", top=True)


def test_valid_arguments_pass_and_integral_floats_become_ints():
    out = check({"id": "BK-001", "count": 2.0, "ratio": 0.5, "kind": "a", "note": None, "tags": ["x"],
                 "where": {"city": "Oslo"}})
    assert out["count"] == 2 and isinstance(out["count"], int)


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "missing required parameter 'id'"),
    ({"id": "BK-001", "extra": 1}, "unknown parameter 'extra'"),
    ({"id": "BK-1"}, "parameter 'id' must match"),
    ({"id": "BK-001", "count": True}, "parameter 'count' must be integer, got boolean"),
    ({"id": "BK-001", "count": 1.5}, "parameter 'count' must be integer, got number"),
    ({"id": "BK-001", "count": 0}, "minimum 1"),
    ({"id": "BK-001", "ratio": 1}, "exclusiveMaximum 1"),
    ({"id": "BK-001", "kind": "c"}, 'must be one of ["a", "b"]'),
    ({"id": "BK-001", "note": 3}, "must be string or null"),
    ({"id": "BK-001", "tags": ["x", 2]}, "parameter 'tags'[1] must be string"),
    ({"id": "BK-001", "tags": ["x", "y", "z"]}, "at most 2 items"),
    ({"id": "BK-001", "where": {}}, "parameter 'where' is missing 'city'"),
    ({"id": "BK-001", "where": {"city": "Oslo", "zip": "1"}}, "has unknown key 'zip'"),
])
def test_mismatched_arguments_are_refused_with_a_clear_reason(arguments, message):
    with pytest.raises(ArgumentError) as caught:
        check(arguments)
    assert message in str(caught.value)


def test_unknown_top_level_parameters_are_refused_even_if_the_schema_allows_extras():
    with pytest.raises(ArgumentError, match="unknown parameter 'x'"):
        validate({"x": 1}, {"type": "object", "properties": {}, "additionalProperties": True}, "arguments", top=True)
