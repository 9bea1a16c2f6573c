"""Model files that must not be trusted (issue 17 items 6, 10, 12; issue 15): diverged or damaged weights,
crafted config.json and members, a LiteRT part that does not fit, and the Keras fallback when the LiteRT
runtime is missing.  Each gets a one-line VocalsepError naming the file, never a traceback, a hang or an
untrained network's output."""

from __future__ import annotations

import io
import json
import sys
import zipfile

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vocalsep import Separator, VocalsepError
from vocalsep.cli import main
from vocalsep.model import ModelFile, build_unet, weight_shapes

from .conftest import make_audio, tiny_configs
from .test_train import TINY, song


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(path, parts: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, b in parts.items():
            z.writestr(n, b)
    return path


def with_config(tiny_model, tmp_path, change) -> object:
    """The tiny model file with its config.json changed by ``change(dict)``."""
    parts = members(tiny_model)
    cfg = json.loads(parts["config.json"])
    change(cfg)
    parts["config.json"] = json.dumps(cfg).encode()
    return write_zip(tmp_path / "crafted.vsep", parts)


def sdr(ref, est):
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-20))


# -- diverged training and damaged weights (item 6) ----------------------------------------------------
def test_diverged_training_writes_no_model(tmp_path):
    """``train --lr 1e9``: the weights go NaN/inf while the loss can stay finite; no model is written."""
    for i in range(4):
        song(tmp_path / "stems", f"singer_{i // 2 + 1}_{i % 2 + 1:02d}", i)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "stems"), "--config", str(tmp_path / "tiny.yaml"),
                                  "--out", str(out), "--lr", "1e9", "--seed", "0"])
    assert r.exit_code == 1, r.output
    assert "Model written" not in r.output and "diverged" in r.output and "Traceback" not in r.output
    assert [line for line in r.output.splitlines() if line.startswith("Error:")][0].count("diverged") == 1
    assert not (out / "model.vsep").exists() and not (out / "best.vsep").exists()


def test_save_refuses_weights_that_are_not_finite(tmp_path):
    sp, mc = tiny_configs()
    weights = [np.zeros(s, np.float32) for s in weight_shapes(mc)]
    for bad in (np.nan, np.inf, 1e6):  # 1e6 is finite in float32 but infinite in the file's float16
        w = [a.copy() for a in weights]
        w[3][0] = bad
        with pytest.raises(VocalsepError, match="not written.*NaN or infinite"):
            ModelFile(sp, mc, w).save(tmp_path / "m.vsep")
        assert not (tmp_path / "m.vsep").exists() and not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory):
    """A model file as a bit flip or a diverged run that bypassed the checks would leave it: one NaN bias,
    in the weights and in the LiteRT model."""
    import keras

    keras.utils.set_random_seed(0)
    sp, mc = tiny_configs()
    m = build_unet(mc)
    layer = m.get_layer("dec2_deconv")
    k, b = layer.get_weights()
    b[0] = np.nan
    layer.set_weights([k, b])
    mf = ModelFile.from_keras(m, sp, mc)
    buf = io.BytesIO()
    np.savez(buf, *[np.asarray(w, np.float16) for w in mf.weights])
    cfg = {"format": 2, "spectral": vars(sp), "model": mc.to_dict(), "info": {}}
    parts = {"config.json": json.dumps(cfg).encode(), "weights.npz": buf.getvalue(), "model.tflite": mf.tflite}
    return write_zip(tmp_path_factory.mktemp("nan") / "nan.vsep", parts)


def test_load_rejects_weights_that_are_not_finite(nan_model):
    with pytest.raises(VocalsepError, match="NaN or infinite") as e:
        ModelFile.load(nan_model)
    assert str(nan_model) in str(e.value)
    with pytest.raises(VocalsepError, match="NaN or infinite"):
        Separator(nan_model, backend="keras")


