"""Separation: shapes, rates, lengths, reconstruction, full band, streaming seams, batch behaviour."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from vocalsep import Separator, VocalsepError, audio
from vocalsep.separate import collect_inputs, run_batch

from .conftest import make_audio


class ConstantMask:
    """Stands in for the network: the same mask value everywhere."""

    name, batch = "constant", 4

    def __init__(self, value):
        self.value = value

    def __call__(self, x):
        return np.full_like(x, self.value)


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2])
def test_shapes_lengths_and_reconstruction(tiny_model, rng, sr, channels):
    sep = Separator(tiny_model)
    x = make_audio(rng, 1.3, sr, channels)
    v, a = sep.separate(x, sr)
    assert v.shape == a.shape == x.shape and v.dtype == np.float32
    # vocals + accompaniment is the mixture (ratio mask with the mixture's phase; accompaniment = rest)
    assert np.abs(v + a - x).max() < 1e-6
    # the network did something: neither output is all or nothing
    assert 0.01 < np.sum(v ** 2) / np.sum(x ** 2) < 0.99


@pytest.mark.parametrize("n", [1, 50, 100, 1023, 1025])
def test_shorter_than_one_window(tiny_model, rng, n):
    sep = Separator(tiny_model)
    x = rng.standard_normal((n, 2)).astype(np.float32) * 0.1
    v, a = sep.separate(x, 44100)
    assert v.shape == x.shape
    assert np.abs(v + a - x).max() < 1e-6


def test_stereo_modes(tiny_model, rng):
    """One mask from the mid (default) or one per channel: both reconstruct; they differ on a wide mix."""
    x = make_audio(rng, 1.5, 22050, 2)
    x[:, 1] *= 0.1  # unbalanced channels
    mid = Separator(tiny_model).separate(x, 22050)[0]
    per = Separator(tiny_model, stereo="channels").separate(x, 22050)[0]
    assert mid.shape == per.shape == x.shape
    assert np.abs(mid - per).max() > 1e-4


def test_mono_1d_input(tiny_model, rng):
    x = make_audio(rng, 1.0, 16000, 1)[:, 0]
    v, a = Separator(tiny_model).separate(x, 16000)
    assert v.shape == a.shape == x.shape


def test_channels_first_is_refused_with_the_convention(tiny_model, rng):
    sep = Separator(tiny_model)
    x = make_audio(rng, 1.0, 22050, 2)
    for wrong in (x.T, x[:, :1].T, rng.standard_normal((2, 3)).astype(np.float32)):
        t0 = time.perf_counter()
        with pytest.raises(VocalsepError, match=r"shape \(\d+, \d+\).*\(samples, channels\).*channels_first=True"):
            sep.separate(wrong, 22050)
        assert time.perf_counter() - t0 < 0.5  # refused, not separated
    v, a = sep.separate(x.T, 22050, channels_first=True)
    want_v, want_a = sep.separate(x, 22050)
    assert v.shape == a.shape == (2, len(x))
    np.testing.assert_array_equal(v, want_v.T)
    np.testing.assert_array_equal(a, want_a.T)
    assert sep.separate(x[:5], 22050)[0].shape == (5, 2)                 # a short stereo clip is fine
    assert sep.separate(x[:, 0], 22050, channels_first=True)[0].shape == (len(x),)   # mono: no axis to swap


def test_full_band_survives(tiny_model, rng):
    """Content far above the model's 4 kHz Nyquist reaches the outputs, split by the mask."""
    sr = 44100
    t = np.arange(2 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 12000 * t) + 0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)[:, None]

    def band(y, lo, hi):
        spec = np.abs(np.fft.rfft(y[:, 0]))
        f = np.fft.rfftfreq(len(y), 1 / sr)
        return np.sum(spec[(f > lo) & (f < hi)] ** 2)

    # 0.1.0's rule (slope 0): the top half-octave's mean mask everywhere above the model's band
    flat = Separator(tiny_model, high_band_slope=0)
    flat.runner = ConstantMask(0.25)
    v, a = flat.separate(x, sr)
    assert band(v, 8000, 20000) / band(x, 8000, 20000) == pytest.approx(0.25 ** 2, rel=0.02)
    assert band(v + a, 8000, 20000) == pytest.approx(band(x, 8000, 20000), rel=1e-4)
    # the default: that mask raised to 1 + 2 x octaves above the model's top bin (63 x 8192 / 128 = 4032 Hz)
    sep = Separator(tiny_model)
    sep.runner = ConstantMask(0.25)
    v, a = sep.separate(x, sr)
    gain = 0.25 ** (1 + 2 * np.log2(12000 / 4032))
    assert band(v, 8000, 20000) / band(x, 8000, 20000) == pytest.approx(gain ** 2, rel=0.05)
    assert band(v + a, 8000, 20000) == pytest.approx(band(x, 8000, 20000), rel=1e-4)


