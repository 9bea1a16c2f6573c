"""``vocalsep export`` and the LiteRT conversion's weight types (:mod:`vocalsep.export`): int8 weights are
really int8 in the flatbuffer and separate close to the Keras network; the model file records the type; the
command converts the shipped models or the ones named, into a folder, never over a file."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from vocalsep import Separator, VocalsepError
from vocalsep.cli import main
from vocalsep.cli.export import EXPORT_WEIGHTS
from vocalsep.export import LITERT_WEIGHTS, to_tflite
from vocalsep.model import ModelFile, build_model
from vocalsep.models import get_arch

from .conftest import make_audio, tiny_configs
from .test_archs import randomise_normalisation, sdr


def tiny_file(tmp_path, name: str = "unet", seed: int = 5):
    """A tiny ``name`` network with seeded weights and batch-norm statistics, saved (float16 LiteRT)."""
    import keras

    keras.utils.set_random_seed(seed)
    sp, mc = tiny_configs()[0], dataclasses.replace(get_arch(name).config.tiny(), arch=name)
    net = build_model(mc)
    randomise_normalisation(net, np.random.default_rng(seed))
    path = tmp_path / f"{name}.vsep"
    ModelFile.from_keras(net, sp, mc).save(path)
    return path


def tensor_types(tflite: bytes) -> set[str]:
    """The types of a LiteRT flatbuffer's tensors, as the interpreter reads them."""
    from ai_edge_litert.interpreter import Interpreter

    return {d["dtype"].__name__ for d in Interpreter(model_content=tflite).get_tensor_details()}


def test_the_command_offers_the_libraries_weight_types():
    assert EXPORT_WEIGHTS == LITERT_WEIGHTS


@pytest.mark.parametrize("name", ["unet", "attention-unet"])  # the hand-made conversion, and the generic one
def test_int8_weights_are_int8_and_separate_close_to_keras(name, tmp_path):
    mf = ModelFile.load(tiny_file(tmp_path, name))
    assert mf.litert_weights == "float16" and "int8" not in tensor_types(mf.tflite)
    int8 = to_tflite(mf.keras_model(), mf.model, "int8")
    assert "int8" in tensor_types(int8)
    q = dataclasses.replace(mf, tflite=int8, litert_weights="int8")
    q.save(tmp_path / "q.vsep")
    back = ModelFile.load(tmp_path / "q.vsep")
    assert back.litert_weights == "int8" and back.tflite == int8
    assert json.loads(zipfile.ZipFile(tmp_path / "q.vsep").read("config.json"))["litert_weights"] == "int8"
    x = make_audio(np.random.default_rng(1), 1.0, 22050, 2)
    v_keras, _ = Separator(tmp_path / "q.vsep", backend="keras").separate(x, 22050)
    v_lite, _ = Separator(tmp_path / "q.vsep", backend="litert").separate(x, 22050)
    assert sdr(v_keras, v_lite) > 40  # (float16: > 60, tests/test_archs.py; the shipped models' masks: 40 dB)

    # what evaluate records of the runtime: each member's LiteRT weights
    from vocalsep.evaluate import make_estimator

    src = tmp_path / f"{name}.vsep"
    assert make_estimator("model", tmp_path / "q.vsep").describe()["litert_weights"] == "int8"
    members = make_estimator("model", [src, tmp_path / "q.vsep"]).describe()["members"]
    assert [m["litert_weights"] for m in members] == ["float16", "int8"]
    assert "litert_weights" not in make_estimator("model", src, backend="keras").describe()


def crafted_config(tmp_path, src, change) -> str:
    """``src`` rewritten with its config.json changed by ``change`` (a function of the dict)."""
    out = tmp_path / "crafted.vsep"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w") as w:
        for item in z.namelist():
            data = z.read(item)
            if item == "config.json":
                cfg = json.loads(data)
                change(cfg)
                data = json.dumps(cfg).encode()
            w.writestr(item, data)
    return out