def test_separation_refuses_output_that_is_not_finite(nan_model, rng, tmp_path, write_audio):
    """LiteRT reads only the LiteRT part: its NaN output is refused, naming the model file, and no file is
    written."""
    sep = Separator(nan_model, backend="litert")
    with pytest.raises(VocalsepError, match="NaN or infinite") as e:
        sep.separate(make_audio(rng, 0.5, 22050, 2), 22050)
    assert str(nan_model) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(VocalsepError, match="NaN or infinite"):
        sep.separate_file(write_audio("s.wav", 0.5), tmp_path / "out" / "s")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.wav"))


# -- the Keras fallback (issue 15) ---------------------------------------------------------------------
def test_auto_without_the_litert_runtime_runs_the_trained_weights(tiny_model, rng, monkeypatch):
    """With ai_edge_litert not importable, ``auto`` falls back to Keras with the file's weights: the same
    audio as LiteRT, not an untrained network's."""
    x = make_audio(rng, 1.5, 22050, 2)
    lite = Separator(tiny_model, backend="litert")
    assert lite.runner.name == "litert"
    v_lite, _ = lite.separate(x, 22050)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    fallback = Separator(tiny_model)
    assert fallback.runner.name == "keras"
    v_keras, _ = fallback.separate(x, 22050)
    assert sdr(v_lite, v_keras) > 60


def test_the_keras_runner_never_runs_without_weights(tiny_model):
    from vocalsep.runners import KerasRunner

    with pytest.raises(VocalsepError, match="needs the model's weights"):
        KerasRunner(ModelFile.load(tiny_model, weights=False))


# -- crafted files (items 10, 12) ----------------------------------------------------------------------
CRAFTED_CONFIGS = {
    "sample_rate NaN": (lambda c: c["spectral"].update(sample_rate=float("nan")), "spectral.sample_rate"),
    "sample_rate string": (lambda c: c["spectral"].update(sample_rate="16k"), "spectral.sample_rate"),
    "zero n_fft": (lambda c: c["spectral"].update(n_fft=0), "spectral.n_fft"),
    "hop over n_fft": (lambda c: c["spectral"].update(hop_length=4096), "spectral.hop_length"),
    "huge freq_bins": (lambda c: c["model"].update(freq_bins=2 ** 20), "model.freq_bins"),
    "zero frames": (lambda c: c["model"].update(frames=0), "model.frames"),
    "channels of strings": (lambda c: c["model"].update(channels=["a", "b"]), "model.channels"),
    "huge channels": (lambda c: c["model"].update(channels=[4, 2 ** 20]), "model.channels"),
    "dropout 2": (lambda c: c["model"].update(dropout=2), "model.dropout"),
    "unknown key": (lambda c: c["model"].update(wings=3), "unknown model setting"),
    "model a list": (lambda c: c.update(model=[1, 2]), "model must be a mapping"),
    "not a multiple": (lambda c: c["model"].update(frames=18), "multiples of stride"),
    "config a list": (lambda c: (c.clear(), c.update({"format": 1, "spectral": [], "model": {}})), "spectral"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED_CONFIGS))
