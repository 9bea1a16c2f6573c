"""The architecture seam (issue 15): ``model: {arch: ...}`` in the configs, model files of format 2 (and 1),
per-architecture checks of model files, and the LiteRT export of every registered architecture against its
Keras network.  A toy architecture registered only for these tests stands for the ones to come."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from vocalsep import Separator, VocalsepError
from vocalsep.config import Config, ModelConfig, load_config
from vocalsep.model import ModelFile, build_model
from vocalsep.models import arch_names, get_arch
from vocalsep.models.registry import ARCHS, Arch

from .conftest import make_audio, tiny_configs

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ToyConfig(ModelConfig):
    """A one-level network: a width x width convolution, batch norm, leaky ReLU, dropout, a 1x1 convolution."""

    width: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.width <= 9:
            raise VocalsepError(f"model: width must be in [1, 9], not {self.width}")

    @classmethod
    def tiny(cls) -> "ToyConfig":
        return cls(freq_bins=64, frames=16, channels=(4,), width=5)


def build_toy(cfg: ToyConfig):
    import keras
    from keras import layers

    inp = keras.Input(shape=(cfg.freq_bins, cfg.frames, 1))
    x = layers.Conv2D(cfg.channels[0], cfg.width, padding="same")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=cfg.leaky_slope)(x)
    x = layers.Dropout(cfg.dropout)(x)
    return keras.Model(inp, layers.Conv2D(1, 1, activation="sigmoid")(x))


@pytest.fixture
def toy():
    """The toy architecture, registered for one test."""
    arch_names()  # the package's own modules first
    ARCHS["toynet"] = Arch("toynet", ToyConfig, build_toy, "spectral", "a test")
    try:
        yield ARCHS["toynet"]
    finally:
        del ARCHS["toynet"]


def sdr(ref, est):
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-20))


def write_yaml(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d))
    return path


# -- the registry and the configs ----------------------------------------------------------------------
def test_the_unet_is_registered_with_its_paper():
    from vocalsep.models.unet import build_unet

    unet = get_arch("unet")
    assert unet.config is ModelConfig and unet.build is build_unet and unet.domain == "spectral"
    assert "Jansson" in unet.cite and "ISMIR 2017" in unet.cite
    assert "unet" in arch_names()


def test_every_shipped_config_names_its_architecture():
    paths = sorted((ROOT / "configs").rglob("*.yaml"))
    assert len(paths) > 10
    for p in paths:
        cfg = load_config(p)
        if p.parent.name == "archs":  # one config per variant, named after it
            assert cfg.model.arch == p.stem and type(cfg.model) is get_arch(p.stem).config, p
        else:  # the U-Net's recipes, and experiments on another architecture's (configs/unseen/attention-*)
            assert type(cfg.model) is get_arch(cfg.model.arch).config, p
            assert cfg.model.arch == "unet" or p.stem.startswith(cfg.model.arch.split("-")[0]), p
        d = cfg.to_dict()["model"]
        assert list(d)[0] == "arch" and d["arch"] == cfg.model.arch and isinstance(d["channels"], list)
    # every registered architecture but the toy ones of these tests has its config
    shipped = {p.stem for p in (ROOT / "configs" / "archs").glob("*.yaml")} | {"unet"}
    assert set(arch_names()) - shipped <= {"toynet"}


def test_yaml_arch_picks_the_registered_settings_class(toy, tmp_path):
    path = write_yaml(tmp_path / "toy.yaml", {"model": {"arch": "toynet", "width": 7, "freq_bins": 64,
                                                        "frames": 16, "channels": [4]}})
    cfg = load_config(path)
    assert type(cfg.model) is ToyConfig and cfg.model.width == 7 and cfg.model.arch == "toynet"
    assert cfg.model.frames == 16 and cfg.model.channels == (4,) and cfg.model.dropout == 0.5
    written = cfg.to_dict()
    assert written["model"]["arch"] == "toynet" and written["model"]["width"] == 7
    again = load_config(write_yaml(tmp_path / "again.yaml", written))
    assert again.model == cfg.model and again.model != ModelConfig(freq_bins=64, frames=16, channels=(4,))
    # a config that extends another may switch the architecture and keep the shared settings
    child = write_yaml(tmp_path / "child.yaml", {"extends": "toy.yaml", "model": {"arch": "unet", "channels": [4, 8]}})
    with pytest.raises(VocalsepError, match=r"unknown key\(s\) \['width'\]"):
        load_config(child)  # width belongs to toynet only


def test_subclass_instances_get_their_registered_name(toy):
    assert ToyConfig().arch == "toynet" and ToyConfig.tiny().arch == "toynet" and ModelConfig().arch == "unet"
    assert ModelConfig.tiny() == ModelConfig(freq_bins=64, frames=16, channels=(4, 8), dropout_layers=1)


@pytest.mark.parametrize("model, message", [
    ({"arch": "nope"}, "model.arch = 'nope': unknown architecture 'nope'; known: "),
    ({"arch": 3}, "model.arch = 3: the name of an architecture is expected"),
    ({"arch": "toynet", "depth": 3}, r"model: unknown key(s) ['depth']"),
    ({"width": 3}, r"model: unknown key(s) ['width']"),
    ({"arch": "toynet", "width": "wide"}, "model.width = 'wide'"),
    ({"arch": "toynet", "width": True}, "model.width = True: a number is expected"),
    ({"arch": "toynet", "width": 12}, "width must be in [1, 9], not 12"),
])
def test_bad_model_sections_are_one_line_errors(toy, tmp_path, model, message):
    path = write_yaml(tmp_path / "c.yaml", {"model": model})
    with pytest.raises(VocalsepError) as e:
        load_config(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


# -- model files ---------------------------------------------------------------------------------------
def config_json(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def test_a_format_1_file_reads_as_a_unet(tiny_model, tmp_path, rng):
    # a file as vocalsep 0.1 and 0.2 wrote it (the default model they shipped): format 1, no model.arch
    path = crafted(tmp_path, tiny_model, lambda c: (c.update(format=1), c["model"].pop("arch")))
    raw = config_json(path)
    assert raw["format"] == 1 and "arch" not in raw["model"]
    mf = ModelFile.load(path)
    assert type(mf.model) is ModelConfig and mf.model.arch == "unet"
    assert mf.model == ModelFile.load(tiny_model).model
    x = make_audio(rng, 1.0, 22050, 2)
    assert np.array_equal(Separator(path).separate(x, 22050)[0], Separator(tiny_model).separate(x, 22050)[0])


def test_format_2_records_the_architecture_and_its_settings(toy, tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    sp, mc = tiny_configs()[0], ToyConfig(freq_bins=64, frames=16, channels=(4,), width=3)
    net = build_model(mc)
    ModelFile.from_keras(net, sp, mc, tflite=False).save(tmp_path / "toy.vsep")
    raw = config_json(tmp_path / "toy.vsep")
    assert raw["format"] == 2 and raw["model"]["arch"] == "toynet" and raw["model"]["width"] == 3
    back = ModelFile.load(tmp_path / "toy.vsep")
    assert type(back.model) is ToyConfig and back.model == mc and back.spectral == sp
    x = np.random.default_rng(0).random((3, 64, 16, 1)).astype(np.float32)
    want = np.asarray(net(x, training=False))
    got = np.asarray(back.keras_model()(x, training=False))
    assert np.abs(got - want).max() < 1e-2 and np.abs(want - 0.5).max() > 1e-3  # float16 weights


def crafted(tmp_path, mf_path, change) -> Path:
    with zipfile.ZipFile(mf_path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(parts["config.json"])
    change(cfg)
    parts["config.json"] = json.dumps(cfg).encode()
    out = tmp_path / "crafted.vsep"
    with zipfile.ZipFile(out, "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)
    return out


@pytest.mark.parametrize("change, message", [
    (lambda c: c["model"].update(arch="nope"), "config.json: model.arch: unknown architecture 'nope'"),
    (lambda c: c["model"].update(arch=["unet"]), "config.json: model.arch must be the name of an architecture"),
    (lambda c: c["model"].update(width=3), r"config.json: unknown model setting(s) ['width']"),
    (lambda c: c.update(format=1), r"config.json: unknown model setting(s) ['arch']"),  # format 1 had no arch
    (lambda c: c.update(format=3), "model format 3 is not supported"),
])
def test_a_unet_file_with_bad_settings_is_refused(tiny_model, tmp_path, change, message):
    path = crafted(tmp_path, tiny_model, change)
    with pytest.raises(VocalsepError) as e:
        ModelFile.load(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["model"].update(width="wide"), "config.json: model.width = 'wide': input should be a valid integer"),
    (lambda c: c["model"].update(width=0), "config.json: model: width must be in [1, 9], not 0"),
    (lambda c: c["model"].update(frames=0), "config.json: model.frames must be a whole number"),
    (lambda c: c["model"].update(depth=3), r"unknown model setting(s) ['depth']"),
])
def test_another_architectures_file_is_checked_by_its_settings(toy, tmp_path, change, message):
    import keras

    keras.utils.set_random_seed(0)
    sp, mc = tiny_configs()[0], ToyConfig.tiny()
    ModelFile.from_keras(build_model(mc), sp, mc, tflite=False).save(tmp_path / "toy.vsep")
    path = crafted(tmp_path, tmp_path / "toy.vsep", change)
    with pytest.raises(VocalsepError) as e:
        ModelFile.load(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


def test_another_architectures_weights_are_checked_when_its_network_is_built(toy, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    sp = tiny_configs()[0]
    ModelFile.from_keras(build_model(ToyConfig.tiny()), sp, ToyConfig.tiny(), tflite=False).save(tmp_path / "t.vsep")
    path = crafted(tmp_path, tmp_path / "t.vsep", lambda c: c["model"].update(width=3))  # weights of width 5
    mf = ModelFile.load(path)  # no shapes without Keras for this architecture
    with pytest.raises(VocalsepError, match="weights.npz does not fit the network of its config.json") as e:
        mf.keras_model()
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    with pytest.raises(VocalsepError, match="does not fit the network"):
        Separator(path, backend="keras")


def test_a_crafted_file_cannot_make_keras_allocate_an_enormous_network(tmp_path):
    import resource

    import keras

    from vocalsep.models.resunet import ResUNetConfig

    keras.utils.set_random_seed(0)
    sp, mc = tiny_configs()[0], ResUNetConfig.tiny()
    ModelFile.from_keras(build_model(mc), sp, mc, tflite=False).save(tmp_path / "r.vsep")
    # three levels of 4096 channels (the most a file may ask for): about 0.9 G weights, 3.6 GB in float32
    path = crafted(tmp_path, tmp_path / "r.vsep", lambda c: c["model"].update(channels=[4, 4096, 4096, 4096]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(VocalsepError, match="weights.npz does not fit the network of its config.json") as e:
        Separator(path, backend="keras")
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1 << 20  # (KiB): under 1 GiB more
    assert len(build_model(mc).weights) > 0  # Keras goes on working: nothing of that network is left waiting


def test_the_spectral_front_end_refuses_a_waveform_network(toy, monkeypatch):
    from vocalsep.frontend import SpectralFrontEnd

    monkeypatch.setitem(ARCHS, "toynet", Arch("toynet", ToyConfig, build_toy, "waveform"))
    with pytest.raises(VocalsepError, match="'toynet' works on the waveform domain"):
        SpectralFrontEnd(tiny_configs()[0], ToyConfig.tiny())


def test_settings_of_an_unregistered_class_are_not_built(toy):
    @dataclass
    class Stray(ModelConfig):
        extra: int = 1

    with pytest.raises(VocalsepError, match="settings of class Stray are not those of architecture 'unet'"):
        build_model(Stray(freq_bins=64, frames=16, channels=(4, 8)))


# -- LiteRT export of every architecture ---------------------------------------------------------------
def randomise_normalisation(model, rng) -> None:
    """Batch-norm (and other normalisation) weights and statistics as after training, not the identity."""
    for v in model.weights:
        name = v.path.rsplit("/", 1)[-1]
        draw = {"gamma": lambda s: rng.uniform(0.5, 1.5, s), "beta": lambda s: rng.normal(0, 0.2, s),
                "moving_mean": lambda s: rng.normal(0, 0.2, s), "moving_variance": lambda s: rng.uniform(0.5, 2.0, s)}
        if name in draw:
            v.assign(draw[name](tuple(v.shape)).astype(np.float32))


def export_and_compare(name: str, tmp_path: Path, **settings) -> Path:
    """A tiny ``name`` network (its tiny settings with ``settings`` replaced) with seeded weights, exported;
    Keras and LiteRT separate a seeded signal alike.  Returns the model file's path."""
    import dataclasses

    import keras

    from vocalsep.runners import KerasRunner

    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    sp, mc = tiny_configs()[0], get_arch(name).config.tiny()
    mc = dataclasses.replace(mc, arch=name, **settings)  # (arch: a settings class several architectures share)
    net = build_model(mc)
    randomise_normalisation(net, rng)
    path = tmp_path / f"{name}.vsep"
    ModelFile.from_keras(net, sp, mc).save(path)
    inputs = rng.random((3,) + mc.io_shapes()[0]).astype(np.float32)
    assert np.ptp(KerasRunner(ModelFile.load(path))(inputs)) > 1e-3  # not a constant output
    x = make_audio(rng, 1.0, 22050, 2)
    keras_sep, lite_sep = Separator(path, backend="keras"), Separator(path, backend="litert")
    assert (keras_sep.runner.name, lite_sep.runner.name) == ("keras", "litert")
    v_keras, _ = keras_sep.separate(x, 22050)
    v_lite, _ = lite_sep.separate(x, 22050)
    assert sdr(v_keras, v_lite) > 60, name
    return path


