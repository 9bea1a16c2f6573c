"""Ensembles: Separator([a, b]) and ``-m a -m b`` average the members' masks on the model grid."""

from __future__ import annotations

import numpy as np
import pytest

from vocalsep import Separator, VocalsepError
from vocalsep.evaluate import make_estimator

from .conftest import make_audio, save_tiny_model, tiny_configs


@pytest.fixture(scope="module")
def second_model(tmp_path_factory):
    """Another tiny U-Net on the same grid, its weights drawn with another seed."""
    return save_tiny_model(tmp_path_factory.mktemp("second") / "second.vsep", seed=1)


def test_masks_are_the_mean_of_the_members(tiny_model, second_model, rng):
    x = make_audio(rng, 2.0, 8192, 1)
    a, b = Separator(tiny_model).model_masks(x), Separator(second_model).model_masks(x)
    assert np.abs(a - b).mean() > 1e-3  # two different networks, or the test proves nothing
    ens = Separator([tiny_model, second_model])
    np.testing.assert_allclose(ens.model_masks(x), (a + b) / 2, atol=1e-6)
    # one member is that member
    np.testing.assert_array_equal(Separator([second_model]).model_masks(x), b)


def test_ensemble_separates_with_the_mean_mask(tiny_model, second_model, rng):
    x = make_audio(rng, 1.5, 22050, 2)
    single = [Separator(m, block_seconds=10) for m in (tiny_model, second_model)]
    ens = Separator([tiny_model, second_model], block_seconds=10)
    v, a = ens.separate(x, 22050)
    assert np.abs(v + a - x).max() < 1e-6
    # one block: the first member's full-band stage on the members' mean mask (computed member by member)
    masks = [s._block_masks(x, 22050) for s in single]
    expected = single[0].frontend.full_band(x, (masks[0] + masks[1]) / 2, 22050)
    np.testing.assert_allclose(v, expected, atol=1e-5)
    for s in single:
        assert np.abs(s.separate(x, 22050)[0] - v).max() > 1e-4


def test_members_on_another_grid_are_refused(tiny_model, tmp_path):
    import keras

    from vocalsep.config import SpectralConfig
    from vocalsep.model import ModelFile, build_unet

    keras.utils.set_random_seed(0)
    _, model = tiny_configs()
    other = tmp_path / "other-hop.vsep"
    ModelFile.from_keras(build_unet(model), SpectralConfig(sample_rate=8192, n_fft=128, hop_length=64), model,
                         info={}).save(other)
    with pytest.raises(VocalsepError, match="other-hop.vsep: cannot join an ensemble with .*tiny.vsep.*hop 64"):
        Separator([tiny_model, other])
    with pytest.raises(VocalsepError, match="at least one"):
        Separator([])


def test_context_is_the_widest_members(tiny_model, tmp_path):
    import dataclasses

    import keras

    from vocalsep.model import ModelFile, build_unet

    spectral, model = tiny_configs()
    wide = dataclasses.replace(model, frames=2 * model.frames)  # patches twice as long: twice the context
    keras.utils.set_random_seed(0)
    path = tmp_path / "wide.vsep"
    ModelFile.from_keras(build_unet(wide), spectral, wide, info={}).save(path)
    narrow_s, wide_s = Separator(tiny_model), Separator(path)
    assert wide_s.overlap_seconds > narrow_s.overlap_seconds
    assert Separator([tiny_model, path]).overlap_seconds == wide_s.overlap_seconds
    assert Separator([path, tiny_model]).overlap_seconds == wide_s.overlap_seconds


def test_cli_ensemble_records_both_models(tiny_model, second_model, write_audio, tmp_path):
    from click.testing import CliRunner

    from vocalsep.cli import main

    song = write_audio(tmp_path / "song.wav", seconds=1.0, sr=16000, channels=2)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["separate", str(song), "-o", str(out), "-m", str(tiny_model), "-m",
                                    str(second_model), "-q"])
    assert res.exit_code == 0, res.output
    assert (out / "song" / "vocals.wav").exists() and (out / "song" / "accompaniment.wav").exists()
    # the same song again with one of the two models: made by another model, not taken for done
    res = CliRunner().invoke(main, ["separate", str(song), "-o", str(out), "-m", str(tiny_model), "-q"])
    assert res.exit_code != 0 and f"model {tiny_model} + {second_model}" in res.output
    est = make_estimator("model", [tiny_model, second_model])
    assert est.describe()["model"] == f"{tiny_model} + {second_model}"
