"""scripts/average_models.py: one model file from the mean of several snapshots' weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from vocalsep.model import ModelFile, build_model

from .conftest import save_tiny_model

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "average_models.py"


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_the_average_separates_as_a_network_of_the_mean_weights(tiny_model, tmp_path):
    from vocalsep.runners import LiteRunner

    b = save_tiny_model(tmp_path / "b.vsep", seed=5)
    c = save_tiny_model(tmp_path / "c.vsep", seed=6)
    out = tmp_path / "mean.vsep"
    r = run(tiny_model, b, c, out)
    assert r.returncode == 0, r.stderr
    files = [ModelFile.load(p) for p in (tiny_model, b, c)]
    mean = ModelFile.load(out)
    assert mean.info["averaged"] == [str(tiny_model), str(b), str(c)]
    for i, w in enumerate(mean.weights):  # float16 storage: within its rounding of the float32 mean
        ref = (files[0].weights[i].astype(np.float64) + files[1].weights[i] + files[2].weights[i]) / 3
        assert np.allclose(w, ref, rtol=2e-3, atol=1e-6)
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
    other = save_tiny_model(tmp_path / "wide.vsep", seed=1, channels=(4, 16))
    out = tmp_path / "mean.vsep"
    r = run(tiny_model, other, out)
    assert r.returncode == 1 and "settings differ" in r.stderr and str(other) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    r = run(tiny_model, out)
    assert r.returncode == 1 and "two or more" in r.stderr and not out.exists()
    out.write_bytes(b"keep")
    r = run(tiny_model, tiny_model, out)
    assert r.returncode == 1 and "exists" in r.stderr and out.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mean.vsep", "wide.vsep"]
