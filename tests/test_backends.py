"""Keras backends: training on JAX (KERAS_BACKEND=jax), its model files without a LiteRT conversion, and
`vocalsep export`, which adds one; the one-line errors for a backend that cannot train."""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vocalsep.cli import main
from vocalsep.model import ModelFile

from .test_train import TINY, stems  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]


def _train_cli(args, **env):
    """``vocalsep train ARGS`` in a fresh process (Keras picks its backend once, at its import)."""
    return subprocess.run([sys.executable, "-m", "vocalsep.cli", "train", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env))


def test_an_unknown_keras_backend_is_one_line(tmp_path, stems):
    r = _train_cli(["--data", stems, "--out", tmp_path / "run"], KERAS_BACKEND="theano")
    assert r.returncode == 1 and "KERAS_BACKEND=theano" in r.stderr and "(tensorflow, jax)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_the_backend_of_keras_json_counts_as_keras_counts_it(tmp_path, stems):
    """Without KERAS_BACKEND, Keras takes the backend of $KERAS_HOME/keras.json; so does vocalsep."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "keras.json").write_text('{"backend": "theano"}')
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    r = subprocess.run([sys.executable, "-m", "vocalsep.cli", "train", "--data", str(stems), "--out",
                        str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT,
                       env=dict(env, KERAS_HOME=str(tmp_path / "home")))
    assert r.returncode == 1 and "keras.json: backend theano" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="jax is installed here")
def test_jax_backend_without_jax_is_one_line(tmp_path, stems):
    r = _train_cli(["--data", stems, "--out", tmp_path / "run"], KERAS_BACKEND="jax")
    assert r.returncode == 1 and "Keras on jax needs jax and keras installed" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax (KERAS_BACKEND=jax)")
def test_a_model_trained_on_jax_separates_as_litert_after_export(tmp_path, stems):
    """Train a tiny U-Net on JAX (a fresh process: Keras picks its backend on import), then: the file has
    no LiteRT model and separates on Keras; `vocalsep export` converts it under TensorFlow, and the
    LiteRT network gives the Keras network's output (the weights written on JAX fit TensorFlow's network)."""
    cfg = json.loads(json.dumps(TINY))
    cfg["data"]["datasets"] = [str(stems)]
    cfg["train"].update(steps=4, batch_size=2)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-m", "vocalsep.cli", "train", "--config", str(tmp_path / "tiny.yaml"),
                        "--out", str(tmp_path / "run"), "--validation", "singer_2", "--workers", "0"],
                       env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "written without their LiteRT conversion" in r.stderr
    jax_file = tmp_path / "run" / "model.vsep"
    assert "model.tflite" not in zipfile.ZipFile(jax_file).namelist()
    mf = ModelFile.load(jax_file)
    assert mf.tflite is None and mf.info["steps"] == 4 and mf.info["keras_backend"] == "jax"
    assert not (tmp_path / "run" / "tb").exists()
    # the JAX steps carry the values between them and write them back only to save: the checkpoint holds
    # the values after the last step (the optimizer's own step count 4 and Adam's moments, both 0 if the
    # write-back were lost), and the model file holds the checkpoint's weights (rounded to float16)
    with np.load(tmp_path / "run" / "checkpoint.npz") as z:
        assert int(z["opt_0"]) == 4  # adam/iteration
        moments = [z[k] for k in z.files if k.startswith("opt_") and z[k].size > 1]
        assert sum(np.any(m != 0) for m in moments) > len(moments) // 2
        saved = [z[k].astype(np.float16) for k in z.files if k.startswith("model_")]  # (+ the RNG's state)
    assert all(any(c.shape == w.shape and np.array_equal(c, w) for c in saved) for w in mf.weights)

    out = tmp_path / "converted" / "model.vsep"
    script = [sys.executable, "-m", "vocalsep.cli", "export", str(jax_file), "-o", str(out.parent)]
    env_jax = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")  # export converts on TensorFlow
    r = subprocess.run(script, capture_output=True, text=True, env=env_jax, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert ModelFile.load(out).litert_weights == "float16"
    r2 = subprocess.run(script, capture_output=True, text=True, cwd=ROOT)  # never over an existing file
    assert r2.returncode != 0 and "exists" in r2.stderr

    # the same song separated by the JAX process (its Keras network) and here by LiteRT: the weights written
    # on JAX are in the order TensorFlow's network takes them
    song = stems / "singer_1_01" / "vocals.wav"
    r = subprocess.run([sys.executable, "-m", "vocalsep.cli", "separate", str(song), "-m", str(jax_file),
                        "--backend", "keras", "-o", str(tmp_path / "jax-sep")], env=env, capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    r = CliRunner().invoke(main, ["separate", str(song), "-m", str(out), "--backend", "litert",
                                  "-o", str(tmp_path / "lite-sep")])
    assert r.exit_code == 0, r.output
    import soundfile as sf

    a, b = (sf.read(tmp_path / d / "vocals" / "vocals.wav")[0] for d in ("jax-sep", "lite-sep"))
    assert a.shape == b.shape and np.sum(a ** 2) > 0
    assert 10 * np.log10(np.sum(a ** 2) / max(np.sum((a - b) ** 2), 1e-30)) > 60

    from vocalsep.runners import make_runner

    conv = ModelFile.load(out)
    assert conv.tflite is not None
    x = np.random.default_rng(0).random((3,) + conv.model.io_shapes()[0], np.float32)
    lite, keras_out = make_runner(conv, backend="litert")(x), make_runner(mf, backend="keras")(x)
    assert lite.shape == keras_out.shape
    err = np.sum((lite - keras_out) ** 2)
    assert 10 * np.log10(np.sum(keras_out ** 2) / max(err, 1e-30)) > 60


JAX_STEPS = """
import sys, numpy as np, keras
from vocalsep.config import Config
from vocalsep.model import build_model
from vocalsep.train import make_optimizer, make_steps
import json
cfg = Config.from_dict(json.loads(sys.argv[1]))
z = np.load(sys.argv[2])
model = build_model(cfg.model)
model.set_weights([z[f"w{i}"] for i in range(len(model.get_weights()))])
lr = keras.optimizers.schedules.CosineDecay(0.01, 3, alpha=0.1)
steps = make_steps(model, make_optimizer(cfg.train, lr), 4)
losses = [float(steps.train(z["mix"], z["voc"], z["acc"])) for _ in range(3)]
steps.sync()
np.savez(sys.argv[3], losses=np.array(losses), *model.get_weights())
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax (KERAS_BACKEND=jax)")
def test_jax_steps_train_as_tensorflow_steps_do(tmp_path, stems):
    """Three AdamW steps under a cosine schedule from the same weights on the same batch (no dropout): the JAX
    step (a fresh process on KERAS_BACKEND=jax) and the TensorFlow one end with the same losses and weights,
    so the JAX path's optimizer, schedule, decay exclusions and batch-norm updates are TensorFlow's."""
    import keras

    from vocalsep import data as datamod
    from vocalsep.config import Config
    from vocalsep.model import build_model
    from vocalsep.train import make_optimizer, make_steps

    d = json.loads(json.dumps(TINY))
    d["data"]["datasets"] = [str(stems)]
    d["model"]["dropout"] = 0.0
    d["train"]["weight_decay"] = 0.05
    cfg = Config.from_dict(d)
    sampler = datamod.PatchSampler(datamod.discover(stems), cfg.spectral, cfg.model, cfg.data)
    mix, voc, acc = sampler.batch(np.random.default_rng(0), 4)
    keras.utils.set_random_seed(0)
    model = build_model(cfg.model)
    start = model.get_weights()
    np.savez(tmp_path / "start.npz", mix=mix, voc=voc, acc=acc, **{f"w{i}": w for i, w in enumerate(start)})
    r = subprocess.run([sys.executable, "-c", JAX_STEPS, json.dumps(d), str(tmp_path / "start.npz"),
                        str(tmp_path / "jax.npz")], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, KERAS_BACKEND="jax"))
    assert r.returncode == 0, r.stderr[-2000:]
    lr = keras.optimizers.schedules.CosineDecay(0.01, 3, alpha=0.1)
    step = make_steps(model, make_optimizer(cfg.train, lr), 4)[0]
    losses = [float(step(mix, voc, acc)) for _ in range(3)]
    with np.load(tmp_path / "jax.npz") as z:
        np.testing.assert_allclose(z["losses"], losses, rtol=1e-4)
        after = [z[f"arr_{i}"] for i in range(len(start))]
    moved = 0
    for w0, tf_w, jax_w in zip(start, model.get_weights(), after):
        # atol: a bias just before a batch norm has no gradient in exact arithmetic, so Adam scales round-off
        # up to moves of ~1e-5 that differ between backends; a real difference moves weights by ~lr = 1e-2
        np.testing.assert_allclose(jax_w, tf_w, rtol=1e-3, atol=1e-4)
        moved += not np.allclose(tf_w, w0)
    assert moved > len(start) // 2  # the steps moved the weights (the comparison is not of start values)