@pytest.mark.parametrize("name", arch_names())
def test_litert_export_separates_as_keras(name, tmp_path):
    """Every registered architecture, spectral and waveform."""
    export_and_compare(name, tmp_path)


def test_litert_export_of_another_architecture(toy, tmp_path):
    """The generic export (not the U-Net's hand-made one): dropout off, batch norm on its statistics."""
    export_and_compare("toynet", tmp_path)


def test_generic_export_of_the_unet_matches_the_hand_made_one(tmp_path):
    import keras

    from vocalsep.export import EXPORT_BATCH, generic_tflite
    from vocalsep.runners import LiteRunner

    keras.utils.set_random_seed(2)
    sp, mc = tiny_configs()
    net = build_model(mc)
    randomise_normalisation(net, np.random.default_rng(2))
    fast = ModelFile.from_keras(net, sp, mc)
    generic = ModelFile(sp, mc, fast.weights, generic_tflite(net, mc))
    x = np.random.default_rng(3).random((5, 64, 16, 1)).astype(np.float32)
    a = LiteRunner(fast)(x)
    for batch in (1, 3, 4, 7):  # the generic model takes EXPORT_BATCH patches: the runner follows it
        runner = LiteRunner(generic, batch=batch)
        assert runner.batch == EXPORT_BATCH and LiteRunner(fast, batch=batch).batch == batch
        b = runner(x)
        assert np.abs(a - b).max() < 1e-3 and np.abs(a - 0.5).max() > 1e-3
    assert fast.tflite != generic.tflite  # two conversions, one network


