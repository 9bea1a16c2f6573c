"""Hostile input names and files, and the library's arguments (issue 17 items 8, 9, 11, 12): outputs stay
inside -o, a FIFO is refused without hanging, and bad arguments get a
VocalsepError naming them."""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from vocalsep import Separator, VocalsepError, audio
from vocalsep.cli import main

from .conftest import make_audio


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("name", ["..wav", "...wav"])
def test_output_names_never_leave_the_output_folder(tiny_model, tmp_path, rng, name):
    """``...wav`` has the stem ``..`` and ``..wav`` the stem ``.``: the outputs must go below -o."""
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / name, make_audio(rng, 0.3, 22050, 1), 22050, format="WAV")
    out = tmp_path / "work" / "out"
    r = run("separate", tmp_path / "in" / name, "-o", out, "--model", tiny_model)
    assert r.exit_code == 0, r.output
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("vocals.wav"))
    assert written == [(out / name / "vocals.wav").relative_to(tmp_path)]


def test_a_fifo_is_refused_at_once(tiny_model, tmp_path):
    """A FIFO with no writer: one line, exit 1, no hang (the run is stopped by the test if it hangs)."""
    fifo = tmp_path / "song.wav"
    os.mkfifo(fifo)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", CliRunner().invoke(
        main, ["separate", str(fifo), "-o", str(tmp_path / "out"), "--model", str(tiny_model)])), daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():  # unblock the reader so that the test process can end
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        t.join(10)
        pytest.fail("separate hung on a FIFO")
    r = result["r"]
    assert r.exit_code == 1 and "not a regular file" in r.output and str(fifo) in r.output
    assert r.output.strip().count("\n") == 0
    with pytest.raises(VocalsepError, match="not a regular file"):
        audio.check_file(fifo)


BAD_RATES = [0, -44100, math.nan, math.inf, "44100", 44100.5, None, True, 10 ** 12]


@pytest.mark.parametrize("sr", BAD_RATES, ids=repr)
def test_separate_refuses_bad_sample_rates(tiny_model, rng, sr):
    sep = Separator(tiny_model)
    with pytest.raises(VocalsepError, match="sample_rate") as e:
        sep.separate(make_audio(rng, 0.2, 8000, 1), sr)
    assert "\n" not in str(e.value)


def test_separate_refuses_arrays_without_samples_or_channels(tiny_model):
    sep = Separator(tiny_model)
    for x in (np.zeros((100, 0), np.float32), np.zeros((0, 2), np.float32), np.zeros((2, 3, 4), np.float32),
              [["a"]]):
        with pytest.raises(VocalsepError, match="^x"):
            sep.separate(x, 8000)


@pytest.mark.parametrize("kwargs, name", [
    ({"block_seconds": 0}, "block_seconds"), ({"block_seconds": -1}, "block_seconds"),
    ({"block_seconds": math.nan}, "block_seconds"), ({"block_seconds": math.inf}, "block_seconds"),
    ({"overlap_seconds": -0.5}, "overlap_seconds"), ({"overlap_seconds": math.nan}, "overlap_seconds"),
    ({"block_seconds": 0.3, "overlap_seconds": 0.2}, "block_seconds"),  # under twice the overlap: blocks would
    ({"block_seconds": 0.01}, "block_seconds"),                          # tile wrongly (the second: the model's)
    ({"batch": 0}, "batch"), ({"batch": -2}, "batch"), ({"batch": 1.5}, "batch"),
    ({"high_band_from_hz": -1.0}, "high_band_from_hz"),
], ids=lambda v: repr(v) if isinstance(v, dict) else "")
def test_separator_refuses_bad_arguments(tiny_model, kwargs, name):
    with pytest.raises(VocalsepError, match=f"^{name}"):
        Separator(tiny_model, **kwargs)


def test_evaluate_checks_its_output_before_scoring(tmp_path):
    """``evaluate -o DIR`` used to fail after all the scoring, losing it."""
    from .test_train import song

    song(tmp_path / "stems", "a", 0)
    r = run("evaluate", "--data", tmp_path / "stems", "--method", "mixture", "--quiet", "-o", tmp_path)
    assert r.exit_code == 1 and "is a folder" in r.output and "median" not in r.output
    # a folder's name that does not exist yet ("-o results/") wrote a file called "results"
    r = run("evaluate", "--data", tmp_path / "stems", "--method", "mixture", "--quiet", "-o", f"{tmp_path / 'new'}/")
    assert r.exit_code == 1 and "is a folder (name)" in r.output and not (tmp_path / "new").exists()
    # --estimates given a file
    r = run("evaluate", "--data", tmp_path / "stems", "--estimates", tmp_path / "stems" / "a" / "vocals.wav")
    assert r.exit_code == 1 and "a file, not a folder: --estimates takes the folder" in r.output