def test_block_seams_are_exact_for_a_constant_mask(tiny_model, rng):
    """Streaming in blocks with cross-fades adds nothing of its own: a constant mask gives exactly
    mask x input across every block border."""
    sep = Separator(tiny_model, block_seconds=0.7, overlap_seconds=0.2, high_band_slope=0)  # one mask everywhere
    sep.runner = ConstantMask(0.4)
    x = make_audio(rng, 3.1, 22050, 2)
    v, _ = sep.separate(x, 22050)
    np.testing.assert_allclose(v, 0.4 * x, atol=2e-5)


def test_block_seams_stay_exact_when_the_overlap_is_half_a_block(tiny_model, rng):
    """A block twice the overlap, at a rate where the overlap rounds up to more than half the block in
    samples (0.5 s of 16003 Hz: 8002 of 16003): the blocks' overlaps still meet end to end."""
    sep = Separator(tiny_model, block_seconds=1.0, overlap_seconds=0.5, high_band_slope=0)
    sep.runner = ConstantMask(0.4)
    x = make_audio(rng, 4.3, 16003, 1)
    v, a = sep.separate(x, 16003)
    np.testing.assert_allclose(v, 0.4 * x, atol=2e-5)
    np.testing.assert_allclose(v + a, x, atol=1e-6)


def test_blocks_match_whole_song(tiny_model, rng):
    """Block-wise separation of a long input agrees with separating it in one piece (no seams)."""
    x = make_audio(rng, 6.0, 16000, 1)
    whole = Separator(tiny_model, block_seconds=100)
    blocks = Separator(tiny_model, block_seconds=1.0, overlap_seconds=0.5)
    v1, _ = whole.separate(x, 16000)
    v2, _ = blocks.separate(x, 16000)
    sdr = 10 * np.log10(np.sum(v1 ** 2) / np.sum((v1 - v2) ** 2))
    assert sdr > 25


def test_threads_change_nothing(tiny_model, rng, write_audio, tmp_path):
    """The network working ahead in a thread and the I/O thread give the audio of one thread, exactly."""
    x = make_audio(rng, 5.0, 22050, 2)
    threaded = Separator(tiny_model, block_seconds=1.0, overlap_seconds=0.3)
    plain = Separator(tiny_model, block_seconds=1.0, overlap_seconds=0.3, pipeline=False)
    np.testing.assert_array_equal(threaded.separate(x, 22050)[0], plain.separate(x, 22050)[0])
    src = write_audio("song.wav", 5.0, 22050, 2, subtype="FLOAT")
    a = threaded.separate_file(src, tmp_path / "a", fmt="flac")
    b = plain.separate_file(src, tmp_path / "b", fmt="flac")
    for stem in a:
        np.testing.assert_array_equal(sf.read(a[stem])[0], sf.read(b[stem])[0])


@pytest.mark.parametrize("block, overlap", [(10, 0), (10, 3), (10, 7), (7, 20), (1, 0), (100, 10)])
def test_file_blocks_match_array_blocks(tmp_path, rng, block, overlap):
    """Blocks read from a file (once, in order) are the blocks cut from the decoded array, at every length
    around the block size, with overlaps wider than a block too."""
    for n in (1, 99, 100, 101, 257):
        x = (0.1 * rng.standard_normal((n, 2))).astype(np.float32)
        path = tmp_path / f"n{n}.wav"
        sf.write(path, x, 8000, subtype="FLOAT")
        got = list(audio.blocks(path, block, overlap))
        want = list(audio.array_blocks(x, block, overlap))
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_separate_file_streams_and_keeps_format(tiny_model, write_audio, tmp_path):
    src = write_audio("in/song.flac", seconds=2.5, sr=48000, channels=2)
    sep = Separator(tiny_model, block_seconds=1.0, overlap_seconds=0.25)
    out = sep.separate_file(src, tmp_path / "out" / "song")
    x, sr = sf.read(src, dtype="float32")
    parts = {}
    for stem, path in out.items():
        y, sr_out = sf.read(path, dtype="float32")
        assert sr_out == sr and y.shape == x.shape, stem
        parts[stem] = y
    # 16-bit outputs: the sum is the input up to quantisation
    assert np.abs(parts["vocals"] + parts["accompaniment"] - x).max() < 3 / 32768
    # in-memory and streamed paths agree
    v, _ = sep.separate(x, sr)
    assert np.abs(v - parts["vocals"]).max() < 2 / 32768


