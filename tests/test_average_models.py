"""scripts/average_models.py: one model file from the mean of several snapshots' weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from vocalsep.model import ModelFile, build_model

from .conftest import save_tiny_model, tiny_configs

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "average_models.py"


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def save_trained_looking(path: Path, seed: int) -> Path:
    """A tiny U-Net as :func:`save_tiny_model` makes it, with its batch norms' weights and running statistics
    and its biases drawn as after training (differently for each seed), so that an average that skipped
    them would show."""
    import keras

    from .test_archs import randomise_normalisation

    keras.utils.set_random_seed(seed)
    spectral, model = tiny_configs()
    net = build_model(model)
    rng = np.random.default_rng(seed)
    randomise_normalisation(net, rng)
    for v in net.weights:  # the biases, zero when built
        if v.path.endswith("bias"):
            v.assign(rng.normal(0, 0.1, tuple(v.shape)).astype(np.float32))
    ModelFile.from_keras(net, spectral, model, info={"seed": 0, "steps": seed, "val_sdr": 9.9}).save(path)
    return path


def test_the_average_separates_as_a_network_of_the_mean_weights(tmp_path):
    from vocalsep.runners import LiteRunner

    inputs = [save_trained_looking(tmp_path / f"{s}.vsep", seed=s) for s in (4, 5, 6)]
    out = tmp_path / "mean.vsep"
    r = run(*inputs, out)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr  # one seed in every file's info
    files = [ModelFile.load(p) for p in inputs]
    mean = ModelFile.load(out)
    assert mean.info["averaged"] == [f"{p} (step {s})" for p, s in zip(inputs, (4, 5, 6))]
    assert "steps" not in mean.info and "val_sdr" not in mean.info and mean.info["seed"] == 0
    moving = 0
    for i, w in enumerate(mean.weights):  # float16 storage: within its rounding of the float32 mean
        ref = sum(f.weights[i].astype(np.float64) for f in files) / 3
        assert np.allclose(w, ref, rtol=2e-3, atol=1e-6)
        moving += not np.allclose(files[0].weights[i], files[1].weights[i])
    assert moving == len(mean.weights)  # every array differs between inputs, batch-norm statistics too
    # its LiteRT model is the mean network's, not a copy of an input's conversion: compared with Keras
    # running a network built here with the weights above
    net = build_model(mean.model)
    net.set_weights([w.astype(np.float32) for w in mean.weights])
    x = np.random.default_rng(0).random((3, 64, 16, 1)).astype(np.float32)
    got = LiteRunner(mean)(x)
    want = np.asarray(net(x, training=False))
    assert np.abs(got - want).max() < 1e-3
    assert np.abs(got - LiteRunner(files[0])(x)).max() > 1e-2


def test_bad_inputs_are_one_line_and_write_nothing(tiny_model, tmp_path):
    out = tmp_path / "mean.vsep"
    wide = save_tiny_model(tmp_path / "wide.vsep", seed=1, channels=(4, 16))
    hop = save_tiny_model(tmp_path / "hop.vsep", seed=1, hop_length=64)
    for other in (wide, hop):
        r = run(tiny_model, other, out)
        assert r.returncode == 1 and "settings differ" in r.stderr and str(other) in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    r = run(tiny_model, tiny_model, out)
    assert r.returncode == 1 and "given twice" in r.stderr and not out.exists()
    r = run(tiny_model, out)
    assert r.returncode == 1 and "two or more" in r.stderr and not out.exists()
    r = run(tiny_model, wide, tmp_path / "no" / "such" / "folder.vsep")
    assert r.returncode == 1 and "settings differ" in r.stderr
    r = run(tiny_model, save_tiny_model(tmp_path / "b.vsep", seed=2), tmp_path / "no" / "mean.vsep")
    assert r.returncode == 1 and "cannot be written" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    out.write_bytes(b"keep")
    r = run(tiny_model, tmp_path / "b.vsep", out)
    assert r.returncode == 1 and "exists" in r.stderr and out.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.vsep", "hop.vsep", "mean.vsep", "wide.vsep"]