def test_the_weight_type_is_checked_and_files_written_before_it_are_float16(tmp_path):
    src = tiny_file(tmp_path)
    assert json.loads(zipfile.ZipFile(src).read("config.json"))["litert_weights"] == "float16"
    old = crafted_config(tmp_path, src, lambda c: c.pop("litert_weights"))
    assert ModelFile.load(old).litert_weights == "float16"
    bad = crafted_config(tmp_path, src, lambda c: c.update(litert_weights="int4"))
    with pytest.raises(VocalsepError, match=r"crafted.vsep: config.json: litert_weights must be one of "
                                            r"float16, int8, not 'int4'"):
        ModelFile.load(bad)
    for value in ([1], {"a": 1}, None):  # other JSON: the same one line
        bad = crafted_config(tmp_path, src, lambda c: c.update(litert_weights=value))
        with pytest.raises(VocalsepError, match="litert_weights must be one of float16, int8"):
            ModelFile.load(bad)
    with pytest.raises(VocalsepError, match="LiteRT weights must be one of float16, int8, not 'int4'"):
        dataclasses.replace(ModelFile.load(src), litert_weights="int4").save(tmp_path / "never.vsep")
    assert not (tmp_path / "never.vsep").exists()


@pytest.fixture
def keras_on_tensorflow(monkeypatch):
    """The command sets KERAS_BACKEND for Keras's import; restored after the test."""
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")


def test_export_converts_the_named_models_into_a_folder(tmp_path, keras_on_tensorflow):
    src = tiny_file(tmp_path)
    before = src.read_bytes()
    r = CliRunner().invoke(main, ["export", str(src), "-o", str(tmp_path / "fast"), "--weights", "int8"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "fast" / "unet.vsep"
    assert f"Wrote {out} (LiteRT, int8 weights)" in r.output
    mf, orig = ModelFile.load(out), ModelFile.load(src)
    assert mf.litert_weights == "int8" and "int8" in tensor_types(mf.tflite)
    assert all(np.array_equal(a, b) for a, b in zip(mf.weights, orig.weights)) and mf.info == orig.info
    assert src.read_bytes() == before

    # again: the output exists, so nothing is converted, and the file stays as it was
    written = out.read_bytes()
    r = CliRunner().invoke(main, ["export", str(src), "-o", str(tmp_path / "fast")])
    assert r.exit_code == 1 and "unet.vsep: exists; give another folder or remove it" in r.output
    assert out.read_bytes() == written


def test_export_without_models_converts_the_shipped_ones(tmp_path, monkeypatch, keras_on_tensorflow):
    import vocalsep.model

    a, b = tiny_file(tmp_path / "a"), tiny_file(tmp_path / "b", "attention-unet", seed=6)
    monkeypatch.setattr(vocalsep.model, "shipped_model_paths", lambda: [a, b])
    r = CliRunner().invoke(main, ["export", "-o", str(tmp_path / "out"), "--weights", "int8"])
    assert r.exit_code == 0, r.output
    for src in (a, b):
        mf = ModelFile.load(tmp_path / "out" / src.name)
        assert mf.litert_weights == "int8" and "int8" in tensor_types(mf.tflite)
        assert mf.model == ModelFile.load(src).model


def test_two_models_of_one_name_are_refused_before_any_conversion(tmp_path):
    a, b = tiny_file(tmp_path / "a"), tiny_file(tmp_path / "b")
    r = CliRunner().invoke(main, ["export", str(a), str(b), "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and "two models would be written as unet.vsep" in r.output
    r = CliRunner().invoke(main, ["export", str(a), str(tmp_path / "a" / ".." / "a" / "unet.vsep"),
                                  "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and "unet.vsep: given twice" in r.output
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "out").write_text("a file")
    r = CliRunner().invoke(main, ["export", str(tiny_file(tmp_path)), "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and r.output.strip() == f"Error: {tmp_path / 'out'}: not a folder"


def test_a_bad_model_after_a_good_one_writes_nothing(tmp_path, keras_on_tensorflow):
    good, bad = tiny_file(tmp_path), tmp_path / "bad.vsep"
    bad.write_bytes(b"not a zip")
    r = CliRunner().invoke(main, ["export", str(good), str(bad), "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and "bad.vsep: not a vocalsep model file" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