def test_separate_file_refuses_to_clobber(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", seconds=0.5)
    sep = Separator(tiny_model)
    out = tmp_path / "o"
    sep.separate_file(src, out)
    with pytest.raises(VocalsepError, match="already exists"):
        sep.separate_file(src, out)
    sep.separate_file(src, out, overwrite=True)


@pytest.mark.parametrize("content,problem", [(b"", "empty"), (b"this is not audio\n" * 10, "not a readable"),
                                             (b"RIFF\x10\x00\x00\x00WAVEfmt ", "")])
def test_bad_files_raise_one_line_and_leave_nothing(tiny_model, tmp_path, content, problem):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    out = tmp_path / "out" / "bad"
    with pytest.raises(VocalsepError) as e:
        Separator(tiny_model).separate_file(bad, out)
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and problem in msg
    assert not out.exists()


def test_truncated_file(tiny_model, write_audio, tmp_path):
    src = write_audio("t.wav", seconds=2.0)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 3])      # header promises more samples than there are
    out = tmp_path / "out"
    # libsndfile reads what is there: either a clear error or a shorter, complete pair of files
    try:
        res = Separator(tiny_model).separate_file(src, out)
    except VocalsepError as e:
        assert str(src) in str(e) and not out.exists()
    else:
        a, _ = sf.read(res["vocals"])
        b, _ = sf.read(res["accompaniment"])
        assert len(a) == len(b) > 0


