"""τ²-bench export, the words: each package's README, the index README and the `run_tau2.py` launcher."""
from __future__ import annotations

from typing import Any

from skiller.formats.common import py_literal


def domain_readme(f: dict[str, Any]) -> str:
    d = f["domain"]
    members = " + ".join(f["members"])
    return f"""# {f['environment']} — a τ²-bench domain exported by Skiller

Environment `{f['environment']}` ({'fusion of ' + members if len(f['members']) > 1 else 'single domain'}):
{f['tools']} tools ({f['tools'] - f['write_tools']} read, {f['write_tools']} write), {f['tables']} tables with
{f['rows']} rows, {f['tasks']} validated tasks.

| file | what |
|---|---|
| `db.json` | the initial database: every table's rows keyed by primary key |
| `data_model.py` | `{f['db_class']}`, the pydantic model of `db.json` (a τ²-bench `DB`), and the SQLite schema |
| `tools.py` | `{f['toolkit']}`: one method per tool, tagged `ToolType.READ` or `ToolType.WRITE` |
| `policy.md` | the policy the agent follows |
| `tasks.json`, `split_tasks.json` | the tasks in τ²-bench's schema; split `base` holds them all |
| `environment.py` | `get_environment`, `get_tasks`, `get_tasks_split`, `register` |
| `impl_*.py`, `skiller_worker.py`, `_skiller_runtime.py` | the Skiller implementation the tools run on (stdlib only) |
| `_tau2_compat.py` | stand-ins used only when τ²-bench is not installed |

## Use it with τ²-bench

```python
import sys
sys.path.insert(0, "<the folder holding {d}/>")
import {d}
{d}.register()          # adds "{d}" to tau2.registry.registry
```

then run τ²-bench in the same process, or use the launcher one folder up:
`python run_tau2.py run --domain {d} --agent-llm <model> --user-llm <model>`.
To add the domain to a τ²-bench checkout instead, copy the Python files to
`src/tau2/domains/{d}/`, the data files to `data/tau2/domains/{d}/` (adjust `utils.py`), and add
`register()`'s two calls to `src/tau2/registry.py`.

## Without τ²-bench

```python
from {d}.data_model import {f['db_class']}, get_db
from {d}.tools import {f['toolkit']}
tools = {f['toolkit']}(get_db())
print(tools.use_tool("<tool name>", **{{}}))   # a JSON string
```

## What to know
- Tools return JSON strings (keys sorted), which τ²-bench passes through unchanged, so replaying a
  call gives back exactly the recorded text. A refused call raises `ToolCallError` and changes nothing.
- The tools run Skiller's implementation on an in-memory SQLite copy of the pydantic database; after
  a call that changed rows the database object is rebuilt, so τ²-bench's DB hash sees every write.
- Every task's golden actions were executed by Skiller; `annotations.skiller` keeps their recorded
  outputs, the first query, the facts the user may disclose, and the initial and gold state hashes
  (Skiller's canonical SQLite hash: `tools.to_sqlite(path)` writes the file it reads).
- Skiller's OUTPUT reward component has no τ²-bench equivalent and is left out of `reward_basis`
  (the original basis is in `annotations.skiller.reward_basis`).
"""


def index_readme(envs: list[dict[str, Any]]) -> str:
    rows = "\n".join(f"| `{f['domain']}` | {f['environment']} | {f['tools']} ({f['write_tools']} write) | "
                     f"{f['tables']} | {f['tasks']} |" for f in envs)
    return f"""# τ²-bench domains exported by Skiller

Each folder is a τ²-bench domain package: database (`db.json`) and pydantic model, a toolkit with
read/write-tagged tools, `policy.md`, `tasks.json` and `split_tasks.json`. See a folder's README.

| package | environment | tools | tables | tasks |
|---|---|---|---|---|
{rows}

Run τ²-bench on them (τ²-bench installed, this folder as the working directory):

```bash
python run_tau2.py run --domain {envs[0]['domain']} --agent-llm <model> --user-llm <model> --num-trials 4
```

`run_tau2.py` registers every package here with τ²-bench's registry and hands its arguments to
τ²-bench's own command line.
"""


def launcher(domains: list[str]) -> str:
    return f'''"""Registers the τ²-bench domains Skiller exported into this folder, then runs τ²-bench's command line.

    python run_tau2.py run --domain <package> --agent-llm <model> --user-llm <model>
"""
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOMAINS = {py_literal(domains)}


def register_all(registry=None) -> None:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    for name in DOMAINS:
        importlib.import_module(name).register(registry)


if __name__ == "__main__":
    from tau2.cli import main

    register_all()
    main()
'''
