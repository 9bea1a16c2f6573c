"""vocalsep.evaluate and ``vocalsep evaluate``: figures against museval / mir_eval called directly, the
reference methods, length weighting, left-out tracks, and the CLI.  No trained model is needed."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from vocalsep import evaluate as ev
from vocalsep.cli import main

from .conftest import needs_ffmpeg

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HQ = DATA / "musdb-hq"
SR = 8000


def signals(seed: int, seconds: float = 3.0, sr: int = SR, channels: int = 2):
    """Seeded 'vocals' (a vibrato sine with harmonics) and 'accompaniment' (sines + noise), (n, channels)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 220 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    v = sum(0.2 / k * np.sin(k * phase) for k in (1, 2, 3))
    a = 0.1 * np.sin(2 * np.pi * 110 * t) + 0.05 * np.sin(2 * np.pi * 1300 * t)
    vocals = np.stack([v * (1 + 0.1 * c) for c in range(channels)], axis=1)
    acc = np.stack([a + 0.05 * rng.standard_normal(n) for _ in range(channels)], axis=1)
    return vocals.astype(np.float32), acc.astype(np.float32)


def leaky(track: ev.TrackAudio, leak: float = 0.3, noise: float = 0.01, seed: int = 0):
    """A fake separation: each estimate leaks ``leak`` of the other source, plus a little noise."""
    rng = np.random.default_rng(seed)
    v = track.vocals + leak * track.accompaniment + noise * rng.standard_normal(track.vocals.shape)
    a = track.accompaniment + leak * track.vocals + noise * rng.standard_normal(track.vocals.shape)
    return v.astype(np.float32), a.astype(np.float32)


def make_track(name: str, seed: int, seconds: float = 3.0, channels: int = 1) -> ev.TrackAudio:
    v, a = signals(seed, seconds, channels=channels)
    return ev.TrackAudio(name, v + a, v, a, SR)


def write_stems(root: Path, name: str, seed: int, seconds: float = 2.0, vocals_gain: float = 1.0):
    v, a = signals(seed, seconds, channels=1)
    d = root / name
    d.mkdir(parents=True)
    sf.write(d / "vocals.wav", v * vocals_gain, SR, subtype="FLOAT")
    sf.write(d / "accompaniment.wav", a, SR, subtype="FLOAT")
    return v * vocals_gain, a


# ------------------------------------------------------------------------ figures equal to the libraries


@needs_ffmpeg
def test_sisec18_equals_museval():
    import museval

    track = make_track("t", 1, seconds=2.0, channels=2)
    v, a = leaky(track)
    res = ev.evaluate_museval([track], lambda tr: (v, a), log=print)
    sdr, isr, sir, sar = museval.evaluate(
        np.stack([track.vocals, track.accompaniment]).astype(np.float64),
        np.stack([v, a]).astype(np.float64), win=SR, hop=SR)
    direct = {"SDR": sdr, "SIR": sir, "SAR": sar, "ISR": isr}
    assert res["n_tracks"] == 1 and res["n_left_out"] == 0
    tr = res["tracks"][0]
    for i, target in enumerate(ev.TARGETS):
        for m in ev.V4_METRICS:
            assert len(tr["windows"][target][m]) == 2
            np.testing.assert_allclose(tr["windows"][target][m], direct[m][i], rtol=1e-9)
            assert tr[target][m] == pytest.approx(np.nanmedian(direct[m][i]), rel=1e-9)
            assert res["aggregate"][target][m] == tr[target][m]
    assert 5 < tr["vocals"]["SDR"] < 20


def test_sisec18_median_over_tracks_and_nan_windows():
    tracks = [make_track(f"t{i}", i) for i in range(3)]
    leaks = {"t0": 0.1, "t1": 0.3, "t2": 0.6}
    res = ev.evaluate_museval(tracks, lambda tr: leaky(tr, leaks[tr.name]))
    sdrs = [t["vocals"]["SDR"] for t in res["tracks"]]
    assert res["aggregate"]["vocals"]["SDR"] == pytest.approx(np.median(sdrs))
    assert sdrs[0] > sdrs[1] > sdrs[2]
    # a silent second: museval gives a NaN window there, which the per-track median ignores
    track = make_track("gap", 5)
    track.vocals[SR:2 * SR] = 0
    track.mixture = track.vocals + track.accompaniment
    res = ev.evaluate_museval([track], leaky)
    w = res["tracks"][0]["windows"]["vocals"]["SDR"]
    assert np.isnan(w[1]) and not np.isnan(w[0])
    assert res["tracks"][0]["vocals"]["SDR"] == pytest.approx(np.median([w[0], w[2]]))


