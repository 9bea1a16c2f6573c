"""Shared fixtures: a tiny U-Net model file (built once per session), audio writers, the data folder."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SONG = DATA / "songs" / "Fantasma - Los Rombos.mp3"
FFMPEG_TOOLS = ("ffmpeg", "ffprobe", "ffplay")


def path_without_ffmpeg(path: str, farm: Path) -> str:
    """``path`` (a PATH value) as on a machine without ffmpeg: each folder that has an ffmpeg tool is
    replaced by a folder (in ``farm``) of links to everything else in it."""
    dirs = []
    for i, d in enumerate(path.split(os.pathsep)):
        if d and any((Path(d) / t).exists() for t in FFMPEG_TOOLS):
            (farm / str(i)).mkdir()
            for f in Path(d).iterdir():
                if f.name not in FFMPEG_TOOLS:
                    (farm / str(i) / f.name).symlink_to(f)
            d = str(farm / str(i))
        dirs.append(d)
    return os.pathsep.join(dirs)


# VOCALSEP_TEST_NO_FFMPEG=1 python -m pytest: the suite as on a machine without ffmpeg
if os.environ.get("VOCALSEP_TEST_NO_FFMPEG") == "1":
    _farm = Path(tempfile.mkdtemp(prefix="vocalsep-no-ffmpeg-"))
    atexit.register(shutil.rmtree, _farm, ignore_errors=True)
    os.environ["PATH"] = path_without_ffmpeg(os.environ.get("PATH", ""), _farm)
HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
#: for tests that need ffmpeg, or import museval or musdb (whose import needs ffmpeg, through stempeg)
needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="needs ffmpeg and ffprobe on PATH "
                                  "(apt-get install ffmpeg); the museval and musdb packages need them to import")


def tiny_configs():
    from vocalsep.config import ModelConfig, SpectralConfig

    return SpectralConfig(sample_rate=8192, n_fft=128, hop_length=32), ModelConfig.tiny()


def save_tiny_model(path: Path, seed: int, **changes) -> Path:
    """A tiny U-Net, untrained, its weights drawn with ``seed``, saved as a .vsep file with its LiteRT model.
    ``changes``: settings of the SpectralConfig or the ModelConfig that differ from :func:`tiny_configs`'."""
    import dataclasses

    import keras

    from vocalsep.model import ModelFile, build_unet

    keras.utils.set_random_seed(seed)
    spectral, model = tiny_configs()
    spectral = dataclasses.replace(spectral, **{k: v for k, v in changes.items() if hasattr(spectral, k)})
    model = dataclasses.replace(model, **{k: v for k, v in changes.items() if not hasattr(spectral, k)})
    ModelFile.from_keras(build_unet(model), spectral, model, info={"test": True}).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A seeded, untrained tiny U-Net saved as a .vsep file with its LiteRT model."""
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.vsep", seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def make_audio(rng, seconds: float, sr: int, channels: int) -> np.ndarray:
    """Seeded test music: a few sines (one above 8 kHz when the rate allows) plus noise, (samples, channels)."""
    n = max(1, int(round(seconds * sr)))
    t = np.arange(n) / sr
    x = np.zeros((n, channels), np.float32)
    for c in range(channels):
        for f in (220.0, 440.0 * (c + 1), 1500.0, 10000.0):
            if f < sr / 2:
                x[:, c] += 0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
        x[:, c] += 0.02 * rng.standard_normal(n)
    return x


@pytest.fixture
def write_audio(tmp_path, rng):
    def _write(name: str, seconds: float = 2.0, sr: int = 44100, channels: int = 2, subtype=None) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, make_audio(rng, seconds, sr, channels), sr, subtype=subtype)
        return p

    return _write


def musdb_preview(tmp_path: Path, tracks: int) -> Path:
    """A MUSDB18 root holding the first ``tracks`` tracks of the shared preview set (symlinks), or skip
    the test when ffmpeg, the musdb package or the data is missing."""
    src = DATA / "musdb" / "train"
    if not HAVE_FFMPEG or not src.is_dir():
        pytest.skip("needs ffmpeg and the MUSDB18 preview in shared/data/musdb")
    try:
        import musdb  # noqa: F401
    except Exception as e:  # pragma: no cover
        pytest.skip(f"musdb does not import: {e}")
    root = tmp_path / "musdb"
    (root / "train").mkdir(parents=True)
    for p in sorted(src.glob("*.stem.mp4"))[:tracks]:
        (root / "train" / p.name).symlink_to(p)
    return root