def test_an_infinite_sample_is_named_before_any_work(tiny_model, tmp_path, rng):
    """An Inf in the input: the input is blamed (not the model, whose output would be NaN), and no numpy
    RuntimeWarning leaks out of the computation."""
    import warnings

    x = make_audio(rng, 1.0, 22050, 2)
    x[5000, 1] = np.inf
    src = tmp_path / "inf.wav"
    sf.write(src, x, 22050, subtype="FLOAT")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(VocalsepError, match="contains NaN or infinite samples") as e:
            Separator(tiny_model).separate_file(src, tmp_path / "out")
    assert str(src) in str(e.value) and str(tiny_model) not in str(e.value)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not (tmp_path / "out").exists()


def test_a_damaged_mp3_prints_nothing_of_the_decoders(tiny_model, tmp_path, rng, capfd):
    """libmpg123's notes on damaged frames ("Note: Trying to resync...") used to reach the terminal between
    the progress bar and vocalsep's own line."""
    src = tmp_path / "damaged.mp3"
    sf.write(src, make_audio(rng, 3.0, 44100, 2), 44100)
    data = bytearray(src.read_bytes())
    for i in range(2000, len(data), 997):
        data[i] ^= 0x5A
    src.write_bytes(bytes(data))
    capfd.readouterr()
    try:
        Separator(tiny_model).separate_file(src, tmp_path / "out")
    except VocalsepError:
        pass
    err = capfd.readouterr().err
    assert "resync" not in err.lower() and "libmpg123" not in err and "error:" not in err, err


