"""Counts the slips in a workspace's first messages (every task's opening customer message, outputs/queries/*.jsonl):
what models trained on the data learn customers sound like.

1. article: 'an unit', 'a appointment' (the article goes by the sound: 'a unit', 'an hour');
2. doubled word: 'the storage unit unit size';
3. who + -ing: "I'm someone who moving and needs ...";
4. pronoun case: "what me ask for", "lets I do this";
5. first/second X: "book a consultation with a doctor for a first doctor. ... the same for a second doctor";
6. broken noun phrase: "the kind of a provider of care provider", "the plan name of the pet plan", three 'of's;
7. dangling value: a value dropped with the ids ("my only reservation in status?", "a price of at most.");
8. question without "?": "May I ask the price of an exhibition."
9. change close on a read: a request that changes nothing closing with "And tell me exactly what you changed."

Usage: python bench/first_messages.py WORKSPACE [--show N]  (counts per flaw, and N example messages of each)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from skiller.contract.wording import FLAWS, first_message_flaws


def _writes(row: dict[str, Any]) -> bool:
    """Whether the task asks for a change: a golden write, or a refused request (it asked for one)."""
    info = row.get("task_info") or {}
    actions = (row.get("evaluation_criteria") or {}).get("actions") or []
    return info.get("kind") != "read" or any(a.get("mode") == "write" for a in actions)


def first_messages(workspace: Path) -> list[tuple[str, str, bool]]:
    """(environment, first message, asks for a change) of every task in the workspace."""
    out = []
    for f in sorted((workspace / "outputs" / "queries").glob("*.jsonl")):
        for line in f.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                out.append((f.stem, str(row["messages"][0]["content"]), _writes(row)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print N example messages of each flaw")
    a = parser.parse_args()
    rows = first_messages(a.workspace)
    found = [(env, text, first_message_flaws(text, writes)) for env, text, writes in rows]
    print(f"first messages: {len(rows)}; with any flaw: {sum(1 for _, _, f in found if f)}")
    for flaw in FLAWS:
        hits = [(env, text, f[flaw]) for env, text, f in found if flaw in f]
        print(f"{flaw}: {len(hits)}")
        for env, text, words in hits[:a.show]:
            print(f"    [{env}] {words}: {text}")


if __name__ == "__main__":
    main()
