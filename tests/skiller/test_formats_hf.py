"""`skiller export --format hf`: a parquet dataset `datasets.load_dataset` reads with the counts its card states."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import cli

CONFIGS = ("sft", "tasks", "evaluations")

# Loads every config the card declares, by name and as plain parquet files; prints what it read.
LOADER = r"""
import json, sys
from collections import Counter
from datasets import load_dataset
folder, cache, configs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {}
for name, path in configs.items():
    by_name = load_dataset(folder, name=name, split="train", cache_dir=cache)
    by_file = load_dataset("parquet", data_files={"train": f"{folder}/{path}"}, split="train", cache_dir=cache)
    out[name] = {"rows": by_name.num_rows, "file_rows": by_file.num_rows, "columns": by_name.column_names,
                 "per_environment": dict(Counter(by_name["environment"])), "first": by_name[0]}
print(json.dumps(out, default=str))
"""


def _export(root: Path, out: Path) -> dict[str, bytes]:
    assert cli("export", "-w", str(root), "--format", "hf", "--out", str(out)) == 0
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _card(readme: bytes) -> tuple[dict, str]:
    _, header, body = readme.decode().split("---\n", 2)
    return yaml.safe_load(header), body


def _lines(paths) -> list[dict]:
    return [json.loads(line) for p in sorted(paths) for line in p.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def exported(small_run, tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path_factory.mktemp("hf") / "dataset"
    return out, _export(small_run, out)


def test_load_dataset_reads_every_config_with_the_counts_the_card_states(small_run, exported, tmp_path):
    out, files = exported
    header, body = _card(files["README.md"])
    paths = {c["config_name"]: c["data_files"][0]["path"] for c in header["configs"]}
    stated = {i["config_name"]: i["splits"][0]["num_examples"] for i in header["dataset_info"]}
    assert set(paths) == set(stated) == set(CONFIGS)
    env = {**{k: v for k, v in os.environ.items() if "KEY" not in k}, "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    done = subprocess.run([sys.executable, "-c", LOADER, str(out), str(tmp_path / "cache"), json.dumps(paths)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    for name in CONFIGS:
        assert loaded[name]["rows"] == loaded[name]["file_rows"] == stated[name] > 0, name
    # the card's per-environment table states what was loaded
    table = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")]
                                               for line in body.splitlines() if line.startswith("| "))}
    for i, name in enumerate(CONFIGS):
        for environment, count in loaded[name]["per_environment"].items():
            assert int(table[environment][i]) == count, (name, environment)
        assert int(table["**all**"][i]) == stated[name]
    # ... and matches what the reference export wrote from the same log
    outputs = small_run / "outputs"
    assert stated["tasks"] == len(_lines((outputs / "queries").glob("*.jsonl")))
    assert stated["sft"] == len(_lines((outputs / "rollouts").glob("*.jsonl")))
    assert stated["evaluations"] == len(_lines([outputs / "evaluation" / "results.jsonl"]))
    assert "seed: `7`" in body and "```yaml" in body


def test_sft_rows_carry_the_whole_conversation_and_its_tools(small_run, exported, tmp_path):
    out, _ = exported
    assert cli("export", "-w", str(small_run), "--format", "sft", "--out", str(tmp_path / "ref")) == 0
    reference = _lines((tmp_path / "ref" / "sft").glob("*.jsonl"))
    import pyarrow.parquet as pq
    rows = pq.read_table(out / "data/sft/train-00000-of-00001.parquet").to_pylist()
    assert len(rows) == len(reference)
    for row, ref in zip(rows, reference):  # both in environment, then task order
        assert json.loads(row["tools"]) == ref["tools"]
        assert [m["role"] for m in row["messages"]] == [m["role"] for m in ref["messages"]]
        for got, want in zip(row["messages"], ref["messages"]):
            assert got["content"] == want.get("content") and got["tool_call_id"] == want.get("tool_call_id")
            assert (got["tool_calls"] or []) == (want.get("tool_calls") or [])


def test_hf_export_is_byte_identical_across_exports_and_reruns(small_run, small_rerun, exported, tmp_path):
    _, first = exported
    assert _export(small_run, tmp_path / "again") == first
    assert _export(small_rerun, tmp_path / "rerun") == first


def test_hf_export_without_pyarrow_names_the_extra_to_install(small_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    assert cli("export", "-w", str(small_run), "--format", "hf", "--out", str(tmp_path / "x")) == 1
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "pip install -e '.[hf]'" in message
    assert not (tmp_path / "x").exists()  # nothing half-written
