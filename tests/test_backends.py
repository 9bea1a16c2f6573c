"""Keras backends: training on JAX (KERAS_BACKEND=jax), its model files without a LiteRT conversion, and
scripts/add_litert.py, which adds one; the one-line errors for a backend that cannot train."""

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


def test_an_unknown_keras_backend_is_one_line(tmp_path, stems):
    r = CliRunner().invoke(main, ["train", "--data", str(stems), "--out", str(tmp_path / "run")],
                           env={"KERAS_BACKEND": "theano"})
    assert r.exit_code == 1 and "KERAS_BACKEND=theano" in r.output and "tensorflow, jax" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="jax is installed here")
def test_jax_backend_without_jax_is_one_line(tmp_path, stems):
    r = CliRunner().invoke(main, ["train", "--data", str(stems), "--out", str(tmp_path / "run")],
                           env={"KERAS_BACKEND": "jax"})
    assert r.exit_code == 1 and "KERAS_BACKEND=jax needs jax, which is not installed" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax (KERAS_BACKEND=jax)")
def test_a_model_trained_on_jax_separates_as_litert_after_add_litert(tmp_path, stems):
    """Train a tiny U-Net on JAX (a fresh process: Keras picks its backend on import), then: the file has
    no LiteRT model and separates on Keras; scripts/add_litert.py converts it under TensorFlow, and the
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
    assert mf.tflite is None and mf.info["steps"] == 4

    out = tmp_path / "converted.vsep"
    script = [sys.executable, str(ROOT / "scripts" / "add_litert.py"), str(jax_file), str(out)]
    r = subprocess.run(script, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert r.returncode == 0, r.stderr[-2000:]
    r2 = subprocess.run(script, capture_output=True, text=True)  # never over an existing file
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
    assert conv.tflite is not None and all(np.array_equal(a, b) for a, b in zip(conv.weights, mf.weights))
    x = np.random.default_rng(0).random((3,) + conv.model.io_shapes()[0], np.float32)
    lite, keras_out = make_runner(conv, backend="litert")(x), make_runner(mf, backend="keras")(x)
    assert lite.shape == keras_out.shape
    err = np.sum((lite - keras_out) ** 2)
    assert 10 * np.log10(np.sum(keras_out ** 2) / max(err, 1e-30)) > 60
