"""Configs: the shipped ones found by name from anywhere, and one-line errors for wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vocalsep.cli import main
from vocalsep.config import CONFIG_DIR, find_config, load_config
from vocalsep.errors import VocalsepError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_are_the_checkouts():
    shipped = sorted(p.relative_to(CONFIG_DIR) for p in CONFIG_DIR.rglob("*.yaml"))
    assert shipped and shipped == sorted(p.relative_to(ROOT / "configs") for p in (ROOT / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("name, file", [("unet", "unet.yaml"), ("default.yaml", "default.yaml"),
                                        ("configs/holdout.yaml", "holdout.yaml"),
                                        ("ablations/short", "ablations/short.yaml")])
def test_config_by_name_from_anywhere(tmp_path, monkeypatch, name, file):
    want = load_config(ROOT / "configs" / file)
    monkeypatch.chdir(tmp_path)  # no configs/ here
    assert find_config(name) == CONFIG_DIR / file
    assert load_config(name) == want  # 'extends' (short.yaml extends default.yaml) works too


def test_a_path_comes_first(tmp_path, monkeypatch):
    (tmp_path / "unet.yaml").write_text("train:\n  steps: 3\n")
    monkeypatch.chdir(tmp_path)
    assert load_config("unet.yaml").train.steps == 3   # the file here, not the shipped one
    assert load_config("unet").train.steps == load_config(ROOT / "configs" / "unet.yaml").train.steps


def test_unknown_config_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VocalsepError, match=r"nope: no such config file, nor a config shipped .*unet"):
        load_config("nope")
    res = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "run"), "--config", "nope"])
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0 and "unet" in res.output
