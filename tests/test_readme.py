"""README's promises hold: its main command runs as written on a fresh workspace (builtin provider)."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)


def test_readme_gives_the_main_command_and_the_test_command():
    blocks = bash_blocks()
    assert blocks[0].startswith("pip install -e . && skiller init ws && skiller run -w ws")
    assert blocks[1] == "pip install -e '.[test]' && python -m pytest -q"
    assert "python -m pytest -q" in (REPO / ".ci" / "run").read_text()


def test_main_command_runs_as_written(tmp_path):
    """The whole default job (installation is what CI just did): about a minute and a half."""
    command = bash_blocks()[0].split("&&", 1)[1].strip()
    env = {k: v for k, v in os.environ.items() if "KEY" not in k}
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tasks by environment" in done.stdout
    out = tmp_path / "ws" / "outputs"
    servers = [p.stem for p in (out / "mcp_servers").glob("*.py")]
    assert len([s for s in servers if "_" not in s]) == 10
    assert all((out / "mcp_servers" / f"{s}.sqlite").is_file() for s in servers)
    combos = json.loads((out / "cross_domain_templates" / "_combinations.json").read_text())
    assert len(combos["selected"]) >= 20 and len([s for s in servers if "_" in s]) == len(combos["selected"])
    results = [json.loads(l) for l in (out / "evaluation" / "results.jsonl").read_text().splitlines()]
    assert len(results) >= 200 and all(r["reward"] == 1.0 for r in results)
