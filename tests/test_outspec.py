"""Outputs users can control (issue 16, section 2): the input's sample format kept, nothing clipped
silently, one stem, file name templates that stay inside -o, stem names other tools read, and provenance
that keeps a run from skipping another model's outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from vocalsep import Separator, VocalsepError, outputs
from vocalsep.cli import main
from vocalsep.outspec import OutputOptions

from .conftest import make_audio


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def hot_input(tmp_path: Path, rng, name: str = "hot.wav", peak: float = 2.6) -> tuple[Path, np.ndarray]:
    """A float wav peaking at ``peak`` (a mix bus left hot): 1 s, stereo, 22050 Hz."""
    x = make_audio(rng, 1.0, 22050, 2)
    x *= peak / np.abs(x).max()
    p = tmp_path / name
    sf.write(p, x, 22050, subtype="FLOAT")
    return p, x


def read(folder: Path, *stems: str) -> list[np.ndarray]:
    return [sf.read(folder / f"{s}.wav", dtype="float32")[0] for s in stems]


def test_a_hot_float_input_gives_float_stems_that_add_up_to_it(tiny_model, tmp_path, rng, caplog):
    src, x = hot_input(tmp_path, rng)
    with caplog.at_level(logging.WARNING, logger="vocalsep"):
        Separator(tiny_model).separate_file(src, tmp_path / "out")
    assert sf.info(tmp_path / "out" / "vocals.wav").subtype == "FLOAT"
    v, a = read(tmp_path / "out", "vocals", "accompaniment")
    assert np.abs(v + a - x).max() < 1e-5  # nothing clipped: exactly the input
    assert max(np.abs(v).max(), np.abs(a).max()) > 1.2
    assert not caplog.records  # nothing was done to the audio: nothing to warn about


def test_integer_outputs_of_a_hot_input_are_rescaled_together_with_a_warning(tiny_model, tmp_path, rng):
    src, x = hot_input(tmp_path, rng)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--int16")
    assert r.exit_code == 0, r.output
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and str(src) in warning[0] and "scaled by" in warning[0]
    folder = tmp_path / "out" / "hot"
    assert sf.info(folder / "vocals.wav").subtype == "PCM_16"
    v, a = read(folder, "vocals", "accompaniment")
    gain = json.loads((folder / outputs.MANIFEST).read_text())["outputs"]["vocals.wav"]["gain"]
    assert 0.2 < gain < 1 / 1.2 and f"{gain:.3f}" in warning[0]
    assert np.abs(v + a - gain * x).max() < 3 / 32768  # they add up to the scaled input: nothing cut
    assert max(np.abs(v).max(), np.abs(a).max()) > 0.99


def test_a_hot_input_is_rescaled_without_running_the_network_again(tiny_model, tmp_path, rng, monkeypatch):
    """The second pass of --clip rescale replays the first pass's vocals (kept as float32 beside the
    outputs), so the network sees the song once; the stems are the in-memory separation x the gain."""
    src, x = hot_input(tmp_path, rng)
    sep = Separator(tiny_model, block_seconds=0.3)  # several blocks: the replay tiles them again
    want_v, want_a = sep.separate(x, 22050)
    calls = []
    real = sep._block_masks
    monkeypatch.setattr(sep, "_block_masks", lambda *a: calls.append(1) or real(*a))
    sep.separate_file(src, tmp_path / "out", options=OutputOptions(depth="int16"))
    v, a = read(tmp_path / "out", "vocals", "accompaniment")
    gain = 1 / max(np.abs(want_v).max(), np.abs(want_a).max())
    assert gain < 0.9 and len(calls) == 4  # one pass over the 4 blocks of 1 s
    assert np.abs(v - gain * want_v).max() < 1.5 / 32768 and np.abs(a - gain * want_a).max() < 1.5 / 32768
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["vocals.wav", "accompaniment.wav",
                                                                           outputs.MANIFEST])


def test_a_song_that_decodes_differently_the_second_time_is_an_error_not_a_shifted_output(tiny_model, tmp_path,
                                                                                           rng, monkeypatch):
    """The rescale pass pairs the decoded input with the vocals kept from the first pass: if the decoder
    gives fewer samples the second time, that is a one-line error and nothing is left behind."""
    import vocalsep.separate as sep_module

    src, _ = hot_input(tmp_path, rng)
    real, calls = sep_module.open_part, []

    def open_part(path, opts, sizes, **kw):
        sr, ch, blocks = real(path, opts, sizes, **kw)
        calls.append(1)
        return sr, ch, (b[:-100] for b in blocks) if len(calls) == 2 else blocks

    monkeypatch.setattr(sep_module, "open_part", open_part)
    with pytest.raises(VocalsepError, match=r"hot\.wav: decoded to a different length the second time"):
        Separator(tiny_model).separate_file(src, tmp_path / "out", options=OutputOptions(depth="int16"))
    assert len(calls) == 2 and not list(tmp_path.glob("out/**/*"))  # no stem, no float copy, no folder


def test_clamp_says_how_many_samples_it_cut(tiny_model, tmp_path, rng):
    src, _ = hot_input(tmp_path, rng)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--int24", "--clip", "clamp")
    assert r.exit_code == 0, r.output
    (warning,) = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    v, a = read(tmp_path / "out" / "hot", "vocals", "accompaniment")
    cut = int(np.sum(np.abs(v) >= 1 - 1e-6) + np.sum(np.abs(a) >= 1 - 1e-6))
    assert str(src) in warning and f"{cut:,} samples" in warning and cut > 100


@pytest.mark.parametrize("fmt,subtype,flags,want", [
    ("WAV", "PCM_16", [], "PCM_16"), ("WAV", "PCM_24", [], "PCM_24"), ("WAV", "FLOAT", [], "FLOAT"),
    ("FLAC", "PCM_24", ["-f", "flac"], "PCM_24"), ("WAV", "FLOAT", ["-f", "flac"], "PCM_24"),
    ("MP3", None, [], "PCM_16"), ("WAV", "PCM_16", ["--float32"], "FLOAT"), ("WAV", "FLOAT", ["--int24"], "PCM_24"),
])
def test_outputs_keep_the_inputs_sample_format_unless_asked(tiny_model, tmp_path, rng, fmt, subtype, flags, want):
    src = tmp_path / f"in.{fmt.lower()}"
    sf.write(src, 0.5 * make_audio(rng, 0.5, 22050, 1), 22050, format=fmt, subtype=subtype)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, *flags)
    assert r.exit_code == 0, r.output
    ext = "flac" if "flac" in flags else "wav"
    for stem in ("vocals", "accompaniment"):
        assert sf.info(tmp_path / "out" / "in" / f"{stem}.{ext}").subtype == want


@pytest.mark.parametrize("kw,problem", [
    ({"depth": "int16", "clip": "none"}, "--clip none"), ({"fmt": "mp3", "clip": "none"}, "--clip none"),
    ({"fmt": "flac", "depth": "float32"}, "flac holds integer"), ({"fmt": "mp3", "depth": "int24"}, "not mp3"),
    ({"clip": "loud"}, "unknown clip mode"), ({"stems": ()}, "stems must be"),
])
def test_impossible_output_options_are_one_line_errors(kw, problem):
    with pytest.raises(VocalsepError, match=problem):
        OutputOptions(**kw)


def test_clip_none_with_an_integer_input_asks_for_float(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 0.3, subtype="PCM_16")
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--clip", "none")
    assert r.exit_code == 1 and "--float32" in r.stderr and not (tmp_path / "out" / "song").exists()


def test_one_stem_only_then_the_other(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 0.5)
    out = tmp_path / "out"
    r = run("separate", src, "-o", out, "--model", tiny_model, "--stem", "accompaniment", "--stem-names", "instrumental")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "song").iterdir() if not p.name.startswith(".")) == ["instrumental.wav"]
    r = run("separate", src, "-o", out, "--model", tiny_model, "--stem", "accompaniment", "--stem-names", "instrumental")
    assert r.exit_code == 0 and "skipped" in r.stderr
    r = run("separate", src, "-o", out, "--model", tiny_model, "--stem", "vocals")
    assert r.exit_code == 0 and "skipped" not in r.stderr
    m = json.loads((out / "song" / outputs.MANIFEST).read_text())
    assert m["complete"] == ["instrumental.wav", "vocals.wav"] and set(m["outputs"]) == set(m["complete"])
    (v,), (a,) = read(out / "song", "vocals"), read(out / "song", "instrumental")
    x, _ = sf.read(src, dtype="float32")
    assert np.abs(v + a - x).max() < 3 / 32768


def test_no_vocals_as_demucs_names_it(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 0.3)
    for args in (["--stem-names", "no_vocals"], ["--two-stems", "vocals"]):  # the second as Demucs spells it
        out = tmp_path / args[0].strip("-")
        r = run("separate", src, "-o", out, "--model", tiny_model, *args)
        assert r.exit_code == 0, r.output
        assert sorted(p.name for p in (out / "song").glob("*.wav")) == ["no_vocals.wav", "vocals.wav"]
    for name in ("instrumental", "accompaniment"):  # the default, given: a contradiction too
        r = run("separate", src, "-o", tmp_path / "x", "--two-stems", "vocals", "--stem-names", name)
        assert r.exit_code == 2 and "give one of them" in r.stderr and not (tmp_path / "x").exists()


def test_templates_keep_a_mp3_and_a_wav_apart(tiny_model, write_audio, tmp_path):
    write_audio("music/a.wav", 0.3)
    write_audio("music/a.flac", 0.3)
    r = run("separate", tmp_path / "music", "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 1 and "same output files as" in r.stderr and "{input_ext}" in r.stderr
    r = run("separate", tmp_path / "music" / "a.wav", tmp_path / "music" / "a.wav", "-o", tmp_path / "twice",
            "--model", tiny_model)  # the same file twice (overlapping globs): done once, nothing failed
    assert r.exit_code == 0 and f"warning: {tmp_path / 'music' / 'a.wav'}: given twice" in r.stderr, r.stderr
    assert "Separated 1 of 2 files" in r.stderr and "1 given twice" in r.stderr and "FAILED" not in r.stderr
    assert (tmp_path / "twice" / "a" / "vocals.wav").exists()
    write_audio("album1/01.wav", 0.3)
    write_audio("album2/01.wav", 0.3)
    r = run("separate", tmp_path / "album1", tmp_path / "album2", "-o", tmp_path / "albums", "--model", tiny_model)
    assert r.exit_code == 1 and "same output files as" in r.stderr and "{input_ext}" not in r.stderr
    assert "give a folder that holds both" in r.stderr
    write_audio("album2/02.wav", 0.3)
    r = run("separate", tmp_path / "album1" / "01.wav", tmp_path / "album2" / "02.wav", "-o", tmp_path / "flat",
            "--model", tiny_model, "--filename", "{stem}.{ext}")  # no {track}: every song has the same names
    assert r.exit_code == 1 and "or add {track} to --filename" in r.stderr
    r = run("separate", tmp_path / "music", "-o", tmp_path / "out2", "--model", tiny_model,
            "--filename", "{track}_{input_ext}/{stem}.{ext}")
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(tmp_path / "out2").as_posix() for p in (tmp_path / "out2").rglob("*.wav")) == [
        "a_flac/accompaniment.wav", "a_flac/vocals.wav", "a_wav/accompaniment.wav", "a_wav/vocals.wav"]


def test_a_flat_template_commits_each_song_in_the_shared_folder(tiny_model, write_audio, tmp_path):
    write_audio("music/sub/a.wav", 0.3)
    write_audio("music/b.wav", 0.3)
    args = ["separate", tmp_path / "music", "-o", tmp_path / "out", "--model", tiny_model, "-f", "flac",
            "--filename", "{track}-{stem}.{ext}"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    got = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.flac"))
    assert got == ["b-accompaniment.flac", "b-vocals.flac", "sub/a-accompaniment.flac", "sub/a-vocals.flac"]
    r = run(*args)
    assert r.exit_code == 0 and r.stderr.count(": skipped, ") == 2


@pytest.mark.parametrize("template", ["../{track}/{stem}.{ext}", "{track}/../../{stem}.{ext}", "/tmp/{stem}.{ext}",
                                      "{track}/./{stem}.{ext}", "{track}/{stem}/", "{track}/.vocalsep.lock"])
def test_a_template_never_writes_outside_the_output_folder(tiny_model, write_audio, tmp_path, template):
    src = write_audio("in/song.wav", 0.3)
    before = sorted(tmp_path.rglob("*"))
    r = run("separate", src, "-o", tmp_path / "work" / "out", "--model", tiny_model, "--stem", "vocals",
            "--filename", template)
    assert r.exit_code == 2 and r.stderr.startswith(f"Error: --filename {template!r}: would not name a file inside "
                                                    "the output folder") and len(r.stderr.strip().splitlines()) == 1
    after = sorted(p for p in tmp_path.rglob("*") if p != tmp_path / "work" and p != tmp_path / "work" / "out")
    assert after == before  # refused before any work, as other bad options


@pytest.mark.parametrize("template,problem", [
    ("{track}.{ext}", "needs {stem}"), ("{stem}/{track}.{ext}", "must be in the file name"),
    ("{track.__class__}/{stem}", "unknown field"), ("{}/{stem}", "unknown field"), ("{song}/{stem}", "unknown field"),
    ("{track}/{stem", "--filename"),
    ("{track}/{stem}.WAV", "end in .wav but the format is flac"),  # flac data in a .wav file, as it was
])
def test_bad_templates_are_refused_before_any_work(template, problem):
    with pytest.raises(VocalsepError, match=problem):
        OutputOptions("flac", template=template)


def test_a_template_may_name_the_format_it_writes():
    assert OutputOptions("wav", template="{track}/{stem}.wav").file_names() == {
        "vocals": "vocals.wav", "accompaniment": "accompaniment.wav"}
    assert OutputOptions("flac", template="{track}/{stem}-flac").files(Path("a"), Path("a.mp3"))[1] == {
        "vocals": "vocals-flac", "accompaniment": "accompaniment-flac"}


@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> Path:
    """A second tiny model (another seed): the same shape, other weights."""
    from .conftest import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("other") / "other.vsep", seed=1)


def test_outputs_of_another_model_or_other_options_are_not_skipped_silently(tiny_model, other_model, write_audio,
                                                                            tmp_path):
    src = write_audio("song.wav", 0.3)
    out = tmp_path / "out"
    assert run("separate", src, "-o", out, "--model", tiny_model).exit_code == 0
    before = (out / "song" / "vocals.wav").read_bytes()
    moved = tmp_path / "elsewhere.vsep"  # the same model file under another name: the same outputs
    moved.write_bytes(tiny_model.read_bytes())
    r = run("separate", src, "-o", out, "--model", moved)
    assert r.exit_code == 0 and "skipped" in r.stderr
    for args, what in ([("--model", other_model), f"was made with model {tiny_model} (sha256 "],
                       [("--model", tiny_model, "--int24"), "was made with sample_format PCM_16 (this run: PCM_24); use "],
                       [("--model", tiny_model, "--duration", "0.2"), "was made with duration none (this run: 0.2); "]):
        r = run("separate", src, "-o", out, *args)
        assert r.exit_code == 1 and what in r.stderr and "--overwrite" in r.stderr, r.stderr
        assert (out / "song" / "vocals.wav").read_bytes() == before
    r = run("separate", src, "-o", out, "--model", other_model, "--overwrite")
    assert r.exit_code == 0 and (out / "song" / "vocals.wav").read_bytes() != before
    m = json.loads((out / "song" / outputs.MANIFEST).read_text())["outputs"]["vocals.wav"]
    assert m["model"] == str(other_model) and len(m["model_sha256"]) == 64 and m["vocalsep"]
    assert m["options"] == {"format": "wav", "sample_format": "PCM_16", "clip": "rescale"}


def test_start_and_duration_separate_that_part(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 2.0, sr=22050, channels=2, subtype="FLOAT")
    sep = Separator(tiny_model, block_seconds=0.5, overlap_seconds=0.1)  # the part spans several blocks
    out = sep.separate_file(src, tmp_path / "out", options=OutputOptions(start=0.4, duration=1.2))
    x, _ = sf.read(src, dtype="float32")
    part = x[int(round(0.4 * 22050)):][:int(round(1.2 * 22050))]
    v, a = (sf.read(out[s], dtype="float32")[0] for s in ("vocals", "accompaniment"))
    assert v.shape == part.shape
    np.testing.assert_allclose(v, sep.separate(part, 22050)[0], atol=1e-5)
    np.testing.assert_allclose(v + a, part, atol=1e-5)
    r = run("separate", src, "-o", tmp_path / "cli", "--model", tiny_model, "--start", "3")
    assert r.exit_code == 1 and "--start 3 s is at or past its end (2.00 s long)" in r.stderr


def test_a_start_near_the_end_of_a_short_ogg(tiny_model, write_audio, tmp_path):
    """libsndfile's Vorbis decoder, once it has read from a short file, finds nothing after a seek into its
    last ~1000 samples: --start 0.99 of a 1 s ogg was refused as past its end."""
    src = write_audio("short.ogg", 1.0, sr=44100, channels=1)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--start", "0.99", "--float32")
    assert r.exit_code == 0, r.stderr
    v, sr = sf.read(tmp_path / "out" / "short" / "vocals.wav", dtype="float32")
    assert sr == 44100 and 400 <= len(v) <= 441  # to the end (Vorbis may hold a few samples less)
    r = run("separate", src, "-o", tmp_path / "out2", "--model", tiny_model, "--start", "1.5")
    assert r.exit_code == 1 and "--start 1.5 s is at or past its end (1.00 s long)" in r.stderr


def test_mp3_bitrate_is_constant_and_as_asked(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 3.0, sr=44100)
    sizes = {}
    for kbps in (96, 320):
        r = run("separate", src, "-o", tmp_path / str(kbps), "--model", tiny_model, "-f", "mp3",
                "--mp3-bitrate", kbps, "--stem", "vocals")
        assert r.exit_code == 0, r.output
        sizes[kbps] = (tmp_path / str(kbps) / "song" / "vocals.mp3").stat().st_size * 8 / 3.0 / 1000
        assert 0.9 * kbps < sizes[kbps] < 1.15 * kbps
    src22 = write_audio("low.wav", 0.5, sr=22050)
    r = run("separate", src22, "-o", tmp_path / "low", "--model", tiny_model, "-f", "mp3", "--mp3-bitrate", 320)
    assert r.exit_code == 1 and "holds 8 to 160 kbps" in r.stderr
    r = run("separate", src, "-o", tmp_path / "x", "--model", tiny_model, "--mp3-bitrate", 320)
    assert r.exit_code == 2 and r.stderr.strip() == (  # options that contradict each other: bad options
        "Error: --mp3-bitrate applies to mp3 outputs only (the format is wav); add --format mp3, or leave it out")


def test_threads_give_the_same_audio(tiny_model, rng):
    x = make_audio(rng, 1.0, 22050, 2)
    one = Separator(tiny_model, threads=1).separate(x, 22050)[0]
    np.testing.assert_allclose(one, Separator(tiny_model, threads=2).separate(x, 22050)[0], atol=1e-6)
    with pytest.raises(VocalsepError, match="threads"):
        Separator(tiny_model, threads=0)


def test_one_stem_of_a_hot_input_is_rescaled_by_its_own_peak(tiny_model, tmp_path, rng):
    src, x = hot_input(tmp_path, rng)
    r = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--int16", "--stem", "accompaniment")
    assert r.exit_code == 0, r.output
    (warning,) = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert "output peaks" in warning and "scaled by" in warning
    (a,) = read(tmp_path / "out" / "hot", "accompaniment")
    assert 0.99 < np.abs(a).max() <= 1 and not (tmp_path / "out" / "hot" / "vocals.wav").exists()


def test_mid_commit_a_shared_folder_keeps_the_other_songs_provenance(tiny_model, write_audio, tmp_path, monkeypatch):
    """A flat template puts songs in one folder: while song b is committed (where a kill -9 would leave the
    manifest), song a's provenance must still be on disk, or a later run could not tell whose a's files are."""
    write_audio("music/a.wav", 0.3)
    write_audio("music/b.wav", 0.3)
    opts = OutputOptions(template="{track}-{stem}.{ext}")
    sep = Separator(tiny_model)
    from vocalsep.separate import collect_inputs, run_batch

    assert not run_batch(sep, collect_inputs([tmp_path / "music" / "a.wav"]), tmp_path / "out", progress=False,
                         echo=lambda s: None, options=opts)
    seen = []
    real = outputs._rename

    def rename(tmp, target, replace):
        seen.append(outputs.read_manifest(target.parent))
        return real(tmp, target, replace)

    monkeypatch.setattr(outputs, "_rename", rename)
    assert not run_batch(sep, collect_inputs([tmp_path / "music" / "b.wav"]), tmp_path / "out", progress=False,
                         echo=lambda s: None, options=opts)
    assert seen and all("b-vocals.wav" in m["writing"] and "a-vocals.wav" in m["outputs"] for m in seen)
    assert outputs.differs(tmp_path / "out", ["a-vocals.wav"], {**seen[0]["outputs"]["a-vocals.wav"],
                                                                "model_sha256": "0" * 64}) is not None


def test_a_format_given_twice_must_agree(tiny_model, tmp_path, write_audio):
    """``separate_file(fmt=..., options=...)`` used to write ``options.fmt`` and drop ``fmt`` without a word."""
    src = write_audio("s.wav", 0.5)
    sep = Separator(tiny_model)
    with pytest.raises(VocalsepError, match="fmt='flac' but options.fmt='wav'"):
        sep.separate_file(src, tmp_path / "out", fmt="flac", options=OutputOptions())
    assert not (tmp_path / "out").exists()
    out = sep.separate_file(src, tmp_path / "out", fmt="flac", options=OutputOptions("flac"))
    assert sorted(p.name for p in out.values()) == ["accompaniment.flac", "vocals.flac"]


def test_an_output_folder_that_is_a_file_and_standard_input_are_named_as_such(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 0.3)
    (tmp_path / "afile").write_text("notes")
    r = run("separate", src, "-o", tmp_path / "afile", "--model", tiny_model)
    assert r.exit_code == 1 and r.stderr.strip() == (f"Error: {tmp_path / 'afile'}: is a file, not an output folder "
                                                     "(-o names the folder the stems go to)")
    assert (tmp_path / "afile").read_text() == "notes"
    r = run("separate", "-", "-o", tmp_path / "out", "--model", tiny_model)
    assert r.exit_code == 1 and r.stderr.strip() == "Error: -: standard input is not read: save the audio to a file first"


def test_ctrl_c_in_a_batch_says_how_far_it_got(tiny_model, write_audio, tmp_path, monkeypatch, capsys):
    from vocalsep.separate import collect_inputs, run_batch

    for name in ("a.wav", "b.wav", "c.wav"):
        write_audio(f"music/{name}", 0.3)
    sep, calls = Separator(tiny_model), []
    real = sep.separate_file

    def separate_file(path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, *a, **k)

    monkeypatch.setattr(sep, "separate_file", separate_file)
    with pytest.raises(KeyboardInterrupt):
        run_batch(sep, collect_inputs([tmp_path / "music"]), tmp_path / "out", progress=False)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"Interrupted after 1 of 3 files separated into {tmp_path / 'out'}; the same command again does the rest "
        "(finished songs are skipped)")
    assert sorted(p.parent.name for p in (tmp_path / "out").rglob("vocals.wav")) == ["a"]
    calls.clear()
    with pytest.raises(KeyboardInterrupt):  # with --overwrite, the same command would redo the finished ones
        run_batch(sep, collect_inputs([tmp_path / "music"]), tmp_path / "out", progress=False, overwrite=True)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (  # no hint: the same command would redo them all
        f"Interrupted after 1 of 3 files separated into {tmp_path / 'out'}")


def test_an_unset_option_recorded_as_null_is_no_difference(tmp_path):
    """A manifest (hand-edited, or another tool's) that records an unset option as null: the same options as
    this run's, which leaves it out; a real difference still names just that option."""
    about = {"model": "m.vsep", "model_sha256": "ab" * 32, "options": {"format": "wav", "clip": "none"}}
    names = ["vocals.wav"]
    manifest = {"outputs": {"vocals.wav": {**about, "options": {**about["options"], "duration": None}}}}
    (tmp_path / outputs.MANIFEST).write_text(json.dumps(manifest))
    assert outputs.differs(tmp_path, names, about) is None
    manifest["outputs"]["vocals.wav"]["options"]["duration"] = 20.0
    (tmp_path / outputs.MANIFEST).write_text(json.dumps(manifest))
    assert outputs.differs(tmp_path, names, about) == (f"{tmp_path / 'vocals.wav'}: was made with duration 20.0 "
                                                       "(this run: none); use --overwrite to replace it, or another "
                                                       "output folder")
