"""The fold is pure and replays the log into machine states and LLM usage."""
import json
import random
from collections import Counter

from skiller.events import EventRow, Projection, fold


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


def _random_rows(seed: int, n: int) -> list:
    rng = random.Random(seed)
    rows, streams = [], []
    states = ["a", "b", "c", "d"]
    for seq in range(1, n + 1):
        roll = rng.random()
        if roll < 0.2 or not streams:
            kind = rng.choice(["domain", "fusion", "task"])
            stream = f"{kind}:{seq}"
            parent = rng.choice([None, "domain:x", "fusion:y"]) if kind == "task" else None
            # Sometimes a machine is created again under the same stream: the census must move it, not add it.
            if streams and rng.random() < 0.1:
                stream = rng.choice(streams)
            streams.append(stream)
            inputs = {"parent": parent} if parent else {}
            rows.append(row(seq, stream, "MachineCreated", {"kind": kind, "initial": "a", "inputs": inputs},
                            {"x": str(seq)}))
        elif roll < 0.8:
            rows.append(row(seq, rng.choice(streams), "Transitioned", {"n": seq}, {"y": str(seq)}, "t", "?",
                            rng.choice(states)))
        elif roll < 0.9:
            rows.append(row(seq, rng.choice(streams), "StepFailed", {"step": "s", "kind": "tool", "error": f"e{seq}"}))
        else:
            rows.append(row(seq, "world", "LLMCalled", {"provider": "p", "model": "m", "input_tokens": seq}))
    return rows


def test_fold_resumed_at_any_point_equals_the_full_fold_and_keeps_an_exact_census():
    for seed in range(20):
        rows = _random_rows(seed, 400)
        whole = fold(rows)
        part = Projection()
        cut = 0
        rng = random.Random(seed)
        while cut < len(rows):  # fold in random slices, as the scheduler does after each commit
            step = rng.randint(1, 30)
            fold(rows[cut:cut + step], into=part)
            cut += step
        assert part == whole
        recount = Counter((m.kind, (m.inputs.get("parent") or "").partition(":")[0], m.state)
                          for m in whole.machines.values())
        assert whole.census == dict(recount)
        assert whole.count("task", ["a", "b"], parent="domain") == sum(
            1 for m in whole.machines.values()
            if m.kind == "task" and m.state in ("a", "b") and m.inputs.get("parent") == "domain:x")