def test_an_mp3_cut_short_separates_with_a_warning_naming_both_lengths(tiny_model, tmp_path, rng):
    """A download cut short decodes without an error into a short song; its Xing header still announces the
    whole length, so separation warns (once: a hot input's --clip rescale decodes it twice) and writes stems
    as long as the audio read.  A part that runs past the cut warns too; the whole file and a part inside
    what was read stay quiet."""
    x = make_audio(rng, 10.0, 22050, 1)
    sf.write(tmp_path / "whole.mp3", 2.6 * x / np.abs(x).max(), 22050, format="MP3")  # mp3 holds peaks above 1
    data = (tmp_path / "whole.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[:len(data) // 3])
    with audio.quiet_stderr():
        read = len(sf.read(tmp_path / "cut.mp3")[0])
    assert read < 22050 * 5
    for name, extra, warned in (("cut", [], True), ("whole", [], False), ("cut", ["--duration", "1"], False),
                                ("cut", ["--start", "2", "--duration", "5"], True)):  # a part past the cut
        r = run("separate", tmp_path / f"{name}.mp3", "-o", tmp_path / f"out{len(extra)}{name}",
                "--model", tiny_model, "--int16", "-q", *extra)
        assert r.exit_code == 0, r.output
        msgs = [line for line in r.output.splitlines() if "cut short" in line]
        assert msgs == ([f"warning: {tmp_path / 'cut.mp3'}: its audio ends at {read / 22050:.1f} s, but its header "
                         "announces 10.0 s: the file may be cut short (the stems are as long as the audio read)"]
                        if warned else []), (name, extra, r.output)
        if warned:
            assert "both scaled by" in r.output  # the rescale's second pass ran, without a second warning
            assert sf.info(tmp_path / "out0cut" / "cut" / "vocals.wav").frames == read
    r = run("separate", tmp_path / "cut.mp3", "-o", tmp_path / "past", "--model", tiny_model, "--start", "8")
    assert r.exit_code == 1 and r.stderr.strip() == (  # a start past the cut, inside the announced length
        f"Error: {tmp_path / 'cut.mp3'}: --start 8 s is at or past its end (its audio stops before the 10.00 s "
        "its header announces: the file may be cut short)")
    assert not (tmp_path / "past").exists() or not list((tmp_path / "past").rglob("*.wav"))


def test_an_mp3_without_a_frame_count_is_read_to_its_end(tiny_model, tmp_path, rng):
    """Without a Xing/Info frame libsndfile guesses an mp3's length from its first frame's bitrate and stops
    reading at the guess: 19 of this variable-bitrate file's 30 s, which starts quietly.  PyAV reads it to
    its end, for separation (no 'cut short' warning either: there is no count to fall short of), the length
    of training stems (audio.info) and whole reads."""
    sr = 22050
    x = np.concatenate([1e-4 * rng.standard_normal(sr * 5), 0.3 * rng.standard_normal(sr * 25)])[:, None]
    sf.write(tmp_path / "counted.mp3", x.astype(np.float32), sr, format="MP3")  # libsndfile writes a Xing frame
    data = bytearray((tmp_path / "counted.mp3").read_bytes())
    at = data.find(b"Xing")
    assert 0 <= at < 200
    data[at:at + 4] = b"Zzzz"  # as an encoder that writes none (FFmpeg to a pipe, say)
    (tmp_path / "uncounted.mp3").write_bytes(bytes(data))
    with audio.quiet_stderr():
        assert len(sf.read(tmp_path / "uncounted.mp3")[0]) < 25 * sr  # what libsndfile alone gives
    assert not audio.mp3_without_length(tmp_path / "counted.mp3")
    assert audio.mp3_without_length(tmp_path / "uncounted.mp3")
    assert 30 * sr <= audio.info(tmp_path / "uncounted.mp3").frames <= 30.2 * sr
    assert 30 * sr <= len(audio.read(tmp_path / "uncounted.mp3")[0]) <= 30.2 * sr
    r = run("separate", tmp_path / "uncounted.mp3", "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 0 and "cut short" not in r.output, r.output
    assert 30 * sr <= sf.info(tmp_path / "out" / "uncounted" / "vocals.wav").frames <= 30.2 * sr


def test_an_m4a_cut_short_warns_too(tiny_model, tmp_path, rng):
    """An mp4's track duration (its index first, as a streamed file has it) is a count: a download cut short
    after it warns as an mp3 does; the whole file (its encoder's priming a few ms past the count) does not."""
    from fractions import Fraction

    av = pytest.importorskip("av")
    sr = 22050
    x = (0.1 * rng.standard_normal((1, sr * 10))).astype(np.float32)
    with av.open(str(tmp_path / "whole.m4a"), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("aac", rate=sr, layout="mono")
        for i in range(0, x.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 1024]), format="fltp", layout="mono")
            f.sample_rate, f.pts, f.time_base = sr, i, Fraction(1, sr)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    data = (tmp_path / "whole.m4a").read_bytes()
    (tmp_path / "cut.m4a").write_bytes(data[:len(data) // 3])
    r = run("separate", tmp_path / "whole.m4a", tmp_path / "cut.m4a", "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 0, r.output
    read = sf.info(tmp_path / "out" / "cut" / "vocals.wav").frames
    assert [line for line in r.output.splitlines() if "cut short" in line] == [
        f"warning: {tmp_path / 'cut.m4a'}: its audio ends at {read / sr:.1f} s, but its header announces 10.0 s: "
        "the file may be cut short (the stems are as long as the audio read)"]
    r = run("separate", tmp_path / "cut.m4a", "-o", tmp_path / "past", "--model", tiny_model, "--start", "8")
    assert r.exit_code == 1 and r.stderr.strip().splitlines()[-1] == (  # (the cut packet: a warning above)
        f"Error: {tmp_path / 'cut.m4a'}: --start 8 s is at or past its end ({read / sr:.2f} s long)")  # the audio decoded, not the header's 10 s


def test_a_flac_cut_short_is_one_line_naming_it(tiny_model, tmp_path, rng):
    """libsndfile's FLAC decoder stops with 'lost sync' where a FLAC was cut: one line naming the file and how
    far it decoded (it was an 'unexpected error', the wording of a bug of ours); nothing written."""
    x = make_audio(rng, 10.0, 22050, 1)
    sf.write(tmp_path / "whole.flac", x, 22050, subtype="PCM_16")
    data = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[:len(data) // 2])
    r = run("separate", tmp_path / "cut.flac", "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"Error: {tmp_path / 'cut.flac'}: cannot be decoded past ") and (
        "the file may be cut short or damaged" in r.stderr and "unexpected" not in r.stderr)
    assert not list((tmp_path / "out").rglob("*.wav"))
