"""The evaluator imports only what the architecture allows: servers, the LLM interface and libraries."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import skiller.evaluator as evaluator

ALLOWED = {"skiller.evaluator", "skiller.servers", "skiller.contract", "skiller.llm.interface", "pydantic"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_evaluator_modules_import_only_allowed_packages():
    for path in Path(evaluator.__file__).parent.glob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or top == "__future__" or any(
                name == a or name.startswith(a + ".") for a in ALLOWED)
            assert allowed, f"{path.name} imports {name}"


def test_the_public_api_is_curated():
    assert len(set(evaluator.__all__)) == len(evaluator.__all__)
    assert all(hasattr(evaluator, name) for name in evaluator.__all__)