def test_training_another_architecture_end_to_end(toy, tmp_path):
    """``train`` builds, trains and exports the architecture of ``model.arch``; the file separates alike on
    both backends."""
    from vocalsep.train import train

    from .test_train import TINY, song, tiny_cfg

    for i in range(3):
        song(tmp_path / "stems", f"s{i}", i)
    cfg = tiny_cfg([tmp_path / "stems"], steps=2, steps_per_epoch=2)
    cfg.model = ToyConfig(**{**TINY["model"], "channels": (4,), "width": 3})
    final = train(cfg, tmp_path / "run", progress=False)
    mf = ModelFile.load(final)
    assert type(mf.model) is ToyConfig and mf.model.width == 3 and mf.info["steps"] == 2 and mf.tflite
    assert type(load_config(tmp_path / "run" / "config.yaml").model) is ToyConfig
    x = make_audio(np.random.default_rng(0), 0.8, 16000, 1)
    v1, _ = Separator(final, backend="keras").separate(x, 16000)
    v2, _ = Separator(final, backend="litert").separate(x, 16000)
    assert sdr(v1, v2) > 60


def test_a_file_of_another_architecture_without_weights_is_one_line(tmp_path):
    """Without its weights.npz, a non-U-Net file is refused by name, even when only LiteRT is wanted."""
    cfg = {"format": 2, "spectral": {"sample_rate": 16384, "n_fft": 1024, "hop_length": 512},
           "model": {"arch": "resunet", "freq_bins": 512, "frames": 128, "channels": [16, 32, 64, 128, 256, 512]},
           "info": {}}
    path = tmp_path / "lite-only.vsep"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.tflite", b"not read")
    with pytest.raises(VocalsepError, match=r"lite-only\.vsep: not a vocalsep model file \(it has no weights\.npz\)"):
        ModelFile.load(path, weights=False)
