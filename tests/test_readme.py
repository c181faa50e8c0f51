"""README's promises hold: CI runs its commands as written, and what they need is what `pip install -e .` installs.

The main command itself runs in `.ci/run` (in a fresh venv with only the runtime dependencies), not
in this suite, whose venv also holds the test extra and so could not prove it."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME = ("events", "store", "statemachine", "steps", "servers", "rollout", "evaluator", "skiller")


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)


def test_readme_gives_the_main_command_and_the_test_command():
    blocks = bash_blocks()
    assert blocks[0].startswith("pip install -e . && skiller init ws && skiller run -w ws")
    assert blocks[1] == "pip install -e '.[test]' && python -m pytest -q -n 2 --dist worksteal"


def test_ci_runs_exactly_the_readmes_commands():
    for n, block in enumerate(bash_blocks()[:2]):
        printed = subprocess.run([sys.executable, str(REPO / ".ci" / "readme_block.py"), str(n)],
                                 capture_output=True, text=True, check=True, timeout=60).stdout
        assert printed == block + "\n"
    ci = (REPO / ".ci" / "run").read_text()
    assert "readme_block.py 0" in ci and "readme_block.py 1" in ci
    # The main command runs in its own fresh venv, before and apart from the test extra.
    assert ci.index("run-venv") < ci.index("test-venv") and ".[test]" not in ci


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _distribution(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imports(tree: ast.AST):
    """(top-level module name, imported inside a function?) for every absolute import of a module."""
    lazy = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f)}
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        for name in names:
            yield name.split(".")[0], id(node) in lazy


def test_every_module_the_runtime_imports_is_a_runtime_dependency():
    """Module-level imports need a runtime dependency; an import deferred into a function may come
    from an optional extra instead (pyarrow for `export --format hf`), which then says how to install it."""
    declared = {_distribution(r) for r in _project()["dependencies"]}
    extras = {_distribution(r) for reqs in _project()["optional-dependencies"].values() for r in reqs}
    # pytest is imported by no module here, yet the sandbox runs every generated test suite with it.
    assert "pytest" in declared
    owners = importlib.metadata.packages_distributions()
    stdlib = sys.stdlib_module_names
    missing = set()
    for package in RUNTIME:
        for path in (REPO / package).rglob("*.py"):
            for top, deferred in _imports(ast.parse(path.read_text())):
                if top in stdlib or top in RUNTIME or top == "__future__":
                    continue
                dists = {d.lower().replace("_", "-") for d in owners.get(top, [top])}
                allowed = declared | extras if deferred else declared
                if not dists & allowed and not _required_by_a_dependency(dists, allowed):
                    missing.add(f"{path.relative_to(REPO)} imports {top}")
    assert sorted(missing) == []


def _required_by_a_dependency(dists: set[str], declared: set[str]) -> bool:
    """uvicorn and friends come with mcp: a module a declared dependency installs is installed."""
    for name in declared:
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        if {_distribution(r) for r in requires if "extra ==" not in r} & dists:
            return True
    return False


def test_the_test_command_prints_pytests_summary_line(tmp_path):
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "-q" not in str(options.get("addopts", ""))  # the README's -q already; twice hides the summary
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layers.py"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert re.search(r"^\d+ passed in [\d.]+s", done.stdout.strip().splitlines()[-1])
