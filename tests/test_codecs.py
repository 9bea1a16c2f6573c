"""Output codecs (issue 16 section 2's rest): mp3 at a variable quality (--mp3-quality), ogg (Vorbis) and
opus outputs, the input's tags and cover copied to each stem, and lossless m4a (ALAC) keeping its depth.
Files are read back with PyAV (FFmpeg), not with the libsndfile and mutagen that wrote them."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from vocalsep.cli import main

from .conftest import make_audio

av = pytest.importorskip("av")

TAGS = {"title": "Café del Mar", "artist": "Some Artist", "album": "An Album", "date": "2021", "tracknumber": "7"}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def decode(path):
    """(samples (n, channels) float32, rate, {tag: text}) as FFmpeg reads the file."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        meta = {**{k.lower(): v for k, v in s.metadata.items()}, **{k.lower(): v for k, v in c.metadata.items()}}
        to_float = av.AudioResampler(format="fltp")  # (FFmpeg's conversion, not vocalsep's)
        frames = [g.to_ndarray() for f in c.decode(s) for g in to_float.resample(f)]
        rate = s.codec_context.sample_rate
    return np.concatenate(frames, axis=1).T, rate, meta


def test_mp3_quality_is_variable_bitrate_on_lames_scale(tiny_model, tmp_path, rng):
    src = tmp_path / "song.wav"
    t = np.arange(4 * 44100) / 44100
    tones = sum(0.1 / k * np.sin(2 * np.pi * 220 * k * t * (1 + 0.01 * np.sin(2 * np.pi * 3 * t))) for k in range(1, 9))
    sf.write(src, np.stack([tones, tones[::-1]], axis=1) + 0.002 * rng.standard_normal((len(t), 2)), 44100)
    kbps = {}
    for q in ("0", "4", "9", None):
        out = tmp_path / f"q{q}"
        r = run("separate", src, "-o", out, "--model", tiny_model, "-f", "mp3", "--stem", "accompaniment",
                *(("--mp3-quality", q) if q else ()))
        assert r.exit_code == 0, r.output
        f = out / "song" / "accompaniment.mp3"
        kbps[q] = f.stat().st_size * 8 / 4.0 / 1000
        x, rate, _ = decode(f)
        assert rate == 44100 and abs(len(x) - 4 * 44100) <= 1152
    assert kbps["0"] > kbps["4"] > kbps["9"]
    assert kbps[None] == kbps["4"]  # libsndfile's default is LAME's -V 4
    manifest = json.loads((tmp_path / "q0" / "song" / ".vocalsep-outputs.json").read_text())
    assert "'mp3_quality': 0.0" in str(manifest) or '"mp3_quality": 0.0' in json.dumps(manifest)
    for bad, why in ((("--mp3-quality", "2", "--mp3-bitrate", "320", "-f", "mp3"), "alternatives"),
                     (("--mp3-quality", "2"), "--mp3-quality applies to mp3 outputs only (the format is wav)")):
        r = run("separate", src, "-o", tmp_path / "bad", "--model", tiny_model, *bad)
        assert r.exit_code == 2 and why in r.output and r.output.strip().count("\n") == 0  # bad options
    assert run("separate", src, "-o", tmp_path / "bad", "--mp3-quality", "10").exit_code == 2


@pytest.mark.parametrize("fmt", ["ogg", "opus"])
def test_ogg_and_opus_outputs(tiny_model, tmp_path, rng, fmt):
    """Vorbis and Opus in ogg: the input's rate and channels, its length, and stems that still add up to
    the input (within what a lossy codec keeps)."""
    x = make_audio(rng, 3.0, 48000, 2)
    src = tmp_path / "song.wav"
    sf.write(src, x, 48000, subtype="FLOAT")
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", fmt)
    assert r.exit_code == 0, r.output
    v, rate, _ = decode(tmp_path / "out" / "song" / f"vocals.{fmt}")
    a, _, _ = decode(tmp_path / "out" / "song" / f"accompaniment.{fmt}")
    assert rate == 48000 and v.shape[1] == 2
    n = min(len(v), len(a), len(x))
    assert abs(len(v) - len(x)) <= 960 and n > len(x) - 960
    err = (v[:n] + a[:n]) - x[:n]
    assert 10 * np.log10(np.sum(x[:n] ** 2) / np.sum(err ** 2)) > 15  # dB


