"""Print the cross-domain figures of a workspace (issue 12): spread, triples, flows, bridge refusals, citations.

usage: python bench/fusion_figures.py WORKSPACE
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from skiller.servers.fusion import namespace_of
from skiller.store import Store

CITATION = re.compile(r"\bglobal rules? (\d+)", re.I)
NUMBERED = re.compile(r"^\s*(\d+)\.\s", re.M)


def flows_across(task: dict, members: list[str]) -> bool:
    """A record id (not the person id), an amount or a date produced by one member's call is an argument of a
    later call of another member (golden actions, with the outputs s16 recorded)."""
    prefixes = sorted(((namespace_of(m), m) for m in members), key=lambda p: -len(p[0]))
    calls = task["evaluation_criteria"]["actions"]
    owner = [next(m for p, m in prefixes if c["name"].startswith(p)) for c in calls]
    for j, call in enumerate(calls):
        for name, value in call["arguments"].items():
            if name == "person_id":
                continue
            for i in range(j):
                rows = calls[i]["expected"] if isinstance(calls[i]["expected"], list) else [calls[i]["expected"]]
                produced = {json.dumps(v) for r in rows if isinstance(r, dict) for k, v in r.items() if k != "person_id"}
                if owner[i] != owner[j] and json.dumps(value) in produced:
                    return True
    return False


def figures(root: Path) -> dict:
    store = Store(root / "skiller.db")
    proj = store.projection()
    fusions = [m for m in proj.of_kind("fusion")]
    use = Counter(d for f in fusions for d in f.inputs["members"])
    tasks, flowing, refusals, bridge_refusals = 0, 0, 0, 0
    citations_ok = True
    for f in fusions:
        if "policy" in f.artifacts:
            md = json.loads(store.artifact(f.artifacts["policy"]))["markdown"]
            stated = {int(n) for n in NUMBERED.findall(md.split("<!-- GLOBAL_RULES_END -->")[0])}
            citations_ok &= all(int(n) in stated for n in CITATION.findall(md))
        for t in proj.of_kind("task"):
            if t.inputs.get("parent") != f.stream or "task" not in t.artifacts:
                continue
            task = json.loads(store.artifact(t.artifacts["task"]))
            tasks += 1
            flowing += flows_across(task, f.inputs["members"])
            if task["kind"] == "refusal":
                refusals += 1
                bridge_refusals += "-X" in (task.get("violated_rule") or "")
    return {"fusions": len(fusions), "triples": sum(len(f.inputs["members"]) == 3 for f in fusions),
            "domain_use": dict(sorted(use.items())), "max_over_min": round(max(use.values()) / min(use.values()), 2)
            if use else None, "fused_tasks": tasks, "flowing": flowing,
            "flowing_share": round(flowing / tasks, 3) if tasks else None, "refusals": refusals,
            "bridge_refusal_share": round(bridge_refusals / tasks, 3) if tasks else None,
            "citations_resolve": citations_ok}


if __name__ == "__main__":
    print(json.dumps(figures(Path(sys.argv[1])), indent=2))
