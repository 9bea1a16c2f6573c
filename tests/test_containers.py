"""Inputs that stream through PyAV (issue 16 section 3): m4a, wma and the audio of video containers are
decoded in blocks (memory holds a block, not the song), sample-exact where the codec is lossless, with a
real duration for the progress bar, in folder scans, and with one-line errors.  The files are made here
with PyAV's own encoders, so nothing needs the ffmpeg program."""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from vocalsep import Separator, VocalsepError, audio, containers
from vocalsep.cli import main
from vocalsep.inputs import collect_inputs, duration

from .conftest import make_audio

av = pytest.importorskip("av")


def encode(path: Path, x: np.ndarray, sr: int, codec: str, fmt: str = "s16p", video: bool = False,
           audio_stream: bool = True) -> Path:
    """Write (samples, channels) float audio with PyAV: ``codec`` in ``fmt`` (PyAV's sample format),
    optionally after a tiny video stream (so that the audio is not stream 0)."""
    with av.open(str(path), "w") as c:
        vs = None
        if video:
            vs = c.add_stream("mpeg4", rate=10)
            vs.width = vs.height = 32
            vs.pix_fmt = "yuv420p"
        if audio_stream:
            layout = {1: "mono", 2: "stereo"}[x.shape[1]]
            s = c.add_stream(codec, rate=sr, layout=layout)
            s.format = fmt
            if codec == "wmav2":
                s.bit_rate = 64000  # (its encoder wants one)
            frame_size = s.codec_context.frame_size or 1024
            base = fmt.rstrip("p")
            q = (np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16) if base == "s16" else
                 np.clip(np.round(x * 2 ** 31), -2 ** 31, 2 ** 31 - 1).astype(np.int32) if base == "s32" else
                 x.astype(np.float32))
            for i in range(0, len(q), frame_size):
                part = q[i:i + frame_size]
                arr = np.ascontiguousarray(part.T) if fmt.endswith("p") else part.reshape(1, -1)
                f = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
                f.sample_rate, f.pts, f.time_base = sr, i, Fraction(1, sr)
                c.mux(s.encode(f))
            c.mux(s.encode(None))
        if vs is not None:
            for i in range(5):
                f = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
                f.pts = i
                c.mux(vs.encode(f))
            c.mux(vs.encode(None))
    return path


def int16_audio(rng, seconds: float, sr: int, channels: int) -> np.ndarray:
    """Test music on the 16-bit grid, so that a lossless codec must give it back exactly."""
    return np.round(make_audio(rng, seconds, sr, channels) * 32768) / 32768


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("name, codec, fmt", [("a.m4a", "alac", "s16p"), ("a.mkv", "pcm_s16le", "s16"),
                                              ("a.mov", "alac", "s32p"), ("a.mkv", "flac", "s16")])
def test_lossless_containers_decode_sample_exact(tmp_path, rng, name, codec, fmt):
    """The samples written are the samples read, whole and in blocks (from --start), at the file's rate."""
    x = int16_audio(rng, 1.3, 22050, 2)
    p = encode(tmp_path / name, x, 22050, codec, fmt)
    y, sr = audio.read(p)
    assert sr == 22050 and y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, x.astype(np.float32))
    info = audio.info(p)
    assert (info.sample_rate, info.channels, info.frames) == (22050, 2, len(x))
    block, overlap, start = 5000, 700, 3001
    parts = list(audio.blocks(p, block, overlap, start=start, frames=20000))
    joined = np.concatenate([parts[0][:block]] + [b[overlap:overlap + block] for b in parts[1:]])
    np.testing.assert_array_equal(joined, x[start:start + 20000].astype(np.float32))