def test_crafted_config_is_refused_at_load(tiny_model, tmp_path, case):
    change, problem = CRAFTED_CONFIGS[case]
    path = with_config(tiny_model, tmp_path, change)
    with pytest.raises(VocalsepError) as e:
        ModelFile.load(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and problem in msg and "\n" not in msg and len(msg) < 300


def test_members_are_bounded_before_they_are_read(tiny_model, tmp_path, monkeypatch):
    """A config.json or weights.npz beyond what the settings need is refused from its declared size, unread."""
    parts = members(tiny_model)
    cfg = json.loads(parts["config.json"])
    cfg["info"] = {"pad": " " * (2 << 20)}  # compresses to a few kB
    big_cfg = write_zip(tmp_path / "big_cfg.vsep", {**parts, "config.json": json.dumps(cfg).encode()})
    buf = io.BytesIO()
    np.savez(buf, *[np.zeros(s, np.float16) for s in weight_shapes(tiny_configs()[1])], np.zeros(5_000_000, np.float16))
    big_w = write_zip(tmp_path / "big_w.vsep", {**parts, "weights.npz": buf.getvalue()})
    read = []
    real_read = zipfile.ZipExtFile.read
    monkeypatch.setattr(zipfile.ZipExtFile, "read", lambda self, n=-1: read.append(self.name) or real_read(self, n))
    with pytest.raises(VocalsepError, match=r"config.json is \d+ bytes, more than"):
        ModelFile.load(big_cfg)
    with pytest.raises(VocalsepError, match=r"weights.npz is \d+ bytes, more than"):
        ModelFile.load(big_w)
    assert read == ["config.json"]  # the oversized members were never read


def test_a_config_nested_too_deep_is_refused(tiny_model, tmp_path):
    parts = members(tiny_model)
    path = write_zip(tmp_path / "deep.vsep", {**parts, "config.json": b"[" * 200_000 + b"]" * 200_000})
    with pytest.raises(VocalsepError, match="not a vocalsep model file"):
        ModelFile.load(path)


def test_weights_of_another_shape_are_refused_at_load(tiny_model, tmp_path):
    parts = members(tiny_model)
    buf = io.BytesIO()
    np.savez(buf, *[np.zeros(s[:-1] + (s[-1] + 1,), np.float16) for s in weight_shapes(tiny_configs()[1])])
    path = write_zip(tmp_path / "other.vsep", {**parts, "weights.npz": buf.getvalue()})
    with pytest.raises(VocalsepError, match="does not fit the network"):
        ModelFile.load(path)


@pytest.mark.parametrize("tflite", [b"", b"\x00" * 64, "other shape"])
def test_a_litert_part_that_is_damaged_or_does_not_fit_is_refused(tiny_model, tmp_path, tflite):
    parts = members(tiny_model)
    if tflite == "other shape":  # the LiteRT model of 16-frame patches under a config of 32 frames
        cfg = json.loads(parts["config.json"])
        cfg["model"]["frames"] = 32
        parts["config.json"] = json.dumps(cfg).encode()
        parts["weights.npz"] = members(tiny_model)["weights.npz"]
        match = "does not take the inputs"
    else:
        parts["model.tflite"] = tflite
        match = "damaged LiteRT model"
    path = write_zip(tmp_path / "lite.vsep", parts)
    with pytest.raises(VocalsepError, match=match) as e:
        Separator(path, backend="litert")
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_model_paths_that_are_not_regular_files(tmp_path):
    for p in (tmp_path, "/dev/null"):
        with pytest.raises(VocalsepError, match="not a regular file"):
            ModelFile.load(p)


def test_a_truncated_checkpoint_on_resume_is_one_line(tmp_path):
    """Also: the resumed run removes the temporary files that a killed run left beside its checkpoint,
    and only those."""
    import os
    import subprocess

    from vocalsep.train import CHECKPOINT, train

    from .test_train import tiny_cfg

    for i in range(2):
        song(tmp_path / "stems", f"s{i}", i)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    good = io.BytesIO()
    np.savez(good, model_0=np.zeros(1000, np.float32), meta=np.array("{}"))
    (run_dir / CHECKPOINT).write_bytes(good.getvalue()[:2000])  # cut short, as by a full disk
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = run_dir / f".{CHECKPOINT}.{dead.pid}.x1y2z3.part"     # left by a kill -9 while saving
    live = run_dir / f".model.vsep.{os.getppid()}.x1y2z3.part"    # a live process's
    stale.write_bytes(b"x" * 1000)
    live.write_bytes(b"x")
    with pytest.raises(VocalsepError, match="unreadable checkpoint") as e:
        train(tiny_cfg([tmp_path / "stems"]), run_dir, resume=True, progress=False)
    assert str(run_dir / CHECKPOINT) in str(e.value)
    assert not stale.exists() and live.exists()


def test_save_new_never_replaces_a_file(tiny_model, tmp_path):
    from vocalsep.model import ModelFile

    mf = ModelFile.load(tiny_model)
    out = tmp_path / "new.vsep"
    mf.save_new(out)
    assert ModelFile.load(out).tflite == mf.tflite
    before = out.read_bytes()
    with pytest.raises(VocalsepError, match="new.vsep: exists; give a new file"):
        mf.save_new(out)
    assert out.read_bytes() == before
    with pytest.raises(VocalsepError, match="cannot be written"):
        mf.save_new(tmp_path / "no" / "such.vsep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.vsep"]  # no temporary file left