@needs_ffmpeg
def test_museval_fallback_without_the_package(monkeypatch):
    """museval's package imports musdb (needs ffmpeg); the fallback runs museval/metrics.py alone."""
    import museval

    track = make_track("t", 2, seconds=2.0)
    v, a = leaky(track)
    refs = np.stack([track.vocals, track.accompaniment])
    ests = np.stack([v, a])
    want = ev.score_sisec18(refs, ests, SR)
    monkeypatch.setitem(sys.modules, "museval", None)  # import museval -> ImportError
    got = ev.score_sisec18(refs, ests, SR)
    assert got == want
    assert museval  # the real one was importable all along


def test_mir1k_equals_mir_eval():
    from mir_eval.separation import bss_eval_sources

    track = make_track("c", 3, channels=1)
    v, a = leaky(track, 0.2)
    res = ev.evaluate_mir1k([track], lambda tr: (v, a))
    refs = np.stack([track.vocals[:, 0], track.accompaniment[:, 0]]).astype(np.float64)
    mix = track.mixture[:, 0].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, sir, sar, _ = bss_eval_sources(refs, np.stack([v[:, 0], a[:, 0]]).astype(np.float64),
                                            compute_permutation=False)
        sdr_mix, _, _, _ = bss_eval_sources(refs, np.stack([mix, mix]), compute_permutation=False)
    clip = res["tracks"][0]
    for i, target in enumerate(ev.TARGETS):
        assert clip[target]["SDR"] == pytest.approx(sdr[i], rel=1e-9)
        assert clip[target]["SIR"] == pytest.approx(sir[i], rel=1e-9)
        assert clip[target]["SAR"] == pytest.approx(sar[i], rel=1e-9)
        assert clip[target]["NSDR"] == pytest.approx(sdr[i] - sdr_mix[i], rel=1e-9)
        # one clip: the length-weighted means are its own figures
        assert res["aggregate"][target]["GNSDR"] == pytest.approx(clip[target]["NSDR"])
        assert res["aggregate"][target]["GSIR"] == pytest.approx(clip[target]["SIR"])
        assert res["aggregate"][target]["GSAR"] == pytest.approx(clip[target]["SAR"])


def test_mir1k_downmixes_stereo():
    track = make_track("c", 4, channels=2)
    v, a = leaky(track, 0.2)
    res = ev.evaluate_mir1k([track], lambda tr: (v, a))
    mono = ev.TrackAudio("c", track.mixture.mean(1, keepdims=True), track.vocals.mean(1, keepdims=True),
                         track.accompaniment.mean(1, keepdims=True), SR)
    res_mono = ev.evaluate_mir1k([mono], lambda tr: (v.mean(1, keepdims=True), a.mean(1, keepdims=True)))
    assert res["tracks"][0]["vocals"]["NSDR"] == pytest.approx(res_mono["tracks"][0]["vocals"]["NSDR"], abs=1e-4)


# --------------------------------------------------------------------------------- length weighting


def test_mir1k_weights_clips_by_length():
    short, long = make_track("short", 5, seconds=1.0, channels=1), make_track("long", 6, seconds=3.0, channels=1)
    leaks = {"short": 0.05, "long": 0.5}  # very different figures per clip
    res = ev.evaluate_mir1k([short, long], lambda tr: leaky(tr, leaks[tr.name]))
    by = {c["name"]: c for c in res["tracks"]}
    assert by["short"]["duration"] == 1.0 and by["long"]["duration"] == 3.0
    for target in ev.TARGETS:
        for g, m in (("GNSDR", "NSDR"), ("GSIR", "SIR"), ("GSAR", "SAR"), ("GSDR", "SDR")):
            weighted = (1 * by["short"][target][m] + 3 * by["long"][target][m]) / 4
            plain = (by["short"][target][m] + by["long"][target][m]) / 2
            assert res["aggregate"][target][g] == pytest.approx(weighted)
            if m in ("NSDR", "SIR"):  # SAR (and so SDR) is set by the added noise, alike in both clips
                assert abs(weighted - plain) > 0.5
    assert res["duration"] == 4.0


