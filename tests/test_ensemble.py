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
    other = save_tiny_model(tmp_path / "other-hop.vsep", seed=0, hop_length=64)
    with pytest.raises(VocalsepError, match="other-hop.vsep: cannot join an ensemble with .*tiny.vsep.*hop 64"):
        Separator([tiny_model, other])
    with pytest.raises(VocalsepError, match="at least one"):
        Separator([])


def test_context_is_the_widest_members(tiny_model, tmp_path):
    # patches twice as long: twice the context
    path = save_tiny_model(tmp_path / "wide.vsep", seed=0, frames=2 * tiny_configs()[1].frames)
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


def test_stereo_channels_and_blocks(tiny_model, second_model, rng):
    """A mask per channel, and several streamed blocks: the same as the ensemble's masks of the whole song."""
    x = make_audio(rng, 3.0, 16000, 2)
    whole = Separator([tiny_model, second_model], stereo="channels", block_seconds=10)
    blocks = Separator([tiny_model, second_model], stereo="channels", block_seconds=0.7)
    vw, _ = whole.separate(x, 16000)
    vb, ab = blocks.separate(x, 16000)
    assert np.abs(vb + ab - x).max() < 1e-6
    # channel by channel, each the mean of the members' per-channel masks
    masks = [Separator(m, stereo="channels", block_seconds=10)._block_masks(x, 16000)
             for m in (tiny_model, second_model)]
    assert masks[0].shape[0] == 2
    np.testing.assert_allclose(vw, whole.frontend.full_band(x, (masks[0] + masks[1]) / 2, 16000), atol=1e-5)
    # blocks with the default context: within 40 dB of the whole song (as a single model's blocks are)
    err = np.sum((vb - vw) ** 2) / np.sum(vw ** 2)
    assert err < 1e-4, err


def test_a_file_twice_and_bad_lists(tiny_model, tmp_path):
    with pytest.raises(VocalsepError, match="given twice"):  # the same file under another name, too
        Separator([tiny_model, tiny_model.parent / ".." / tiny_model.parent.name / tiny_model.name])
    with pytest.raises(VocalsepError, match="a model is a file path or a list"):
        Separator({"a": tiny_model})
    with pytest.raises(VocalsepError, match="missing.vsep: model file does not exist"):
        Separator([tiny_model, tmp_path / "missing.vsep"])


def test_order_does_not_change_provenance(tiny_model, second_model):
    a, b = Separator([tiny_model, second_model]), Separator([second_model, tiny_model])
    assert a.model_sha256() == b.model_sha256() != Separator(tiny_model).model_sha256()


@pytest.mark.parametrize("field", ["freq_bins", "sample_rate"])
def test_other_bins_or_rates_are_refused(tiny_model, tmp_path, field):
    other = save_tiny_model(tmp_path / "other.vsep", seed=0, **{field: 32 if field == "freq_bins" else 16384})
    with pytest.raises(VocalsepError, match="other.vsep: cannot join an ensemble"):
        Separator([tiny_model, other])


def test_cli_evaluate_ensemble(tiny_model, second_model, tmp_path):
    import json

    import soundfile as sf
    from click.testing import CliRunner

    from vocalsep.cli import main

    pytest.importorskip("mir_eval")
    rng = np.random.default_rng(5)
    song = tmp_path / "stems" / "song"
    song.mkdir(parents=True)
    t = np.arange(16000) / 8000
    sf.write(song / "vocals.wav", 0.3 * np.sin(2 * np.pi * 330 * t), 8000, subtype="FLOAT")
    sf.write(song / "accompaniment.wav", 0.1 * rng.standard_normal(len(t)), 8000, subtype="FLOAT")

    def gnsdr(*models):
        out = tmp_path / f"r{len(models)}{models[0].stem}.json"
        args = ["evaluate", "--data", str(tmp_path / "stems"), "--protocol", "mir1k", "--out", str(out), "-q"]
        for m in models:
            args += ["-m", str(m)]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        d = json.loads(out.read_text())
        return d["aggregate"]["vocals"]["GNSDR"], d["method"]

    both, method = gnsdr(tiny_model, second_model)
    assert [m["model"] for m in method["members"]] == [str(tiny_model), str(second_model)]
    singles = [gnsdr(m)[0] for m in (tiny_model, second_model)]
    assert all(abs(both - s) > 1e-3 for s in singles)


def test_cli_shipped_ensemble(tiny_model, write_audio, tmp_path):
    """With no model named, the two shipped models separate as an ensemble; --fast takes the first alone."""
    import json

    from click.testing import CliRunner

    from vocalsep.cli import main
    from vocalsep.model import ModelFile, default_model_path, shipped_model_paths

    paths = shipped_model_paths()
    assert paths[0] == default_model_path() and len(paths) == 2
    a, b = (ModelFile.load(p, weights=False) for p in paths)
    assert a.tflite != b.tflite and a.model.arch == b.model.arch  # two trainings of one recipe
    song = write_audio(tmp_path / "song.wav", seconds=1.0, sr=44100, channels=2)

    def made_by(*options):
        out = tmp_path / f"out{len(options)}"
        res = CliRunner().invoke(main, ["separate", str(song), "-o", str(out), "-q", *options])
        assert res.exit_code == 0, res.output
        manifest = json.loads((out / "song" / ".vocalsep-outputs.json").read_text())
        return manifest["outputs"]["vocals.wav"]["model"]

    assert made_by() == f"{paths[0]} + {paths[1]}"
    assert made_by("--fast") == str(paths[0])
    res = CliRunner().invoke(main, ["separate", str(song), "-o", str(tmp_path / "o2"), "--fast",
                                    "-m", str(tiny_model)])
    assert res.exit_code == 2 and "--fast takes the first shipped model alone" in res.output


def test_evaluate_refuses_models_it_would_ignore(tiny_model, tmp_path):
    from click.testing import CliRunner

    from vocalsep.cli import main

    (tmp_path / "est").mkdir()
    for extra in (["--estimates", str(tmp_path / "est"), "--fast"], ["--method", "mixture", "-m", str(tiny_model)],
                  ["--method", "irm", "-m", str(tiny_model)]):  # the oracle mask needs no model's STFT: all share it
        res = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path), *extra])
        assert res.exit_code == 2 and "they mean nothing with --estimates, --method mixture or --method irm" in res.output
