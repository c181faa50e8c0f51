"""Installed, Skiller adds one import name: the wheel's only top-level package is `skiller`, and it lives
beside an unrelated package called `events` without shadowing it or being shadowed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "skiller", "contract", "events", "llm", "store", "servers", "world",
           "steps", "rollout", "evaluator", "statemachine"]


def run(*argv: str | Path, **kw) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


def build_wheel(tmp: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ or egg-info."""
    src = tmp / "src"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist", src)
    (wheel,) = (tmp / "dist").glob("skiller-*.whl")
    return wheel


def test_the_wheel_installs_one_import_name_beside_a_package_called_events(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"skiller"}
    for inside in ("skiller/events/fold.py", "skiller/steps/s14_task_templates.txt", "skiller/servers/sandbox/child.py",
                   "skiller/world/catalog/domains/health.yaml", "skiller/contract/policy.py", "skiller/llm/interface.py"):
        assert inside in names  # the card's folders, their prompts and catalog data, under the one name

    venv = tmp_path / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)
    (site / "events").mkdir()
    (site / "events" / "__init__.py").write_text('WHO = "an unrelated distribution called events"\n')
    # Skiller's own dependencies come from this test's environment (a path, not its .pth hooks, so the
    # editable checkout stays out of sight).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    probe = """
import events, skiller, skiller.events, skiller.cli
from skiller.world.catalog import load_catalog
from skiller.steps import load_all
assert events.WHO == "an unrelated distribution called events", events.__file__
assert skiller.events.__file__.startswith(SITE) and skiller.cli.__file__.startswith(SITE), skiller.events.__file__
assert len(load_catalog()) >= 31 and len(load_all()) >= 19
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = run(python, "-I", "-c", f"SITE = {str(site)!r}\n" + probe, cwd=tmp_path, env=env)
    assert done.stdout.strip() == "ok"
