"""vocalsep.train and ``vocalsep train``: a tiny U-Net trained a few steps on synthetic stems written to
tmp_path; the loss falls on one fixed batch; resume continues at the same step (and matches an uninterrupted
run); Ctrl-C or SIGTERM saves a checkpoint and the model; no songs is an error; a few steps on the MUSDB18
preview."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner

from vocalsep import data as datamod
from vocalsep.cli import main
from vocalsep.config import Config, DataConfig, load_config
from vocalsep.errors import VocalsepError
from vocalsep.model import ModelFile

from .conftest import musdb_preview

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY = {
    "spectral": {"sample_rate": 8192, "n_fft": 128, "hop_length": 32},
    "model": {"freq_bins": 64, "frames": 16, "channels": [4, 8], "dropout_layers": 1},
    "data": {"workers": 0, "validation_patches": 8},
    "train": {"batch_size": 4, "steps": 6, "steps_per_epoch": 3, "checkpoint_every": 3, "log_every": 2,
              "learning_rate": 0.003},
}


def song(root: Path, name: str, seed: int, sr: int = 16000, seconds: float = 1.0, channels: int = 1,
         names=("vocals", "accompaniment")) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 200 + 40 * seed
    v = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) for k in (1, 2, 3))
    a = 0.15 * np.sin(2 * np.pi * 90 * t) + 0.03 * rng.standard_normal(len(t))
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for stem, x in zip(names, (v, a)):
        sf.write(d / f"{stem}.wav", np.stack([x] * channels, axis=1).astype(np.float32), sr)


@pytest.fixture
def stems(tmp_path) -> Path:
    root = tmp_path / "stems"
    for i in range(4):
        song(root, f"singer_{i // 2 + 1}_{i % 2 + 1:02d}", i)
    return root


@pytest.fixture
def ccmixter(tmp_path) -> Path:
    root = tmp_path / "ccm"
    for i in range(2):
        song(root, f"ccm{i}", 10 + i, sr=22050, channels=2, names=("source-02", "source-01"))
    return root


def tiny_cfg(datasets, **train) -> Config:
    d = json.loads(json.dumps(TINY))
    d["data"]["datasets"] = [str(p) for p in datasets]
    d["train"].update(train)
    return Config.from_dict(d)


def log_rows(out: Path) -> list[dict]:
    with open(out / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_cli_trains_on_stems_and_ccmixter(tmp_path, stems, ccmixter):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--data", str(stems), "--data", str(ccmixter), "--config", str(cfg_path),
                                  "--out", str(out), "--batch-size", "2", "--seed", "3", "--lr", "0.002",
                                  "--validation", "singer_2"])
    assert r.exit_code == 0, r.output
    assert "4 training songs, 2 validation songs" in r.output
    for name in ("model.vsep", "best.vsep", "checkpoint.npz", "config.yaml", "log.csv"):
        assert (out / name).is_file(), name
    assert any((out / "tb").iterdir())
    saved = load_config(out / "config.yaml")
    assert saved.train.batch_size == 2 and saved.train.seed == 3 and saved.train.learning_rate == 0.002
    assert saved.data.datasets == [str(stems), str(ccmixter)] and saved.data.validation == ["singer_2"]
    mf = ModelFile.load(out / "model.vsep")
    assert mf.tflite and mf.model.freq_bins == 64 and mf.spectral.n_fft == 128
    assert mf.info["steps"] == 6 and mf.info["val_loss"] > 0
    rows = log_rows(out)
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6]
    assert [bool(r["val_loss"]) for r in rows] == [False, True, False, True]
    assert [bool(r["val_sdr"]) for r in rows] == [False, True, False, True]
    assert mf.info["val_sdr"] == pytest.approx(float(rows[-1]["val_sdr"]), rel=1e-4)
    best = min(float(r["val_loss"]) for r in rows if r["val_loss"])
    assert ModelFile.load(out / "best.vsep").info["val_loss"] == pytest.approx(best, rel=1e-5)
    assert not list(out.glob(".*part"))


def test_cli_errors(tmp_path, stems):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "no usable songs" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    r = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "--data" in r.output
    r = CliRunner().invoke(main, ["train", "--data", str(stems), "--out", str(tmp_path / "run"), "--resume"])
    assert r.exit_code == 1 and "no checkpoint" in r.output


def test_loss_falls_on_one_batch(stems):
    import keras

    from vocalsep.model import build_unet
    from vocalsep.train import make_steps

    cfg = tiny_cfg([stems])
    keras.utils.set_random_seed(0)
    sampler = datamod.PatchSampler(datamod.discover(stems), cfg.spectral, cfg.model, cfg.data)
    mix, voc, acc = sampler.batch(np.random.default_rng(0), 4)
    model = build_unet(cfg.model)
    opt = keras.optimizers.Adam(0.01)
    step, evaluate, _ = make_steps(model, opt, 4)
    first = float(evaluate(mix, voc, acc)) / 4
    losses = [float(step(mix, voc, acc)) for _ in range(60)]
    last = float(evaluate(mix, voc, acc)) / 4
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert last < 0.5 * first


@pytest.mark.parametrize("arch", ["unet", "attention-unet"])  # (the generic conversion converts the network itself)
def test_mixed_bfloat16_trains_in_bfloat16_and_writes_a_float32_model(tmp_path, stems, monkeypatch, arch):
    """train.precision mixed_bfloat16: the training network computes in bfloat16 (float32 weights), the
    global policy is float32 again afterwards, and the model file is float32: its LiteRT conversion separates
    as its Keras network does (above 60 dB, which bfloat16 arithmetic would not reach), and the training
    network's bfloat16 output is near that network's but not equal to it."""
    import keras

    from vocalsep import model as modelmod
    from vocalsep.runners import KerasRunner, LiteRunner
    from vocalsep.train import train

    from .test_archs import sdr

    built = []
    real_build = modelmod.build_model
    monkeypatch.setattr(modelmod, "build_model", lambda c: built.append(real_build(c)) or built[-1])
    cfg = tiny_cfg([stems], steps=6)
    cfg.train.precision = "mixed_bfloat16"
    if arch != "unet":
        d = cfg.to_dict()
        d["model"] = {"arch": arch, "freq_bins": 64, "frames": 16, "channels": [4, 8], "dropout_layers": 1}
        cfg = Config.from_dict(d)
    train(cfg, tmp_path / "run", progress=False)
    net = built[0]  # the training network
    assert net.compute_dtype == "bfloat16" and {v.dtype for v in net.weights} == {"float32"}
    assert keras.config.dtype_policy().name == "float32"
    mf = ModelFile.load(tmp_path / "run" / "model.vsep")
    assert mf.info["precision"] == "mixed_bfloat16" and mf.tflite is not None
    x = np.random.default_rng(3).random((4,) + mf.model.io_shapes()[0]).astype(np.float32)
    lite, ref = LiteRunner(mf)(x), KerasRunner(mf)(x)  # (the file's network, rebuilt in float32)
    assert ref.dtype == np.float32 and sdr(ref, lite) > 60
    with modelmod.dtype_policy("mixed_bfloat16"):  # the file's network is float32 whatever the caller's policy
        assert mf.keras_model().compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    trained = KerasRunner.for_model(net, 4)(x)
    assert trained.dtype == np.float32 and 20 < sdr(ref, trained) < 60


def test_weight_decay_shrinks_kernels_only(stems):
    """One step of AdamW against one of Adam from the same weights on the same batch: every kernel ends
    lower by lr x weight_decay x its start (decoupled decay), every bias and batch-norm parameter equal."""
    import keras

    from vocalsep.model import build_unet
    from vocalsep.train import make_optimizer, make_steps

    cfg = tiny_cfg([stems])
    cfg.model.dropout = 0.0  # no random layer: both steps see the same function
    sampler = datamod.PatchSampler(datamod.discover(stems), cfg.spectral, cfg.model, cfg.data)
    mix, voc, acc = sampler.batch(np.random.default_rng(0), 4)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)  # biases and betas start at 0, which decay would leave at 0: move them
    start = [w + rng.uniform(0.1, 0.2, w.shape).astype(w.dtype) for w in build_unet(cfg.model).get_weights()]
    after = {}
    for wd in (0.0, 5.0):
        cfg.train.weight_decay = wd
        model = build_unet(cfg.model)
        model.set_weights(start)
        opt = make_optimizer(cfg.train, 0.01)
        make_steps(model, opt, 4)[0](mix, voc, acc)
        after[wd] = {v.path: v.numpy() for v in model.trainable_variables}
    w0 = {v.path: w for v, w in zip(model.trainable_variables, [w for w, v in zip(start, model.weights)
                                                                 if v.trainable])}
    kernels = [k for k in after[0.0] if k.endswith("kernel")]
    others = [k for k in after[0.0] if not k.endswith("kernel")]
    assert kernels and {k.rsplit("/", 1)[-1] for k in others} == {"bias", "gamma", "beta"}
    for k in kernels:
        np.testing.assert_allclose(after[5.0][k] - after[0.0][k], -0.01 * 5.0 * w0[k], rtol=1e-3, atol=1e-6)
    for k in others:
        np.testing.assert_array_equal(after[5.0][k], after[0.0][k])
    cfg.train.weight_decay = -1.0
    with pytest.raises(VocalsepError, match="weight_decay"):
        make_optimizer(cfg.train, 0.01)


def test_resume_continues_where_it_stopped(tmp_path, stems):
    """With AdamW and both stems' loss (the plain recipe's Adam and vocals loss run in the other tests)."""
    from vocalsep.train import train

    def cfg(**train):
        return tiny_cfg([stems], loss="both", weight_decay=0.1, **train)

    straight = train(cfg(), tmp_path / "a", progress=False)
    train(cfg(steps=3), tmp_path / "b", progress=False)
    with pytest.raises(VocalsepError, match="already holds"):
        train(cfg(), tmp_path / "b", progress=False)
    other = cfg()
    other.model.channels = (4, 16)
    with pytest.raises(VocalsepError, match="model settings differ"):
        train(other, tmp_path / "b", resume=True, progress=False)
    with pytest.raises(VocalsepError, match="train.loss was 'both', this run's is 'vocals'"):
        train(tiny_cfg([stems], weight_decay=0.1), tmp_path / "b", resume=True, progress=False)
    resumed = train(cfg(), tmp_path / "b", resume=True, progress=False)
    a, b = ModelFile.load(straight), ModelFile.load(resumed)
    assert a.info["steps"] == b.info["steps"] == 6
    assert (b.info["loss"], b.info["weight_decay"]) == ("both", 0.1)
    assert [int(r["step"]) for r in log_rows(tmp_path / "b")] == [2, 3, 4, 6]
    # the same batches, dropout draws and optimizer state as the uninterrupted run: the same weights
    with np.load(tmp_path / "a" / "checkpoint.npz") as za, np.load(tmp_path / "b" / "checkpoint.npz") as zb:
        assert json.loads(str(zb["meta"]))["step"] == 6
        assert za.files == zb.files
        for k in za.files:
            if k != "meta":
                assert np.allclose(za[k], zb[k], rtol=1e-5, atol=1e-6), k
    assert a.info["val_loss"] == pytest.approx(b.info["val_loss"], rel=1e-4)


class _SigtermReachedTest(Exception):
    pass


def _sigterm_guard(signum, frame):
    raise _SigtermReachedTest  # train() did not handle SIGTERM itself


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_stopped_run_saves_checkpoint_and_model(tmp_path, stems, monkeypatch, stop):
    from vocalsep.train import train

    calls = {"n": 0}
    real_next = datamod.BatchStream.__next__

    def next_then_stop(self):
        calls["n"] += 1
        if calls["n"] == 3:
            if stop == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or a batch scheduler would
        return real_next(self)

    monkeypatch.setattr(datamod.BatchStream, "__next__", next_then_stop)
    out = tmp_path / "run"
    previous = signal.signal(signal.SIGTERM, _sigterm_guard)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(tiny_cfg([stems], steps=100), out, progress=False)
        assert signal.getsignal(signal.SIGTERM) is _sigterm_guard  # put back after the run
    finally:
        signal.signal(signal.SIGTERM, previous)
    with np.load(out / "checkpoint.npz") as z:
        assert json.loads(str(z["meta"]))["step"] == 2
    assert ModelFile.load(out / "model.vsep").info["steps"] == 2
    monkeypatch.setattr(datamod.BatchStream, "__next__", real_next)
    final = train(tiny_cfg([stems], steps=4), out, resume=True, progress=False)
    assert ModelFile.load(final).info["steps"] == 4


def test_song_sdr_of_trivial_masks():
    from vocalsep.config import ModelConfig, SpectralConfig
    from vocalsep.train import song_sdr

    spec = SpectralConfig(sample_rate=8192, n_fft=128, hop_length=32)
    mcfg = ModelConfig(freq_bins=64, frames=16, channels=(4, 8))
    rng = np.random.default_rng(0)
    v = (0.3 * np.sin(2 * np.pi * 700 * np.arange(5000) / 8192)).astype(np.float32)
    a = (0.1 * rng.standard_normal(5000)).astype(np.float32)
    ones, zeros = (lambda x: np.ones_like(x)), (lambda x: np.zeros_like(x))
    mixture_sdr = 10 * np.log10(np.sum(v.astype(float) ** 2) / np.sum(a.astype(float) ** 2))
    assert song_sdr(ones, v + a, v, spec, mcfg) == pytest.approx(mixture_sdr, abs=0.05)
    assert song_sdr(zeros, v + a, v, spec, mcfg) == pytest.approx(0.0, abs=1e-6)
    assert song_sdr(ones, v, v, spec, mcfg) > 60  # the STFT round trip is exact


def test_lr_schedule_matches_keras():
    import keras

    from vocalsep.train import learning_rate

    cfg = Config()
    cfg.train.lr_decay_steps, cfg.train.learning_rate, cfg.train.lr_min = 100, 1e-3, 1e-5
    sched = keras.optimizers.schedules.CosineDecay(1e-3, 100, alpha=1e-2)
    for s in (0, 30, 100, 150):
        assert learning_rate(cfg, s) == pytest.approx(float(sched(s)), rel=1e-5)
    assert learning_rate(Config(), 1234) == Config().train.learning_rate


def test_a_few_steps_on_the_musdb_preview(tmp_path):
    from vocalsep.train import train

    root = musdb_preview(tmp_path, 3)
    cfg = tiny_cfg([root], steps=2, steps_per_epoch=2)
    cfg.data = DataConfig(datasets=[str(root)], cache_dir=str(tmp_path / "cache"), workers=1, validation_patches=4,
                          validation_fraction=0.34)
    final = train(cfg, tmp_path / "run", progress=False)
    info = ModelFile.load(final).info
    assert info["steps"] == 2 and info["train_songs"] == 2 and info["validation_songs"] == 1
    assert info["val_loss"] > 0


def test_init_starts_from_a_model_file(tmp_path, stems):
    """--init fine-tunes: zero steps from a model file give back its weights; other settings are refused."""
    from vocalsep.train import train

    first = train(tiny_cfg([stems], steps=3), tmp_path / "a", progress=False)
    again = train(tiny_cfg([stems], steps=0, init=str(first)), tmp_path / "b", progress=False)
    w0, w1 = ModelFile.load(first).weights, ModelFile.load(again).weights
    assert len(w0) == len(w1) and all(np.array_equal(a, b) for a, b in zip(w0, w1))
    other = tiny_cfg([stems], steps=1, init=str(first))
    other.model.frames = 32
    with pytest.raises(VocalsepError, match=r"differs from the config's: model.frames 16 \(config: 32\);"):
        train(other, tmp_path / "c", progress=False)


def test_cli_init_without_config_takes_the_model_files_network(tmp_path, stems):
    """``vocalsep train --init FILE`` without --config fine-tunes FILE's network (here a tiny U-Net at 8192 Hz,
    not the built-in 16384 Hz one), so a shipped model can be fine-tuned without knowing its config."""
    from vocalsep.train import train

    first = train(tiny_cfg([stems], steps=3), tmp_path / "a", progress=False)
    out = tmp_path / "b"
    r = CliRunner().invoke(main, ["train", "--init", str(first), "--data", str(stems), "--out", str(out),
                                  "--steps", "0", "--batch-size", "2", "--workers", "0", "--validation", "singer_2"])
    assert r.exit_code == 0, r.output
    a, b = ModelFile.load(first), ModelFile.load(out / "model.vsep")
    assert b.spectral.sample_rate == 8192 and b.model.frames == 16
    assert (b.spectral, b.model) == (a.spectral, a.model)
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))
    # with a config whose network differs, the error names what differs and the way out
    r = CliRunner().invoke(main, ["train", "--init", str(first), "--data", str(stems), "--out", str(tmp_path / "c"),
                                  "--config", "unet", "--steps", "0", "--workers", "0"])
    assert r.exit_code != 0 and "spectral.sample_rate 8192 (config: 16384)" in r.output
    assert "model.arch" not in r.output and not (tmp_path / "c").exists()  # refused before any work
    # --resume without --config continues with the run's own settings (not the built-in ones)
    r = CliRunner().invoke(main, ["train", "--resume", "--out", str(out), "--steps", "1"])
    assert r.exit_code == 0, r.output
    assert ModelFile.load(out / "model.vsep").spectral.sample_rate == 8192


def test_config_extends_another(tmp_path):
    (tmp_path / "base.yaml").write_text("data:\n  gain_db: 3.0\n  validation: [a, b]\ntrain:\n  steps: 100\n  seed: 4\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("extends: ../base.yaml\ndata:\n  validation: [c]\ntrain:\n  steps: 7\n")
    cfg = load_config(tmp_path / "sub" / "child.yaml", {"train": {"seed": None, "batch_size": 2}})
    assert cfg.train.steps == 7 and cfg.train.seed == 4 and cfg.train.batch_size == 2   # child, base, override
    assert cfg.data.validation == ["c"] and cfg.data.gain_db == 3.0                       # lists replaced whole

    (tmp_path / "empty.yaml").write_text("extends: base.yaml\nmodel:\n")   # an empty section changes nothing
    assert load_config(tmp_path / "empty.yaml").train.steps == 100

    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(VocalsepError, match="loops back"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(VocalsepError, match="missing.yaml: config file does not exist \\(named by .extends. in .*orphan.yaml\\)"):
        load_config(tmp_path / "orphan.yaml")


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].glob("configs/**/*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    load_config(path)


def _cut_short(path: Path, keep: int) -> None:
    """Keep the 44-byte header of a PCM_16 wav and ``keep`` bytes of its data (a file cut short mid-run)."""
    with open(path, "r+b") as f:
        f.truncate(44 + keep)


def test_a_song_cut_short_mid_run_is_left_out_and_training_goes_on(tmp_path, stems, monkeypatch, caplog):
    import logging

    from vocalsep.train import train

    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)
    songs = datamod.discover(stems)  # discovered whole; then a training song's stem is cut short
    bad = stems / "singer_1_01" / "vocals.wav"
    _cut_short(bad, 200)
    monkeypatch.setattr(datamod, "discover_all", lambda cfg: songs)
    cfg = tiny_cfg([stems])
    cfg.data.validation = ["singer_2"]
    with caplog.at_level(logging.WARNING, logger="vocalsep.data"):
        final = train(cfg, tmp_path / "run", progress=False)
    assert ModelFile.load(final).info["steps"] == 6
    assert any(str(bad) in r.getMessage() and "left out of training" in r.getMessage() for r in caplog.records)


def test_no_song_left_before_the_first_step_stops_in_one_line_and_saves_nothing(tmp_path, stems, monkeypatch):
    songs = datamod.discover(stems)
    for name in ("singer_1_01", "singer_1_02"):  # every training song
        _cut_short(stems / name / "accompaniment.wav", 0)
    monkeypatch.setattr(datamod, "discover_all", lambda cfg: songs)
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--data", str(stems), "--config", str(cfg_path), "--out", str(out),
                                  "--validation", "singer_2"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    last = r.output.strip().splitlines()[-1]
    assert "no training song is left" in last and "accompaniment.wav" in last
    assert "before its first step, nothing saved" in last
    assert not (out / "model.vsep").exists() and not (out / "checkpoint.npz").exists()  # no untrained model


def test_no_song_left_after_some_steps_saves_what_was_learnt(tmp_path, stems, monkeypatch):
    from vocalsep.train import train

    calls = {"n": 0}
    real_next = datamod.BatchStream.__next__

    def next_then_fail(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise VocalsepError("no training song is left")
        return real_next(self)

    monkeypatch.setattr(datamod.BatchStream, "__next__", next_then_fail)
    with pytest.raises(VocalsepError, match="training stopped at step 2, checkpoint and model saved"):
        train(tiny_cfg([stems], steps=100), tmp_path / "run", progress=False)
    assert ModelFile.load(tmp_path / "run" / "model.vsep").info["steps"] == 2
