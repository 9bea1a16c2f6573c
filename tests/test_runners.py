"""The runtime seam (issue 15 item 4): LiteRT and Keras runners behind one interface, and ``auto``'s
fallback when the LiteRT runtime cannot be imported, which must run the file's trained weights."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

from vocalsep import VocalsepError
from vocalsep.model import ModelFile
from vocalsep.runners import KerasRunner, LiteRunner, make_runner


@pytest.fixture
def patches():
    return np.random.default_rng(7).random((5, 64, 16, 1)).astype(np.float32)


def hide_litert(monkeypatch) -> None:
    """As on a machine without ai-edge-litert: importing it raises ImportError."""
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)


def test_both_runners_map_patches_to_masks_alike(tiny_model, patches):
    """One interface: (n, F, T, 1) -> masks of that shape, named; Keras pads its last batch and drops it."""
    mf = ModelFile.load(tiny_model)
    lite, keras_ = LiteRunner(mf, batch=2), KerasRunner(mf, batch=2)
    a, b = lite(patches), keras_(patches)
    assert (lite.name, keras_.name) == ("litert", "keras")
    assert a.shape == b.shape == patches.shape and a.dtype == b.dtype == np.float32
    assert np.abs(a - b).max() < 1e-3 and np.abs(a - 0.5).max() > 1e-3
    np.testing.assert_allclose(KerasRunner(mf, batch=8)(patches), b, atol=1e-6)  # batching changes nothing


def test_auto_without_the_runtime_reads_the_weights_it_was_loaded_without(tiny_model, patches, monkeypatch):
    mf = ModelFile.load(tiny_model, weights=False)  # as Separator reads it for LiteRT
    lite = make_runner(mf, "auto")(patches)
    hide_litert(monkeypatch)
    runner = make_runner(mf, "auto")
    assert runner.name == "keras"
    assert np.abs(runner(patches) - lite).max() < 1e-3  # the trained weights, not a fresh network's
    with pytest.raises(VocalsepError, match="LiteRT runtime .* is not installed"):
        make_runner(mf, "litert")


def test_auto_never_runs_a_network_without_its_weights(tiny_model, monkeypatch):
    """A model file in memory, read without its weights and with no path to read them from: an error."""
    mf = dataclasses.replace(ModelFile.load(tiny_model, weights=False), path=None)
    hide_litert(monkeypatch)
    with pytest.raises(VocalsepError, match="needs the model's weights"):
        make_runner(mf, "auto")
    with pytest.raises(VocalsepError, match="needs the model's weights"):
        KerasRunner(mf)


@pytest.mark.parametrize("backend, batch, message", [("tpu", 4, "unknown backend 'tpu'"),
                                                     ("auto", 0, "batch must be a whole number")])
def test_bad_runner_arguments(tiny_model, backend, batch, message):
    with pytest.raises(VocalsepError, match=message):
        make_runner(ModelFile.load(tiny_model, weights=False), backend, batch=batch)