def test_collect_inputs(tmp_path, write_audio):
    write_audio("music/a.wav", 0.2)
    write_audio("music/sub/b.flac", 0.2)
    (tmp_path / "music" / "notes.txt").write_text("x")
    jobs = collect_inputs([tmp_path / "music"])
    assert [str(j.name) for j in jobs] == ["a", "sub/b"]
    with pytest.raises(VocalsepError, match="no such file"):
        collect_inputs([tmp_path / "missing.mp3"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VocalsepError, match="no audio files"):
        collect_inputs([tmp_path / "empty"])
    # beside usable inputs, unusable ones become failed jobs: the batch goes on
    jobs = collect_inputs([tmp_path / "missing.mp3", tmp_path / "music"])
    assert "no such file" in jobs[0].error and [j.error for j in jobs[1:]] == [None, None]


class FailingRunner(ConstantMask):
    """Stands in for a network whose runtime fails on the ``fail``-th call (counting from 1): LiteRT's
    RuntimeError when out of memory, or an error type the batch does not know."""

    def __init__(self, error, fail=1):
        super().__init__(0.5)
        self.error, self.fail, self.calls = error, fail, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls == self.fail:
            raise self.error
        return super().__call__(x)


def test_a_failing_network_is_blamed_on_the_model_not_the_input(tiny_model, write_audio, tmp_path):
    """It was reported as '<song>: could not be decoded (...)'; and an error type the batch did not know
    (TensorFlow's are not RuntimeErrors) stopped the whole batch with a traceback."""
    write_audio("music/a.wav", 0.5)
    write_audio("music/b.wav", 0.5)
    sep = Separator(tiny_model)
    sep.runner = FailingRunner(RuntimeError("Failed to invoke the interpreter: out of memory"))
    with pytest.raises(VocalsepError) as e:
        sep.separate_file(tmp_path / "music" / "a.wav", tmp_path / "o1")
    assert str(e.value) == (f"{tiny_model}: the network failed (RuntimeError: Failed to invoke the "
                            "interpreter: out of memory)")
    assert not (tmp_path / "o1").exists() or not [p for p in (tmp_path / "o1").rglob("*") if p.is_file()]

    class Unknown(Exception):
        pass

    sep.runner = FailingRunner(Unknown("boom"))
    lines = []
    failed = run_batch(sep, collect_inputs([tmp_path / "music"]), tmp_path / "o2", progress=False, echo=lines.append)
    assert [(f.job.path.name, f.message) for f in failed] == [
        ("a.wav", f"{tmp_path / 'music' / 'a.wav'}: {tiny_model}: the network failed (Unknown: boom)")]
    assert (tmp_path / "o2" / "b" / "vocals.wav").exists() and not (tmp_path / "o2" / "a").exists()

    def broken(*args, **kwargs):  # a bug of ours outside the network: that file fails, the batch goes on
        raise TypeError("a bug")

    sep.runner = ConstantMask(0.5)
    sep._stream_file = broken
    failed = run_batch(sep, collect_inputs([tmp_path / "music"]), tmp_path / "o3", progress=False, echo=lines.append)
    assert [f.message for f in failed] == [f"{tmp_path / 'music' / n}: unexpected error (TypeError: a bug)"
                                           for n in ("a.wav", "b.wav")]


def test_batch_goes_on_after_a_bad_file(tiny_model, write_audio, tmp_path):
    write_audio("music/a.wav", 0.5)
    (tmp_path / "music" / "broken.mp3").write_bytes(b"\x00garbage" * 50)
    write_audio("music/c.ogg", 0.5, sr=22050, channels=1)
    lines = []
    failed = run_batch(Separator(tiny_model), collect_inputs([tmp_path / "music"]), tmp_path / "out",
                       progress=False, echo=lines.append)
    assert [f.job.path.name for f in failed] == ["broken.mp3"]
    assert (tmp_path / "out" / "a" / "vocals.wav").exists()
    assert (tmp_path / "out" / "c" / "accompaniment.wav").exists()
    assert not (tmp_path / "out" / "broken").exists()
    assert any("broken.mp3" in line for line in lines) and any("1 FAILED" in line for line in lines)
    # a second run skips what exists and does not clobber it
    mtime = (tmp_path / "out" / "a" / "vocals.wav").stat().st_mtime_ns
    lines.clear()
    run_batch(Separator(tiny_model), collect_inputs([tmp_path / "music" / "a.wav"]), tmp_path / "out",
              progress=False, echo=lines.append)
    assert any("skipped" in line for line in lines)
    assert (tmp_path / "out" / "a" / "vocals.wav").stat().st_mtime_ns == mtime


def test_a_rerun_over_a_folder_leaves_out_its_own_outputs(tiny_model, write_audio, tmp_path, caplog, monkeypatch):
    """``vocalsep separate music/ -o music/separated`` run again (to resume, or after adding a song) takes
    the songs, not the stems it wrote the first time (they used to be separated into stems of stems)."""
    import logging

    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)  # (the CLI's tests turn it off)
    write_audio("music/a.wav", 0.5)
    sep = Separator(tiny_model)
    assert not run_batch(sep, collect_inputs([tmp_path / "music"]), tmp_path / "music" / "separated",
                         progress=False, echo=lambda s: None)
    written = sorted(p.name for p in (tmp_path / "music" / "separated" / "a").iterdir())
    assert written == [".vocalsep-outputs.json", "accompaniment.wav", "vocals.wav"]
    write_audio("music/sep/vocals.wav", 0.2)  # a song of the user's that happens to be called vocals.wav
    with caplog.at_level(logging.INFO, logger="vocalsep"):
        jobs = collect_inputs([tmp_path / "music"])
    assert sorted(str(j.name) for j in jobs) == ["a", "sep/vocals"]
    assert "left out 2 file(s) that vocalsep wrote" in caplog.text
    # a stem named on its own is taken; a folder of nothing but outputs is one error naming it
    assert [j.path for j in collect_inputs([tmp_path / "music" / "separated" / "a" / "vocals.wav"])] == [
        tmp_path / "music" / "separated" / "a" / "vocals.wav"]
    with pytest.raises(VocalsepError, match="separated: only vocalsep's own outputs \\(2 files\\)"):
        collect_inputs([tmp_path / "music" / "separated"])
