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


def test_yaml_exponents_are_numbers(tmp_path):
    """YAML 1.1 reads 1e-4 (no dot) as the string '1e-4': it is the number the user meant."""
    (tmp_path / "c.yaml").write_text("train:\n  learning_rate: 1e-4\n  lr_min: 1.0e-6\n  steps: 10\n"
                                     "model:\n  channels: [4, 8]\n  freq_bins: 64\n  frames: 16\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.train.learning_rate == 1e-4 and type(cfg.train.learning_rate) is float
    assert cfg.train.lr_min == 1e-6 and cfg.train.steps == 10 and cfg.model.channels == (4, 8)


@pytest.mark.parametrize("section, line, key", [
    ("train", 'steps: "ten"', "train.steps = 'ten'"),
    ("train", "batch_size: 2.5", "train.batch_size = 2.5"),
    ("train", "learning_rate: fast", "train.learning_rate = 'fast'"),
    ("data", "validation: amy", "data.validation = 'amy'"),
    ("data", "channel_swap: maybe", "data.channel_swap = 'maybe'"),
    ("model", "channels: [4, x]", "model.channels.1 = 'x'"),
    ("train", "steps: yes", "train.steps = True"),        # YAML 1.1's yes is true, which is not 1 step
    ("data", "gain_db: false", "data.gain_db = False"),
    ("train", "loss: all", "train.loss = 'all'"),
    ("data", "dataset_weights: [yes, 3]", "data.dataset_weights = [True, 3]"),  # not the weight 1
    ("data", "speed_shift: -4", "data.speed_shift = -4.0"),  # a shift either way is given as its size
    ("data", "time_stretch: 0.6", "data.time_stretch = 0.6"),
    ("data", "effect_probability: 2", "data.effect_probability = 2.0"),
])
def test_wrong_types_and_ranges_are_one_line_errors(tmp_path, section, line, key):
    path = tmp_path / "bad.yaml"
    path.write_text(f"{section}:\n  {line}\n")
    with pytest.raises(VocalsepError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: {key}: ") and "\n" not in str(e.value)
    res = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "run"), "--config", str(path)])
    assert res.exit_code == 1 and res.output.strip() == f"Error: {e.value}"
    assert not (tmp_path / "run").exists()


def test_data_on_the_command_line_drops_the_configs_dataset_weights(tmp_path):
    """The config's weights were for its own data sets: --data replaces both (--dataset-weight gives new ones)."""
    cfg = tmp_path / "w.yaml"
    cfg.write_text("data:\n  datasets: [a, b]\n  dataset_weights: [1, 3]\n")
    missing = tmp_path / "nowhere"
    run = ["train", "--out", str(tmp_path / "run"), "--config", str(cfg), "--data", str(missing)]
    res = CliRunner().invoke(main, run)  # gets as far as the data: the weights were dropped with a and b
    assert res.exit_code == 1 and res.output.strip() == f"Error: {missing}: data folder does not exist"
    res = CliRunner().invoke(main, run + ["--dataset-weight", "1", "--dataset-weight", "2"])
    assert res.exit_code == 1 and "data.dataset_weights has 2 values for 1 data set;" in res.output
    assert res.output.strip().count("\n") == 0 and not (tmp_path / "run").exists()
