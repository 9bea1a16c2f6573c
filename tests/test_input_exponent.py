"""``input_exponent`` of the spectrogram variants: the network sees each normalised patch raised to a power,
while the mask and the loss stay on the magnitudes.  Checked against numpy's power of the patch fed to the
same weights without it, through a model file and LiteRT, and in the config's checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from vocalsep import VocalsepError
from vocalsep.config import load_config
from vocalsep.model import ModelFile, build_model
from vocalsep.models import get_arch

from .test_archs import export_and_compare

ROOT = Path(__file__).resolve().parents[1]


def tiny(name: str, exponent: float):
    return dataclasses.replace(get_arch(name).config.tiny(), arch=name, input_exponent=exponent)


@pytest.mark.parametrize("name, exponent", [("attention-unet", 0.5), ("resunet", 0.7)])
def test_the_network_sees_the_patch_raised_to_the_exponent(name, exponent):
    import keras

    keras.utils.set_random_seed(3)
    plain = build_model(tiny(name, 1.0))
    compressed = build_model(tiny(name, exponent))
    compressed.set_weights(plain.get_weights())  # the power has no weights: the same network otherwise
    x = np.random.default_rng(3).random((2,) + tiny(name, 1.0).io_shapes()[0]).astype(np.float32)
    x[0, :4] = 0.0  # silent bins stay finite
    got = np.asarray(compressed(x, training=False))
    want = np.asarray(plain(np.power(x, exponent), training=False))
    assert np.isfinite(got).all() and np.abs(got - want).max() < 1e-5
    assert np.abs(got - np.asarray(plain(x, training=False))).max() > 1e-3  # it does act


@pytest.mark.parametrize("exponent", [0.5, 0.7])
def test_a_model_file_keeps_it_and_litert_separates_as_keras(exponent, tmp_path):
    path = export_and_compare("attention-unet", tmp_path, input_exponent=exponent)  # LiteRT as Keras, > 60 dB
    back = ModelFile.load(path)
    assert back.model.input_exponent == exponent and back.model == tiny("attention-unet", exponent)


def test_files_written_before_it_see_the_magnitudes_as_they_are():
    shipped = ModelFile.load(ROOT / "vocalsep" / "models" / "default.vsep", weights=False)
    assert shipped.model.arch == "attention-unet" and shipped.model.input_exponent == 1.0


def test_the_key_is_written_only_when_it_is_not_1():
    # a file that leaves it out is read as 1, so older vocalsep versions can still read such files
    assert "input_exponent" not in tiny("attention-unet", 1.0).to_dict()
    assert tiny("attention-unet", 0.5).to_dict()["input_exponent"] == 0.5


@pytest.mark.parametrize("model, message", [
    ({"arch": "attention-unet", "input_exponent": 0}, "input_exponent (0.0) must be in (0, 2]"),
    ({"arch": "attention-unet", "input_exponent": 3}, "input_exponent (3.0) must be in (0, 2]"),
    ({"arch": "unet", "input_exponent": 0.5}, r"unknown key(s) ['input_exponent']"),
])
def test_bad_values_are_one_line_errors(tmp_path, model, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": model}))
    with pytest.raises(VocalsepError) as e:
        load_config(path)
    assert message in str(e.value) and "\n" not in str(e.value)
