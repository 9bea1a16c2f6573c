"""``vocalsep evaluate --estimates`` interoperates (issue 16 section 6): ``--seconds`` cuts estimates as it
cuts references, Demucs's and vocalsep's other accompaniment names are read, and what ``vocalsep separate``
wrote for a MUSDB18-HQ (or MUSDB18) folder is scored as it lies.  The figures are checked against museval
called directly on the files, read and cut here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from vocalsep import evaluate as ev
from vocalsep.cli import main

from .conftest import DATA, musdb_preview
from .test_evaluate import SR, write_stems

HQ_TRACK = DATA / "musdb-hq" / "test" / "AM Contra - Heart Peripheral"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def museval_direct(vocals_ref, acc_ref, vocals_est, acc_est, rate) -> dict:
    """SDR per target, museval's BSSEval v4 called on the arrays given (the independent reference; without
    ffmpeg, museval's metrics module alone, as vocalsep.evaluate loads it)."""
    sdr, _, _, _ = ev._museval_evaluate()(np.stack([vocals_ref, acc_ref]).astype(np.float64),
                                    np.stack([vocals_est, acc_est]).astype(np.float64), win=rate, hop=rate)
    return {t: float(np.nanmedian(sdr[i])) for i, t in enumerate(ev.TARGETS)}


def scored(path: Path) -> dict:
    d = json.loads(path.read_text())
    return {t["name"]: {k: t[k]["SDR"] for k in ev.TARGETS} for t in d["tracks"]}


def leaky_estimates(est: Path, name: str, v, a, acc_name: str = "accompaniment", ext: str = "wav", n=None):
    (est / name).mkdir(parents=True, exist_ok=True)
    n = len(v) if n is None else n
    sub = "FLOAT" if ext == "wav" else "PCM_24"
    sf.write(est / name / f"vocals.{ext}", (v + 0.2 * a)[:n], SR, subtype=sub)
    sf.write(est / name / f"{acc_name}.{ext}", (a + 0.3 * v)[:n], SR, subtype=sub)


def test_seconds_cuts_estimates_as_it_cuts_references(tmp_path):
    """--seconds 1 with estimates of the whole 2 s track scores their first 1 s; estimates of just
    that part (separate --duration 1) score the same; another length is still an error."""
    stems, est, cut = tmp_path / "stems", tmp_path / "est", tmp_path / "cut"
    v, a = write_stems(stems, "song", 7, seconds=2.0)
    leaky_estimates(est, "song", v, a)
    leaky_estimates(cut, "song", v, a, n=SR)
    for folder in (est, cut):
        res = run("evaluate", "--data", stems, "--estimates", folder, "--seconds", 1, "-o", tmp_path / "r.json",
                  "--quiet", "--overwrite")
        assert res.exit_code == 0, res.output
        n = SR
        want = museval_direct(v[:n], a[:n], (v + 0.2 * a)[:n], (a + 0.3 * v)[:n], SR)
        assert scored(tmp_path / "r.json")["song"] == pytest.approx(want, abs=1e-4)
    leaky_estimates(est, "song", v, a, n=len(v) - 5)
    res = run("evaluate", "--data", stems, "--estimates", est, "--seconds", 1, "--quiet")
    assert res.exit_code == 1
    assert "vocals.wav: 15995 samples, but the reference has 16000 (cut to 8000 by --seconds)" in res.output


@pytest.mark.parametrize("acc_name, ext", [("no_vocals", "wav"), ("instrumental", "flac"), ("accompaniment", "flac")])
def test_demucs_and_vocalsep_accompaniment_names(tmp_path, acc_name, ext):
    stems, est = tmp_path / "stems", tmp_path / "est"
    v, a = write_stems(stems, "song", 8, seconds=1.0)
    leaky_estimates(est, "song", v, a, acc_name, ext)
    res = run("evaluate", "--data", stems, "--estimates", est, "-o", tmp_path / "r.json", "--quiet")
    assert res.exit_code == 0, res.output
    ve, _ = sf.read(est / "song" / f"vocals.{ext}", dtype="float32", always_2d=True)
    ae, _ = sf.read(est / "song" / f"{acc_name}.{ext}", dtype="float32", always_2d=True)
    assert scored(tmp_path / "r.json")["song"] == pytest.approx(museval_direct(v, a, ve, ae, SR), abs=1e-4)


def test_two_accompaniments_are_refused_by_name(tmp_path):
    stems, est = tmp_path / "stems", tmp_path / "est"
    v, a = write_stems(stems, "song", 9, seconds=1.0)
    leaky_estimates(est, "song", v, a, "accompaniment")
    leaky_estimates(est, "song", v, a, "no_vocals")
    res = run("evaluate", "--data", stems, "--estimates", est, "--quiet")
    assert res.exit_code == 1
    assert f"error: {est / 'song' / 'accompaniment.wav'}: no_vocals.wav is beside it" in res.output