def test_m4a_streams_in_blocks(tiny_model, tmp_path, rng, monkeypatch):
    """Separating a 40 s AAC file with 4 s blocks never holds more than a block and a packet decoded, and
    never decodes the whole file (audio.read, Reader.count); the outputs have the decoded length, and the
    stems add up to the input as decoded."""
    sr = 16000
    p = encode(tmp_path / "long.m4a", make_audio(rng, 40.0, sr, 2) * 0.5, sr, "aac", "fltp")
    decoded, _ = audio.read(p)
    held = []
    decode_more = containers.Reader._decode_more

    def spy(self):
        got = decode_more(self)
        held.append(self._count)
        return got

    monkeypatch.setattr(containers.Reader, "_decode_more", spy)
    monkeypatch.setattr(audio, "read", lambda *a, **k: pytest.fail("decoded whole"))
    monkeypatch.setattr(containers.Reader, "count", lambda self: pytest.fail("decoded whole"))
    sep = Separator(tiny_model, block_seconds=4.0, overlap_seconds=0.5)
    r = run("separate", p, "-o", tmp_path / "out", "--model", tiny_model, "--float32")
    assert r.exit_code == 0, r.output
    v, vsr = sf.read(tmp_path / "out" / "long" / "vocals.wav", dtype="float32")
    a, _ = sf.read(tmp_path / "out" / "long" / "accompaniment.wav", dtype="float32")
    assert vsr == sr and v.shape == decoded.shape
    np.testing.assert_allclose(v + a, decoded, atol=1e-5)
    held.clear()
    sep.separate_file(p, tmp_path / "lib", overwrite=True)
    assert len(held) > 300  # one packet at a time
    assert max(held) <= (4.0 + 2 * 0.5) * sr + 2048 + 1  # a block (+ its lookahead sample) and a packet


def test_progress_bar_gets_the_real_duration(tmp_path, rng):
    """The progress bar's total for an m4a comes from its header (it was 0 with the ffmpeg program)."""
    x = make_audio(rng, 7.5, 24000, 1)
    p = encode(tmp_path / "a.m4a", x, 24000, "aac", "fltp")
    assert duration(p) == pytest.approx(7.5, abs=2048 / 24000)
    assert duration(encode(tmp_path / "a.wma", x, 24000, "wmav2", "fltp")) == pytest.approx(7.5, abs=0.1)


def test_folders_include_video_files_and_their_audio_is_separated(tiny_model, tmp_path, rng):
    """.mp4/.mkv/.webm/.mov in a folder are inputs; the audio stream is found behind a video stream."""
    src = tmp_path / "in"
    src.mkdir()
    x = int16_audio(rng, 1.0, 48000, 2)
    encode(src / "clip.mp4", x, 48000, "aac", "fltp", video=True)
    encode(src / "talk.mkv", x, 48000, "flac", "s16", video=True)
    encode(src / "song.webm", x, 48000, "libopus", "flt")
    encode(src / "take.mov", x, 48000, "alac", "s16p", video=True)
    (src / "notes.txt").write_text("not audio")
    assert sorted(j.path.name for j in collect_inputs([src])) == ["clip.mp4", "song.webm", "take.mov", "talk.mkv"]
    y, sr = audio.read(src / "take.mov")  # stream 1, after the video
    np.testing.assert_array_equal(y, x.astype(np.float32))
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 0, r.output
    for name in ("clip", "talk", "song", "take"):
        v, vsr = sf.read(tmp_path / "out" / name / "vocals.wav")
        assert vsr == 48000 and v.shape[1] == 2 and abs(len(v) - 48000) <= 2048