def test_mir1k_aggregate_known_figures():
    clips = [{"duration": 2.0, "vocals": {"NSDR": 10.0, "SDR": 1, "SIR": 20.0, "SAR": 5.0},
              "accompaniment": {"NSDR": 0.0, "SDR": 1, "SIR": 0.0, "SAR": 0.0}},
             {"duration": 6.0, "vocals": {"NSDR": 2.0, "SDR": 1, "SIR": 4.0, "SAR": 9.0},
              "accompaniment": {"NSDR": 4.0, "SDR": 1, "SIR": 8.0, "SAR": 8.0}}]
    agg = ev.mir1k_aggregate(clips)
    assert agg["vocals"]["GNSDR"] == pytest.approx(4.0)       # (2*10 + 6*2) / 8, not (10 + 2) / 2 = 6
    assert agg["vocals"]["GSIR"] == pytest.approx(8.0)
    assert agg["vocals"]["GSAR"] == pytest.approx(8.0)
    assert agg["accompaniment"]["GNSDR"] == pytest.approx(3.0)


def test_mir1k_silent_vocals_left_out_with_warning():
    ok = make_track("ok", 7, channels=1)
    silent = make_track("silent", 8, channels=1)
    silent.vocals[:] = 0
    silent.mixture = silent.accompaniment.copy()
    msgs = []
    res = ev.evaluate_mir1k([ok, silent], ev.MixtureEstimator(), log=msgs.append)
    assert res["n_tracks"] == 1 and res["n_left_out"] == 1
    assert res["left_out"][0]["name"] == "silent" and res["left_out"][0]["kind"] == "silent"
    assert len(msgs) == 1 and "silent" in msgs[0] and "vocals reference" in msgs[0]
    assert "1 clip, 1 left out" in ev.summary_line(res)


def test_clips_too_short_for_the_protocol_are_left_out_with_a_warning():
    """A track under one 1 s BSSEval window was scored (a SIR of 200 dB from one sample) and counted in the
    median; a MIR-1K clip under bss_eval's 512-tap filters likewise."""
    ok, short = make_track("ok", 7, channels=2), make_track("short", 8, channels=2)
    short = ev.TrackAudio("short", short.mixture[:SR - 1], short.vocals[:SR - 1], short.accompaniment[:SR - 1], SR)
    msgs = []
    res = ev.evaluate_museval([ok, short], ev.MixtureEstimator(), log=msgs.append)
    assert res["n_tracks"] == 1 and [(d["name"], d["kind"]) for d in res["left_out"]] == [("short", "too short")]
    assert msgs == [f"warning: short: {SR - 1} samples, shorter than one BSSEval window (1 s); too short to score "
                    "(left out)"]
    tiny = make_track("tiny", 9, channels=1)
    tiny = ev.TrackAudio("tiny", tiny.mixture[:511], tiny.vocals[:511], tiny.accompaniment[:511], SR)
    res = ev.evaluate_mir1k([make_track("ok", 7, channels=1), tiny], ev.MixtureEstimator(), log=msgs.append)
    assert res["n_tracks"] == 1 and res["left_out"][0]["kind"] == "too short" and "512-sample" in msgs[-1]


# ------------------------------------------------------------------------------ reference methods


def test_mixture_method_has_zero_nsdr():
    res = ev.evaluate_mir1k([make_track("c", 9, channels=1)], ev.MixtureEstimator())
    for target in ev.TARGETS:
        assert res["aggregate"][target]["GNSDR"] == pytest.approx(0.0, abs=1e-9)


def test_irm_on_synthetic_beats_mixture():
    track = make_track("t", 10, seconds=2.0)
    irm = ev.evaluate_museval([track], ev.OracleIRM())
    mix = ev.evaluate_museval([track], ev.MixtureEstimator())
    assert irm["aggregate"]["vocals"]["SDR"] > mix["aggregate"]["vocals"]["SDR"] + 10
    v, a = ev.OracleIRM()(track)
    np.testing.assert_allclose(v + a, track.mixture, atol=1e-4)  # masks M and 1 - M add up to the mixture


def test_irm_stft_follows_separation():
    irm = ev.OracleIRM()
    for rate in (44100, 16000):
        v, a = signals(3, 0.5)
        irm(ev.TrackAudio("t", v + a, v, a, rate))
    assert irm.used[44100] == (4096, 1024)
    assert irm.used[16000] == (2048, 512)


