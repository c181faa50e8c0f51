"""Workspace presets: `skiller init --preset volume` writes a config for ≥100 environments, mostly fused tasks."""
from __future__ import annotations

from skiller.world.catalog import load_catalog
from skiller.config import load_config
from skiller.workspace import DEFAULT_YAML
from tests.conftest import cli


def test_volume_preset_resolves_to_at_least_100_environments_and_mostly_fused_tasks(tmp_path, capsys):
    root = tmp_path / "ws"
    assert cli("init", str(root), "--preset", "volume") == 0
    config = load_config(root / "skiller.yaml")
    s01 = config.steps.s01
    assert s01.num_domains <= len(load_catalog())  # every one a catalog domain
    assert s01.num_domains * (1 + s01.variants_per_domain) >= 100
    assert config.provider.name == "builtin" and config.rollout.agent == "oracle" and config.rollout.in_run
    single = s01.num_domains * (1 + s01.variants_per_domain) * config.steps.s14.templates_per_domain
    fused = config.fusion.num_combinations * config.fusion.templates_per_fusion
    assert config.fusion.enabled and fused / (fused + single) >= 0.55  # ≥45% survive as cross-domain tasks
    assert single + fused >= 11_500 * 1.25  # headroom for templates that do not validate


def test_default_init_is_unchanged_and_a_preset_never_overwrites_a_config(tmp_path, capsys):
    assert cli("init", str(tmp_path / "a")) == 0
    assert (tmp_path / "a" / "skiller.yaml").read_text() == DEFAULT_YAML
    assert cli("init", str(tmp_path / "b"), "--preset", "volume") == 0
    assert cli("init", str(tmp_path / "a"), "--preset", "volume") == 2  # never overwrites a config
    assert "preset would replace it" in capsys.readouterr().err
    assert (tmp_path / "a" / "skiller.yaml").read_text() == DEFAULT_YAML