def test_a_video_without_sound_is_one_line(tiny_model, tmp_path, rng):
    p = encode(tmp_path / "silent.mp4", make_audio(rng, 0.2, 8000, 1), 8000, "aac", video=True, audio_stream=False)
    r = run("separate", p, "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 1, r.output
    assert "silent.mp4: has no audio stream to separate (a video without sound)" in r.output
    assert r.output.strip().count("\n") == 0
    with pytest.raises(VocalsepError, match="no audio stream"):
        audio.read(p)


@pytest.mark.parametrize("content", [b"", b"not audio at all " * 50])
def test_unreadable_containers_are_one_line(tmp_path, content):
    p = tmp_path / "bad.m4a"
    p.write_bytes(content)
    with pytest.raises(VocalsepError, match=r"bad\.m4a: (file is empty|not a readable audio file)") as e:
        audio.read(p)
    assert "\n" not in str(e.value)
    assert duration(p) == 0.0


def test_part_of_an_m4a(tiny_model, tmp_path, rng):
    """--start/--duration on a file PyAV decodes: that part, to the sample, of the decoded stream; a start
    past its end is one line."""
    sr = 22050
    x = int16_audio(rng, 3.0, sr, 2)
    p = encode(tmp_path / "a.m4a", x, sr, "alac", "s16p")
    r = run("separate", p, "-o", tmp_path / "out", "--model", tiny_model, "--float32", "--start", "1.25",
            "--duration", "1")
    assert r.exit_code == 0, r.output
    v, _ = sf.read(tmp_path / "out" / "a" / "vocals.wav", dtype="float32")
    a, _ = sf.read(tmp_path / "out" / "a" / "accompaniment.wav", dtype="float32")
    start = int(round(1.25 * sr))
    np.testing.assert_allclose(v + a, x[start:start + sr], atol=1e-5)
    r = run("separate", p, "-o", tmp_path / "out2", "--model", tiny_model, "--start", "3")
    assert r.exit_code == 1 and "--start 3 s is at or past its end (3.00 s long)" in r.output


def test_a_file_name_is_a_file_not_an_ffmpeg_protocol(tmp_path, rng, monkeypatch):
    """A file named ``concat:other.m4a`` is that file (garbage here), not FFmpeg's concat of other.m4a."""
    encode(tmp_path / "other.m4a", make_audio(rng, 0.5, 8000, 1), 8000, "aac", "fltp")
    (tmp_path / "concat:other.m4a").write_bytes(b"not audio at all " * 20)
    monkeypatch.chdir(tmp_path)
    x, _ = audio.read(Path("other.m4a"))
    assert len(x) > 0
    with pytest.raises(VocalsepError, match="not a readable audio file"):
        audio.read(Path("concat:other.m4a"))


def test_no_ffmpeg_program_is_run(tmp_path, rng, monkeypatch):
    """Decoding never starts a process (the ffmpeg program may be absent)."""
    import subprocess

    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("started a process"))
    p = encode(tmp_path / "a.wma", make_audio(rng, 0.5, 8000, 1), 8000, "wmav2", "fltp")
    y, sr = audio.read(p)
    assert sr == 8000 and y.shape[1] == 1 and math.isclose(len(y) / sr, 0.5, abs_tol=0.3)


def test_without_pyav_an_m4a_is_one_line(tiny_model, tmp_path, rng, monkeypatch):
    import sys

    p = encode(tmp_path / "a.m4a", make_audio(rng, 0.3, 8000, 1), 8000, "aac", "fltp")
    monkeypatch.setitem(sys.modules, "av", None)  # as if not installed
    r = run("separate", p, "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0
    assert "needs PyAV: pip install av" in r.output


def test_damaged_packets_are_skipped_with_a_warning(tmp_path, rng, caplog, monkeypatch):
    """Packets that do not decode are left out, as FFmpeg's program leaves them, and said once."""
    p = encode(tmp_path / "a.m4a", make_audio(rng, 3.0, 22050, 2), 22050, "aac", "fltp")
    whole, _ = audio.read(p)
    data = bytearray(p.read_bytes())
    r = np.random.default_rng(5)
    with containers.Reader(p) as reader:
        packets = sum(1 for _ in reader._c.demux(reader.stream) if _.size)
    # damage the payload (the file's middle third), not its index
    lo, hi = len(data) // 3, 2 * len(data) // 3
    data[lo:hi] = r.integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)  # (the CLI's tests turn it off)
    with caplog.at_level("WARNING", logger="vocalsep"):
        y, sr = audio.read(bad)
    assert sr == 22050 and len(y) < len(whole) and packets > 10
    assert [m for m in caplog.messages if "damaged packet" in m and "bad.m4a" in m]
