"""The fold is pure and replays the log into machine states and LLM usage."""
import json

from events import EventRow, Projection, fold


def row(seq, stream, type_, payload=None, artifacts=None, trigger=None, source=None, dest=None):
    return EventRow(seq, stream, type_, trigger, source, dest, json.dumps(payload or {}),
                    json.dumps(artifacts or {}), "run-0001", "")


def test_fold_puts_each_machine_where_its_last_transition_left_it():
    rows = [
        row(1, "world", "MachineCreated", {"kind": "world", "initial": "seeded"}),
        row(2, "world", "Transitioned", {"attempts": 1}, {"domains": "aa"}, "expand_domains", "seeded", "domains_expanded"),
        row(3, "domain:X", "MachineCreated", {"kind": "domain", "initial": "blueprinted", "inputs": {"domain": "X"}}, {"blueprint": "bb"}),
        row(4, "domain:X", "Transitioned", {}, {"tool_list": "cc"}, "list_tools", "blueprinted", "tools_listed"),
        row(5, "domain:X", "StepFailed", {"step": "s06", "kind": "sandbox", "error": "boom"}),
    ]
    p = fold(rows)
    assert p.machines["world"].state == "domains_expanded"
    assert p.machines["world"].payload == {"attempts": 1}
    assert p.machines["domain:X"].state == "tools_listed"
    assert p.machines["domain:X"].artifacts == {"blueprint": "bb", "tool_list": "cc"}
    assert p.machines["domain:X"].inputs == {"domain": "X"}
    assert p.machines["domain:X"].last_error == "boom"
    assert p.events == 5


def test_fold_sums_llm_usage_per_model_and_counts_cache_hits():
    rows = [row(1, "world", "LLMCalled", {"provider": "anthropic", "model": "m", "input_tokens": 10, "output_tokens": 3}),
            row(2, "world", "LLMCalled", {"provider": "anthropic", "model": "m", "cache_hit": True}),
            row(3, "world", "LLMCalled", {"provider": "builtin", "model": "b", "input_tokens": 1})]
    p = fold(rows)
    assert (p.usage["anthropic/m"].calls, p.usage["anthropic/m"].cache_hits) == (2, 1)
    assert p.usage["anthropic/m"].input_tokens == 10 and p.usage["builtin/b"].input_tokens == 1


def test_fold_is_incremental_equal_to_full():
    rows = [row(1, "world", "MachineCreated", {"kind": "world", "initial": "seeded"}),
            row(2, "world", "Transitioned", {}, {"a": "1"}, "t", "seeded", "domains_expanded")]
    part = fold(rows[:1])
    fold(rows[1:], into=part)
    whole = fold(rows)
    assert part.machines == whole.machines and isinstance(part, Projection)


def test_fold_reads_plain_column_tuples_like_event_rows():
    """The store hands the fold its cursor's tuples (the same columns, no named tuple per event)."""
    rows = [row(1, "world", "MachineCreated", {"kind": "world", "initial": "seeded"}),
            row(2, "world", "LLMCalled", {"provider": "builtin", "model": "b", "input_tokens": 4}),
            row(3, "world", "Transitioned", {"n": 1}, {"a": "1"}, "t", "seeded", "domains_expanded")]
    named, plain = fold(rows), fold(tuple(r) for r in rows)
    assert plain.machines == named.machines and plain.usage == named.usage and plain.events == 3