@pytest.mark.skipif(not (HQ / "test").is_dir(), reason="shared MUSDB18-HQ data not present")
def test_irm_beats_mixture_on_real_track():
    tracks = ev.load_tracks(HQ, "auto", "test")
    assert isinstance(tracks[0], ev.SongTrack) and tracks[0].name == "AM Contra - Heart Peripheral"
    irm = ev.evaluate_museval(tracks[:1], ev.OracleIRM(), seconds=3)
    mix = ev.evaluate_museval(tracks[:1], ev.MixtureEstimator(), seconds=3)
    assert irm["tracks"][0]["samples"] == 3 * 44100 and irm["tracks"][0]["channels"] == 2
    assert irm["aggregate"]["vocals"]["SDR"] > mix["aggregate"]["vocals"]["SDR"] + 5
    assert irm["aggregate"]["accompaniment"]["SDR"] > mix["aggregate"]["accompaniment"]["SDR"]


def test_separator_object_is_wrapped():
    class FakeSeparator:
        spectral = None
        model_config = None
        model_path = Path("fake.vsep")

        def separate(self, audio, sample_rate):
            assert audio.dtype == np.float32 and audio.ndim == 2 and sample_rate == SR
            return 0.5 * audio, 0.5 * audio

    res = ev.evaluate_museval([make_track("t", 11)], FakeSeparator())
    assert res["method"] == {"method": "model", "model": "fake.vsep"}
    assert res["n_tracks"] == 1


def test_wrong_shaped_estimate_is_left_out():
    msgs = []
    res = ev.evaluate_museval([make_track("t", 12)], lambda tr: (tr.mixture[:-5], tr.mixture), log=msgs.append)
    assert res["n_tracks"] == 0 and res["aggregate"] is None
    assert "vocals estimate has shape" in msgs[0] and msgs[0].startswith("error: t:")


def test_parallel_jobs_give_the_same_figures():
    tracks = [make_track(f"t{i}", 20 + i, seconds=1.0) for i in range(2)]
    one = ev.evaluate_museval(tracks, leaky, jobs=1)
    two = ev.evaluate_museval(tracks, leaky, jobs=2)
    assert [t["name"] for t in two["tracks"]] == ["t0", "t1"]
    assert json.dumps(one, default=str) == json.dumps(two, default=str)


# --------------------------------------------------------------------------------- data and selection


def test_song_prefix_selection(tmp_path):
    for i, name in enumerate(["amy_1_01", "amy_1_02", "amy_10_01", "abjones_1_01"]):
        write_stems(tmp_path, name, i, seconds=0.5)
    tracks = ev.load_tracks(tmp_path)
    assert [t.name for t in ev.select_tracks(tracks, prefixes=["amy_1"])] == ["amy_1_01", "amy_1_02"]
    assert [t.name for t in ev.select_tracks(tracks, ["abjones_1_01"], ["amy_10"])] == ["abjones_1_01", "amy_10_01"]
    assert len(ev.select_tracks(tracks, prefixes=["amy"])) == 3
    with pytest.raises(ev.VocalsepError, match="amy_2"):
        ev.select_tracks(tracks, prefixes=["amy_2"])
    lst = tmp_path / "val.txt"
    lst.write_text("# held out\namy_10\n\nabjones_1  # singer 1\n")
    assert ev.read_list_file(lst) == ["amy_10", "abjones_1"]


# ---------------------------------------------------------------------------------------------- CLI


def run(*args):
    return CliRunner().invoke(main, ["evaluate", *[str(a) for a in args]], catch_exceptions=False)