def test_opus_at_44100_is_one_line(tiny_model, tmp_path, rng):
    src = tmp_path / "song.wav"
    sf.write(src, make_audio(rng, 0.5, 44100, 2), 44100)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", "opus")
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0
    assert "opus holds audio at 8, 12, 16, 24, 48 kHz, not 44100 Hz" in r.output and "--format ogg" in r.output
    assert not list((tmp_path / "out").rglob("*.opus"))


@pytest.mark.parametrize("fmt, channels, ok", [("mp3", 6, "wav or flac or ogg or opus"),
                                               ("flac", 9, "wav or ogg or opus")])  # (48 kHz: opus holds it)
def test_more_channels_than_a_format_holds_is_one_line(tiny_model, tmp_path, rng, fmt, channels, ok):
    """5.1 audio as mp3 (LAME holds stereo) used to fail as 'Format not recognised', naming a temporary file."""
    src = tmp_path / "surround.wav"
    sf.write(src, make_audio(rng, 0.5, 48000, channels), 48000)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", fmt)
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0
    assert f"vocals.{fmt}: {fmt} holds at most" in r.output and f"not {channels}" in r.output
    assert f"use --format {ok}" in r.output and ".part" not in r.output
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", "ogg")  # the suggestion works
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("rate", [1000, 96000])
def test_mp3_at_a_rate_it_cannot_hold_is_one_line(tiny_model, tmp_path, rng, rate):
    """It was 'cannot write mp3 (Error opening '.../.vocals.mp3.<pid>.<random>.part': ...)'."""
    src = tmp_path / "song.wav"
    sf.write(src, make_audio(rng, 0.5, rate, 2), rate)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", "mp3")
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0 and ".part" not in r.output
    assert f"mp3 holds audio at 8, 11.025, 12, 16, 22.05, 24, 32, 44.1, 48 kHz, not {rate} Hz" in r.output
    assert "--format ogg or flac" in r.output and not list((tmp_path / "out").rglob("*.mp3"))


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_tags_are_copied_to_each_stem(tiny_model, tmp_path, rng, fmt):
    src = tmp_path / "song.flac"
    with sf.SoundFile(src, "w", 44100, 2, format="FLAC") as f:
        for k, v in TAGS.items():
            setattr(f, k, v)
        f.write(make_audio(rng, 1.0, 44100, 2))
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", fmt)
    assert r.exit_code == 0, r.output
    for stem in ("vocals", "accompaniment"):  # the title says which stem (a library tells them apart)
        _, _, meta = decode(tmp_path / "out" / "song" / f"{stem}.{fmt}")
        assert meta.get("title") == f"Café del Mar ({stem})" and meta.get("artist") == TAGS["artist"]
        assert meta.get("album") == TAGS["album"] and meta.get("date", "").startswith("2021")
        assert meta.get("track", meta.get("tracknumber", "")).split("/")[0] == "7"
    r = run("separate", src, "-o", tmp_path / "bare", "--model", tiny_model, "-f", fmt, "--no-tags")
    assert r.exit_code == 0, r.output
    _, _, meta = decode(tmp_path / "bare" / "song" / f"vocals.{fmt}")
    assert "title" not in meta and "artist" not in meta


def test_a_stem_of_an_input_without_a_title_is_titled_by_its_file_name(tiny_model, tmp_path, rng):
    src = tmp_path / "My Song.wav"
    sf.write(src, make_audio(rng, 1.0, 44100, 2), 44100)
    assert "title" not in decode(src)[2]
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--stem-names", "no_vocals")
    assert r.exit_code == 0, r.output
    assert decode(tmp_path / "out" / "My Song" / "vocals.wav")[2].get("title") == "My Song (vocals)"
    assert decode(tmp_path / "out" / "My Song" / "no_vocals.wav")[2].get("title") == "My Song (no vocals)"


def test_tags_of_an_m4a_come_through_pyav(tiny_model, tmp_path, rng):
    src = tmp_path / "song.m4a"
    x = make_audio(rng, 1.0, 44100, 2)
    with av.open(str(src), "w") as c:
        c.metadata.update({"title": TAGS["title"], "artist": TAGS["artist"], "album": TAGS["album"]})
        s = c.add_stream("aac", rate=44100, layout="stereo")
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp", layout="stereo")
        f.sample_rate, f.pts, f.time_base = 44100, 0, Fraction(1, 44100)
        for p in [*s.encode(f), *s.encode(None)]:
            c.mux(p)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 0, r.output
    _, _, meta = decode(tmp_path / "out" / "song" / "vocals.wav")
    assert (meta.get("title"), meta.get("artist"), meta.get("album")) == ("Café del Mar (vocals)", TAGS["artist"],
                                                                          TAGS["album"])