def hq_copy(root: Path, seconds: float | None) -> Path:
    """A MUSDB18-HQ folder (test subset) holding the shared track, its five files cut to ``seconds``."""
    if not HQ_TRACK.is_dir():
        pytest.skip("needs the MUSDB18-HQ track in shared/data/musdb-hq")
    d = root / "test" / HQ_TRACK.name
    d.mkdir(parents=True)
    for f in HQ_TRACK.glob("*.wav"):
        if seconds is None:
            (d / f.name).symlink_to(f)
        else:
            x, sr = sf.read(f, dtype="float32", frames=int(seconds * 44100))
            sf.write(d / f.name, x, sr, subtype="FLOAT")
    return root


@pytest.mark.parametrize("options, acc, ext, seconds", [
    ((), "accompaniment", "wav", None),
    (("-f", "flac", "--stem-names", "instrumental"), "instrumental", "flac", 4.0),
    (("--stem-names", "no_vocals", "--int16"), "no_vocals", "wav", 4.0),
])
def test_scores_what_separate_wrote_for_musdb_hq(tiny_model, tmp_path, options, acc, ext, seconds):
    """``vocalsep separate HQ/test -o est`` (every wav of every track, mixture.wav into <track>/mixture/),
    then ``vocalsep evaluate --data HQ --estimates est --seconds 3``: the figures are museval's on the
    first 3 s of est/<track>/mixture/{vocals,acc}.<ext> against the stems' sums."""
    hq = hq_copy(tmp_path / "hq", seconds)
    est = tmp_path / "est"
    res = run("separate", hq / "test", "-o", est, "--model", tiny_model, "-q", *options)
    assert res.exit_code == 0, res.output
    folder = est / HQ_TRACK.name / "mixture"
    assert sorted(p.name for p in folder.glob(f"*.{ext}")) == sorted([f"vocals.{ext}", f"{acc}.{ext}"])
    res = run("evaluate", "--data", hq, "--subset", "test", "--estimates", est, "--seconds", 3,
              "-o", tmp_path / "r.json", "--quiet")
    assert res.exit_code == 0, res.output
    n = 3 * 44100
    track = hq / "test" / HQ_TRACK.name
    ref = {s: sf.read(track / f"{s}.wav", dtype="float32", frames=n)[0] for s in ("vocals", "drums", "bass", "other")}
    acc_ref = ref["drums"] + ref["bass"] + ref["other"]
    ve = sf.read(folder / f"vocals.{ext}", dtype="float32", frames=n)[0]
    ae = sf.read(folder / f"{acc}.{ext}", dtype="float32", frames=n)[0]
    want = museval_direct(ref["vocals"], acc_ref, ve, ae, 44100)
    assert scored(tmp_path / "r.json")[HQ_TRACK.name] == pytest.approx(want, abs=1e-3)


def test_scores_what_separate_wrote_for_musdb_stems(tiny_model, tmp_path):
    """``vocalsep separate`` on MUSDB18's .stem.mp4 files (their mixture stream, through PyAV) writes
    <track>.stem/; evaluate finds it and scores it like the same separation done in process."""
    root = musdb_preview(tmp_path, 1)
    est = tmp_path / "est"
    res = run("separate", root / "train", "-o", est, "--model", tiny_model, "-q", "--float32")
    assert res.exit_code == 0, res.output
    (name,) = [p.name[:-len(".stem")] for p in est.iterdir()]
    track = ev.load_tracks(root, subset="train")[0].load()
    ve, _ = sf.read(est / f"{name}.stem" / "vocals.wav", dtype="float32")
    ae, _ = sf.read(est / f"{name}.stem" / "accompaniment.wav", dtype="float32")
    assert ve.shape == track.mixture.shape
    res = run("evaluate", "--data", root, "--subset", "train", "--estimates", est, "-o", tmp_path / "r.json",
              "--quiet")
    assert res.exit_code == 0, res.output
    want = museval_direct(track.vocals, track.accompaniment, ve, ae, track.rate)
    assert scored(tmp_path / "r.json")[name] == pytest.approx(want, abs=1e-3)


def test_estimates_in_two_layouts_are_refused(tmp_path):
    stems, est = tmp_path / "stems", tmp_path / "est"
    v, a = write_stems(stems, "song", 10, seconds=1.0)
    leaky_estimates(est, "song", v, a)
    leaky_estimates(est / "song", "mixture", v, a)
    res = run("evaluate", "--data", stems, "--estimates", est, "--quiet")
    assert res.exit_code == 1 and "estimates for track 'song' here and in" in res.output