@needs_ffmpeg
def test_cli_mixture_on_stems_folder(tmp_path):
    import museval

    stems = tmp_path / "stems"
    refs = {name: write_stems(stems, name, i) for i, name in enumerate(["song_a", "song_b"])}
    out = tmp_path / "r.json"
    res = run("--data", stems, "--method", "mixture", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "song_a" in res.output and "song_b" in res.output
    assert "[mixture] median over 2 tracks" in res.output
    d = json.loads(out.read_text())
    assert d["n_tracks"] == 2 and d["method"] == {"method": "mixture"} and d["protocol"] == "sisec18"
    v, a = refs["song_a"]
    mix = (v + a).astype(np.float64)
    sdr, isr, sir, sar = museval.evaluate(np.stack([v, a]).astype(np.float64), np.stack([mix, mix]), win=SR, hop=SR)
    assert d["tracks"][0]["name"] == "song_a"
    assert d["tracks"][0]["vocals"]["SDR"] == pytest.approx(np.nanmedian(sdr[0]), rel=1e-6)
    assert d["tracks"][0]["accompaniment"]["ISR"] == pytest.approx(np.nanmedian(isr[1]), rel=1e-6)
    # an existing --out is replaced only with --overwrite (it was overwritten without a word), before any scoring
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"RIFF audio")
    res = run("--data", stems, "--method", "mixture", "--out", victim, "--quiet")
    assert res.exit_code == 1 and f"{victim}: already exists (use --overwrite" in res.output and not res.stdout
    assert victim.read_bytes() == b"RIFF audio"
    res = run("--data", stems, "--method", "mixture", "--out", out, "--quiet", "--overwrite")
    assert res.exit_code == 0 and json.loads(out.read_text())["n_tracks"] == 2
    vals = [t["vocals"]["SDR"] for t in d["tracks"]]
    assert d["aggregate"]["vocals"]["SDR"] == pytest.approx(np.median(vals))

    # the MIR-1K protocol on the same folder: the mixture's NSDR is 0 by definition
    res = run("--data", stems, "--protocol", "mir1k", "--method", "mixture", "--songs", "song_b", "--quiet")
    assert res.exit_code == 0, res.output
    assert "length-weighted over 1 clip (0.0 min)" in res.output and "GNSDR 0.00" in res.output
    assert "song_a" not in res.output


def test_cli_estimates_dir_missing_and_mismatched(tmp_path):
    stems, est = tmp_path / "stems", tmp_path / "est"
    names = ["a_ok", "b_missing", "c_short", "d_ok"]
    for i, name in enumerate(names):
        v, a = write_stems(stems, name, 30 + i)
        (est / name).mkdir(parents=True)
        if name == "b_missing":
            sf.write(est / name / "vocals.wav", v, SR, subtype="FLOAT")  # no accompaniment.wav
            continue
        n = len(v) - 10 if name == "c_short" else len(v)
        sf.write(est / name / "vocals.wav", v[:n] + 0.1 * a[:n], SR, subtype="FLOAT")
        sf.write(est / name / "accompaniment.wav", a[:n] + 0.1 * v[:n], SR, subtype="FLOAT")
    out = tmp_path / "r.json"
    res = run("--data", stems, "--dataset", "stems", "--estimates", est, "--out", out, "--quiet")
    assert res.exit_code == 1  # some tracks failed
    err_lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 2
    assert any(str(est / "b_missing" / "accompaniment.wav") in ln and "no such file" in ln for ln in err_lines)
    assert any(str(est / "c_short" / "vocals.wav") in ln and "15990 samples" in ln for ln in err_lines)
    assert "median over 2 tracks, 2 left out" in res.output
    d = json.loads(out.read_text())
    assert d["n_tracks"] == 2 and d["n_left_out"] == 2
    assert [t["name"] for t in d["tracks"]] == ["a_ok", "d_ok"]
    assert {x["name"] for x in d["left_out"]} == {"b_missing", "c_short"}
    assert d["method"] == {"method": "estimates", "estimates": str(est)}


def test_cli_errors_are_one_line(tmp_path):
    res = run("--data", tmp_path / "nowhere", "--method", "mixture")
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0 and "does not exist" in res.output
    (tmp_path / "empty").mkdir()
    res = run("--data", tmp_path / "empty", "--method", "mixture")
    assert res.exit_code == 1 and "no usable songs" in res.output
    write_stems(tmp_path / "s", "x", 0, seconds=0.5)
    res = run("--data", tmp_path / "s", "--method", "irm", "--estimates", tmp_path)
    assert res.exit_code == 2