def attached_picture(path):
    """The bytes of the file's attached picture as FFmpeg demuxes it (None: it has none)."""
    with av.open(str(path)) as c:
        for s in c.streams.video:
            if s.disposition & av.stream.Disposition.attached_pic:
                return bytes(next(c.demux(s)))
    return None


# a 2 x 1 PNG (a real image: players and FFmpeg probe the picture's format)
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000020000000108020000007b40e85d0000000f4944415478"
                    "9c63f8cfc0f01f0001fe02ff5d6a3a4b0000000049454e44ae426082")


@pytest.mark.parametrize("fmt, rate", [("wav", 48000), ("flac", 48000), ("mp3", 48000), ("ogg", 48000),
                                       ("opus", 48000), ("mp3", 11025)])  # (11025: MPEG-2.5 frames)
def test_the_cover_is_copied_to_each_stem(tiny_model, tmp_path, rng, fmt, rate):
    mutagen_flac = pytest.importorskip("mutagen.flac")
    src = tmp_path / "song.flac"
    with sf.SoundFile(src, "w", rate, 2, format="FLAC") as f:
        f.title, f.artist = TAGS["title"], TAGS["artist"]
        f.write(make_audio(rng, 1.0, rate, 2))
    f = mutagen_flac.FLAC(src)
    pic = mutagen_flac.Picture()
    pic.type, pic.mime, pic.data = 3, "image/png", PNG
    f.add_picture(pic)
    f.save()
    assert attached_picture(src) == PNG  # (the input as FFmpeg sees it)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", fmt)
    assert r.exit_code == 0, r.output
    assert "was not copied" not in r.output
    for stem in ("vocals", "accompaniment"):
        out = tmp_path / "out" / "song" / f"{stem}.{fmt}"
        assert attached_picture(out) == PNG, out
        x, got, meta = decode(out)  # the audio and text tags are whole after the picture went in
        assert (meta.get("title"), meta.get("artist")) == (f"Café del Mar ({stem})", TAGS["artist"])
        assert got == rate and abs(len(x) - rate) <= (1152 if fmt == "mp3" else 0 if fmt in ("wav", "flac") else 960)
    r = run("separate", src, "-o", tmp_path / "bare", "--model", tiny_model, "-f", fmt, "--no-tags")
    assert r.exit_code == 0, r.output
    assert attached_picture(tmp_path / "bare" / "song" / f"vocals.{fmt}") is None


def write_m4a(path, x, rate, codec, fmt):
    """(samples, 2) float audio in [-1, 1) encoded by FFmpeg's ``codec`` from PyAV sample format ``fmt``."""
    dtype, scale = {"s16p": (np.int16, 2 ** 15), "s32p": (np.int32, 2 ** 31), "fltp": (np.float32, 1)}[fmt]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate, layout="stereo")
        s.codec_context.format = fmt
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray((x.T * scale).astype(dtype)), format=fmt, layout="stereo")
        f.sample_rate, f.pts, f.time_base = rate, 0, Fraction(1, rate)
        for p in [*s.encode(f), *s.encode(None)]:
            c.mux(p)


@pytest.mark.parametrize("codec,fmt,want", [("alac", "s32p", "PCM_24"), ("alac", "s16p", "PCM_16"),
                                            ("aac", "fltp", "PCM_16")])
def test_lossless_m4a_keeps_its_depth(tiny_model, tmp_path, rng, codec, fmt, want):
    src = tmp_path / "song.m4a"
    write_m4a(src, make_audio(rng, 0.5, 44100, 2), 44100, codec, fmt)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 0, r.output
    assert sf.info(tmp_path / "out" / "song" / "vocals.wav").subtype == want  # (ALAC 24-bit: 24-bit out)


def test_the_cover_of_an_m4a_is_copied(tiny_model, tmp_path, rng):
    mp4 = pytest.importorskip("mutagen.mp4")
    src = tmp_path / "song.m4a"
    write_m4a(src, make_audio(rng, 0.5, 44100, 2), 44100, "aac", "fltp")
    f = mp4.MP4(src)
    f["covr"] = [mp4.MP4Cover(PNG, imageformat=mp4.MP4Cover.FORMAT_PNG)]
    f.save()
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "-f", "flac")
    assert r.exit_code == 0, r.output
    assert attached_picture(tmp_path / "out" / "song" / "vocals.flac") == PNG