def test_ccmixter_layout_is_evaluated(tmp_path):
    """Evaluation reads the layouts that training reads: CCMixter's source-02 is the voice."""
    rng = np.random.default_rng(5)
    song = tmp_path / "cc" / "song"
    song.mkdir(parents=True)
    voice, acc = (0.1 * rng.standard_normal((SR // 2, 2))).astype(np.float32), (0.1 * rng.standard_normal((SR // 2, 2))).astype(np.float32)
    sf.write(song / "source-01.wav", acc, SR, subtype="FLOAT")
    sf.write(song / "source-02.wav", voice, SR, subtype="FLOAT")
    sf.write(song / "mix.wav", voice + acc, SR, subtype="FLOAT")
    (track,) = ev.load_tracks(tmp_path / "cc")
    t = track.load()
    np.testing.assert_array_equal(t.vocals, voice)
    np.testing.assert_array_equal(t.accompaniment, acc)
    np.testing.assert_allclose(t.mixture, voice + acc)


def test_import_is_light():
    code = ("import sys, vocalsep.evaluate\n"
            "print('HEAVY', [m for m in ('tensorflow', 'keras', 'musdb', 'museval', 'mir_eval') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_split_follows_training_split(tmp_path):
    from types import SimpleNamespace

    from vocalsep.data import split_songs

    names = [f"{s}_{song}_{clip:02d}" for s in ("amy", "bob") for song in range(1, 6) for clip in (1, 2)]
    tracks = [SimpleNamespace(name=n) for n in names]
    val = ev.split_tracks(tracks, "validation", fraction=0.2)
    train = ev.split_tracks(tracks, "train", fraction=0.2)
    assert sorted(t.name for t in val + train) == sorted(names) and len(val) == 4  # 2 of 10 songs, 2 clips each
    songs = {t.name.rsplit("_", 1)[0] for t in val}
    assert {t.name for t in val} == {f"{s}_{c:02d}" for s in songs for c in (1, 2)}
    _, want = split_songs([SimpleNamespace(name=n, group=n.rsplit("_", 1)[0]) for n in names], [], 0.2)
    assert {t.name for t in val} == {s.name for s in want}
    assert [t.name for t in ev.split_tracks(tracks, "validation", ["bob_3"])] == ["bob_3_01", "bob_3_02"]


# ------------------------------------------------------------------------------------ bad references


def test_nan_in_a_reference_is_blamed_on_the_reference_file(tmp_path):
    v, a = write_stems(tmp_path, "song", 3, seconds=1.0)
    v[100:110] = np.nan
    sf.write(tmp_path / "song" / "vocals.wav", v, SR, subtype="FLOAT")
    msgs = []
    res = ev.evaluate_museval(ev.load_tracks(tmp_path), ev.MixtureEstimator(), log=msgs.append)
    assert res["n_tracks"] == 0 and res["n_left_out"] == 1 and res["left_out"][0]["kind"] == "error"
    assert str(tmp_path / "song" / "vocals.wav") in msgs[0] and "reference" in msgs[0]
    assert "estimate" not in msgs[0]
    # arrays given directly: the track and the reference are named
    track = make_track("t", 4, seconds=1.0)
    track.accompaniment[5] = np.inf
    msgs = []
    ev.evaluate_mir1k([track], leaky, log=msgs.append)
    assert msgs == ["error: t: the accompaniment reference holds NaN or infinite values (left out)"]


def test_cli_corrupt_or_mismatched_reference_is_left_out_and_fails(tmp_path):
    stems = tmp_path / "stems"
    for i, name in enumerate(["a_ok", "b_corrupt", "c_mismatch", "d_ok"]):
        write_stems(stems, name, 40 + i, seconds=1.0)
    (stems / "b_corrupt" / "vocals.wav").write_bytes(b"RIFF not audio at all" * 20)
    v, _ = signals(1, 0.5, channels=1)
    sf.write(stems / "c_mismatch" / "accompaniment.wav", v, SR, subtype="FLOAT")  # half the length
    out = tmp_path / "r.json"
    res = run("--data", stems, "--method", "mixture", "--out", out, "--quiet")
    assert res.exit_code == 1, res.output
    err_lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 2
    assert any(str(stems / "b_corrupt" / "vocals.wav") in ln for ln in err_lines)
    assert any(str(stems / "c_mismatch" / "accompaniment.wav") in ln and "length" in ln for ln in err_lines)
    assert "median over 2 tracks, 2 left out" in res.output
    d = json.loads(out.read_text())
    assert d["n_tracks"] == 2 and d["n_left_out"] == 2
    assert [x["name"] for x in d["left_out"]] == ["b_corrupt", "c_mismatch"]
    assert all(x["kind"] == "error" for x in d["left_out"])
    # every song broken: each reported, none scored
    (stems / "a_ok" / "vocals.wav").write_bytes(b"")
    res = run("--data", stems, "--method", "mixture", "--tracks", "a_ok", "--quiet")
    assert res.exit_code == 1 and "a_ok" in res.output and "no track could be scored" in res.output
