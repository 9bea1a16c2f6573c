"""What ``vocalsep train`` refuses before it reads any data (a config that would make a model file separation
refuses, an --out it cannot or must not write, a resume that changes the run's split or batches), and what it
reads that it used to drop mid-run: stems only FFmpeg decodes, and a MUSDB18 root with no train/ folder."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner

from vocalsep import audio
from vocalsep import data as datamod
from vocalsep.cli import main
from vocalsep.config import Config, DataConfig
from vocalsep.decoded import readable
from vocalsep.errors import VocalsepError
from vocalsep.model import ModelFile

from .conftest import musdb_preview
from .test_train import TINY, song, stems, tiny_cfg  # noqa: F401  (stems: a fixture)


def cfg_with(section: str, **values) -> Config:
    d = json.loads(json.dumps(TINY))
    d["data"]["datasets"] = ["/nonexistent/data"]  # a config error must come before the data is looked at
    d[section].update(values)
    return Config.from_dict(d)


@pytest.mark.parametrize("section,values,key", [
    ("model", {"freq_bins": 128, "frames": 16}, "model.freq_bins"),   # above n_fft / 2 = 64
    ("train", {"learning_rate": 0.0, "lr_decay_steps": 10}, "train.learning_rate"),
    ("train", {"lr_min": 0.1, "lr_decay_steps": 10}, "train.lr_min"),  # a decay ending above the peak rate
    ("train", {"steps_per_epoch": -1}, "train.steps_per_epoch"),
    ("data", {"validation_fraction": 10.0}, "data.validation_fraction"),
    ("data", {"validation_fraction": -0.1}, "data.validation_fraction"),
    ("data", {"cache_subtype": "PCM_24"}, "data.cache_subtype"),
])
def test_a_config_that_cannot_train_is_refused_before_the_data(tmp_path, section, values, key):
    from vocalsep.train import train

    with pytest.raises(VocalsepError, match=key) as e:
        train(cfg_with(section, **values), tmp_path / "run", progress=False)
    assert "\n" not in str(e.value) and "/nonexistent/data" not in str(e.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("precision", ["mixed_float16", "bfloat16"])
def test_a_precision_the_loop_cannot_train_in_is_refused(tmp_path, precision):
    """Keras takes these policies, but float16 would need loss scaling and bfloat16 weights lose the small
    updates; a Config changed in Python (not read from YAML, whose values pydantic checks) meets the check."""
    from vocalsep.train import train

    cfg = cfg_with("train")
    cfg.train.precision = precision
    with pytest.raises(VocalsepError, match=f"train.precision.*{precision}"):
        train(cfg, tmp_path / "run", progress=False)


def test_the_tiny_config_itself_passes_the_checks():
    from vocalsep.checks import training_config

    training_config(cfg_with("train"))


def test_a_constant_rate_below_the_decay_floor_passes():
    """lr_min is the floor of the cosine decay: without one (fine-tuning at 1e-6, say) it does not bound the
    rate."""
    from vocalsep.checks import training_config

    training_config(cfg_with("train", learning_rate=1e-6, lr_min=1e-5, lr_decay_steps=0))


def test_a_setting_that_cannot_train_names_the_config_file_and_the_options(tmp_path):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "lr_decay_steps": 10}}))
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path), "--config", str(cfg_path), "--lr", "1e-6",
                                  "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip() == (f"Error: {cfg_path} with --lr 1e-06: train.lr_min = 1e-05: must be from 0 to "
                                "train.learning_rate (1e-06) when train.lr_decay_steps is set")
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path), "--workers", "-1", "--out", str(tmp_path / "r")])
    assert r.output.strip() == ("Error: the built-in config with --workers -1: data.workers = -1: must be 0 (one "
                                "thread of the training process) or more")
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path), "--config", "unet", "--lr", "0", "--seed", "3",
                                  "--out", str(tmp_path / "r")])
    shipped = Path(__file__).resolve().parents[1] / "vocalsep" / "configs" / "unet.yaml"
    assert r.output.strip() == (f"Error: {shipped} with --lr 0 --seed 3: train.learning_rate = 0.0: must be a "
                                "number > 0")


def test_an_out_that_is_a_file_is_one_line(tmp_path, stems):  # noqa: F811
    out = tmp_path / "run"
    out.write_text("notes")
    r = CliRunner().invoke(main, ["train", "--data", str(stems), "--out", str(out)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{out}: is a file" in r.output and len(r.output.strip().splitlines()) == 1
    assert out.read_text() == "notes"


def test_a_finished_run_without_its_checkpoint_is_not_overwritten(tmp_path, stems):  # noqa: F811
    from vocalsep.train import train

    out = tmp_path / "run"
    out.mkdir()
    (out / "model.vsep").write_bytes(b"a model trained for days")
    with pytest.raises(VocalsepError, match=r"already holds a trained model \(model.vsep\)"):
        train(tiny_cfg([stems]), out, progress=False)
    assert (out / "model.vsep").read_bytes() == b"a model trained for days"
    assert sorted(p.name for p in out.iterdir()) == ["model.vsep"]


@pytest.mark.parametrize("change,key", [
    ({"validation": ["singer_1"]}, r"validation.txt: the validation split moved since the run began \(singer_1_01 and 3 more"),
    ({"batch_size": 2}, "train.batch_size"),
    ({"seed": 7}, "train.seed"),
    ({"precision": "mixed_bfloat16"}, "train.precision"),  # the best validation loss: of float32 arithmetic
])
def test_a_resume_keeps_the_split_and_the_batches(tmp_path, stems, change, key):  # noqa: F811
    from vocalsep.train import train

    out = tmp_path / "run"
    first = tiny_cfg([stems], steps=3)
    first.data.validation = ["singer_2"]
    train(first, out, progress=False)
    again = tiny_cfg([stems], steps=6)
    again.data.validation = list(first.data.validation)
    for k, v in change.items():
        setattr(again.data if hasattr(again.data, k) else again.train, k, v)
    with pytest.raises(VocalsepError, match=key):
        train(again, out, resume=True, progress=False)
    with np.load(out / "checkpoint.npz") as z:  # untouched
        assert json.loads(str(z["meta"]))["step"] == 3


def test_the_data_given_again_by_another_path_resumes(tmp_path, stems):  # noqa: F811
    """The same folder named relative to another working directory is the same data set."""
    out = tmp_path / "run"
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "steps": 3}}))
    assert CliRunner().invoke(main, ["train", "--data", str(stems), "--config", str(cfg_path), "--out", str(out),
                                     "-q"]).exit_code == 0
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = CliRunner().invoke(main, ["train", "--data", "stems", "--out", str(out), "--resume", "--steps", "6",
                                      "-q"])
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, r.output
    assert ModelFile.load(out / "model.vsep").info["steps"] == 6


def test_a_resume_whose_songs_moved_across_the_split_is_refused(tmp_path, stems, caplog, monkeypatch):  # noqa: F811
    """A song that no longer reads moves others across a validation_fraction split: the resume is refused
    (naming validation.txt) rather than train on songs validated so far, or validate songs trained on; a
    validation song merely gone warns."""
    from types import SimpleNamespace as S

    from vocalsep.runfolder import check_split, write_split
    from vocalsep.train import train

    out = tmp_path / "run"
    train(tiny_cfg([stems], steps=3), out, progress=False)  # validation_fraction 0.1: one of the two groups
    _, val = datamod.split_songs(datamod.discover(stems), [], 0.1)
    assert (out / "validation.txt").read_text() == "".join(f"{s.name}\n" for s in val) and val

    (tmp_path / "validation.txt").write_text("b_01\nb_02\n")
    for train_songs, val_songs in ((["a", "b_01"], ["b_02"]), (["a"], ["b_01", "b_02", "c"])):
        with pytest.raises(VocalsepError, match=r"validation.txt: the validation split moved") as e:
            check_split(tmp_path, [S(name=n) for n in train_songs], [S(name=n) for n in val_songs])
        assert "\n" not in str(e.value)
        assert (tmp_path / "validation.txt").read_text() == "b_01\nb_02\n"  # untouched
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="vocalsep"):
        check_split(tmp_path, [S(name="a")], [S(name="b_02")])  # b_01 no longer reads
    assert [r.getMessage() for r in caplog.records  # (TensorFlow's own warnings of the training above aside)
            if r.levelno == logging.WARNING and r.name.startswith("vocalsep")] == [
        f"{tmp_path / 'validation.txt'}: validation songs of the run not read now: 1; the validation loss is no "
        "longer comparable with the run's so far"]
    assert (tmp_path / "validation.txt").read_text() == "b_01\nb_02\n"  # the check writes nothing
    write_split(tmp_path, [S(name="b_02")], resume=True)  # b_01 stays a validation song should it read again
    assert (tmp_path / "validation.txt").read_text() == "b_01\nb_02\n"
    write_split(tmp_path, [S(name="b_02")], resume=False)  # (a new run: its own)
    assert (tmp_path / "validation.txt").read_text() == "b_02\n"


def test_other_names_for_the_same_validation_songs_resume(tmp_path, stems):  # noqa: F811
    """The run's validation.txt, not its settings, decides: G_01 holds out its group G as 'G' did, and so
    does the fraction whose hash picks G; the run goes on from its checkpoint with the new settings in its
    config.yaml.  A fraction that picks the other group is refused."""
    from vocalsep.train import train

    _, by_hash = datamod.split_songs(datamod.discover(stems), [], 0.5)
    (g,) = {s.group for s in by_hash}  # one of the two groups
    other = {"singer_1": "singer_2", "singer_2": "singer_1"}[g]
    for first_held, resumes in ((g, True), (other, False)):
        out = tmp_path / f"run-{first_held}"
        first = tiny_cfg([stems], steps=3)
        first.data.validation = [first_held]
        train(first, out, progress=False)
        again = tiny_cfg([stems], steps=5)
        again.data.validation, again.data.validation_fraction = [], 0.5
        if not resumes:
            with pytest.raises(VocalsepError, match=r"validation.txt: the validation split moved since the run "
                                                    r"began \(singer_1_01 and 3 more changed sides"):  # all four
                train(again, out, resume=True, progress=False)
            continue
        for steps, validation, fraction in ((5, [f"{g}_01"], 0.1), (7, [f"{g}_02", f"{g}_01"], 0.1),
                                            (9, [], 0.5)):
            again = tiny_cfg([stems], steps=steps)
            again.data.validation, again.data.validation_fraction = validation, fraction
            train(again, out, resume=True, progress=False)
            assert ModelFile.load(out / "model.vsep").info["steps"] == steps
            assert (out / "validation.txt").read_text() == f"{g}_01\n{g}_02\n"
            assert yaml.safe_load((out / "config.yaml").read_text())["data"]["validation"] == validation


def test_a_run_begun_before_validation_txt_keeps_its_split_settings(tmp_path, stems):  # noqa: F811
    """Without validation.txt (a run of an earlier vocalsep) the settings are all there is to compare."""
    from vocalsep.runfolder import check_resume_config, write_config

    first = tiny_cfg([stems])
    first.data.validation = ["singer_2"]
    write_config(first, tmp_path / "config.yaml")
    again = tiny_cfg([stems])
    again.data.validation = ["singer_2_01"]
    with pytest.raises(VocalsepError, match=r"data.validation was \['singer_2'\]"):
        check_resume_config(again, tmp_path)
    (tmp_path / "validation.txt").write_text("singer_2_01\nsinger_2_02\n")
    check_resume_config(again, tmp_path)  # now check_split compares the songs


def test_what_the_named_songs_make_irrelevant_may_change(tmp_path, stems):  # noqa: F811
    """With validation songs named, validation_fraction holds out nothing, and their order is no split
    (a run without validation.txt, where the settings are compared)."""
    from vocalsep.runfolder import check_resume_config, write_config

    first = tiny_cfg([stems])
    first.data.validation = ["singer_2", "singer_1_01"]
    write_config(first, tmp_path / "config.yaml")
    again = tiny_cfg([stems])
    again.data.validation, again.data.validation_fraction = ["singer_1_01", "singer_2"], 0.3
    check_resume_config(again, tmp_path)
    again.data.validation = ["singer_1_01"]
    with pytest.raises(VocalsepError, match="data.validation"):
        check_resume_config(again, tmp_path)


def test_a_run_started_with_a_relative_data_path_resumes_from_elsewhere(tmp_path, stems):  # noqa: F811
    """The run's config.yaml keeps the data sets as absolute paths: resuming it from another working
    directory, without --config or --data, reads the same songs."""
    out = tmp_path / "run"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        cfg_path = tmp_path / "tiny.yaml"
        cfg_path.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "steps": 3}}))
        r = CliRunner().invoke(main, ["train", "--data", "stems", "--config", str(cfg_path), "--out", "run", "-q"])
        assert r.exit_code == 0, r.output
        os.chdir(stems)  # where "stems" names nothing
        r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--steps", "6", "-q"])
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, r.output
    assert ModelFile.load(out / "model.vsep").info["steps"] == 6
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["datasets"] == [str(stems.resolve())]


def test_the_saved_data_path_keeps_its_link(tmp_path, stems):  # noqa: F811
    """A data set named through a link is saved as the link's path, not its target's: data moved behind the
    link (the link pointed elsewhere) is found by the resumed run."""
    from vocalsep.runfolder import check_resume_config, write_config

    (tmp_path / "current").symlink_to(stems)
    write_config(tiny_cfg([tmp_path / "current"]), tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["data"]["datasets"] == [str(tmp_path / "current")]
    moved = tmp_path / "disk2"
    stems.rename(moved)
    (tmp_path / "current").unlink()
    (tmp_path / "current").symlink_to(moved)
    check_resume_config(tiny_cfg([tmp_path / "current"]), tmp_path)


def write_aac(path: Path, x: np.ndarray, rate: int) -> None:
    """(samples, 1) float audio as AAC in an m4a (FFmpeg's encoder through PyAV)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=rate, layout="mono")
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T.astype(np.float32)), format="fltp", layout="mono")
        f.sample_rate, f.pts, f.time_base = rate, 0, Fraction(1, rate)
        for p in [*s.encode(f), *s.encode(None)]:
            c.mux(p)


def test_stems_only_ffmpeg_reads_are_decoded_once_and_train(tmp_path, stems, monkeypatch, caplog):  # noqa: F811
    from vocalsep.train import train

    for stem in ("vocals", "accompaniment"):  # both in AAC: its encoder's padding lengthens both alike
        wav = stems / "singer_1_01" / f"{stem}.wav"
        x, sr = sf.read(wav, always_2d=True)
        write_aac(wav.with_suffix(".m4a"), x, sr)
        wav.unlink()
    m4a = stems / "singer_1_01" / "vocals.m4a"
    with pytest.raises(VocalsepError):
        audio.read_excerpt(m4a, 0, 100)  # what the sampler used to do, and dropped the song for
    cache = tmp_path / "cache"
    songs = readable(datamod.discover(stems), cache)
    [s] = [s for s in songs if s.name == "singer_1_01"]
    [decoded], [decoded_acc] = s.vocals, s.accompaniment
    assert Path(decoded).parent == cache / "decoded" and decoded.endswith(".wav") and decoded != decoded_acc
    want, rate = audio.read(m4a)
    got, _ = audio.read_excerpt(decoded, 0, len(want) + 10, length=s.length)
    assert rate == sr and s.length == len(want)
    np.testing.assert_array_equal(got[:len(want)], want)
    assert [s.vocals for s in songs if s.name != "singer_1_01"] == [
        (str(stems / name / "vocals.wav"),) for name in ("singer_1_02", "singer_2_01", "singer_2_02")]
    mtime = os.stat(decoded).st_mtime_ns
    assert readable(datamod.discover(stems), cache)[0].vocals == (decoded,)  # reused
    assert os.stat(decoded).st_mtime_ns == mtime

    cfg = tiny_cfg([stems], steps=4)
    cfg.data.cache_dir = str(cache)
    cfg.data.validation = ["singer_2"]
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="vocalsep"):
        final = train(cfg, tmp_path / "run", progress=False)
    info = ModelFile.load(final).info
    assert info["steps"] == 4 and info["train_songs"] == 2
    assert not [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]  # the m4a song trained


def test_a_stem_ffmpeg_cannot_decode_after_all_leaves_its_song_out(tmp_path, stems, monkeypatch, caplog):  # noqa: F811
    """A stem discovery accepted but whose decoding fails (an m4a damaged since, or gone) skips its song with a
    warning naming the file, as discovery does, instead of stopping the run; the other songs keep their
    stems.  A cache that cannot be written still stops it."""
    import contextlib
    import dataclasses

    from vocalsep import atomic

    songs = datamod.discover(stems)
    bad, gone = stems / "singer_1_01" / "vocals.m4a", stems / "singer_1_02" / "accompaniment.aac"
    bad.write_bytes(b"not audio")
    damaged = [dataclasses.replace(songs[0], vocals=(str(bad),)),
               dataclasses.replace(songs[1], accompaniment=(str(gone),))]
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="vocalsep"):
        kept = readable([*damaged, *songs[2:]], tmp_path / "cache")
    assert kept == songs[2:]
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(msgs) == 2 and all("\n" not in m for m in msgs)
    assert msgs[0].startswith(f"{bad}: ") and msgs[0].endswith(f"song {songs[0].name!r} skipped"), msgs
    assert msgs[1].startswith(f"{gone}: ") and msgs[1].endswith(f"song {songs[1].name!r} skipped"), msgs

    @contextlib.contextmanager
    def full_disk(path):
        raise OSError(28, "No space left on device")
        yield path

    monkeypatch.setattr(atomic, "atomic_path", full_disk)
    write_aac(bad, np.zeros((800, 1)), 8000)  # decodable now: the write is what fails
    with pytest.raises(VocalsepError, match="No space left on device") as e:
        readable(damaged[:1], tmp_path / "cache")
    assert "\n" not in str(e.value)


def test_no_song_ffmpeg_can_decode_stops_before_training_in_one_line(tmp_path, stems, monkeypatch):  # noqa: F811
    import dataclasses

    from vocalsep.train import train

    songs = datamod.discover(stems)
    (tmp_path / "bad.m4a").write_bytes(b"not audio")
    monkeypatch.setattr(datamod, "discover_all", lambda cfg: [
        dataclasses.replace(s, vocals=(str(tmp_path / "bad.m4a"),)) for s in songs])
    with pytest.raises(VocalsepError) as e:
        train(tiny_cfg([stems]), tmp_path / "run", progress=False)
    assert str(e.value) == (f"{stems}: no song left to train on: the stems of all 4 could not be decoded (see "
                            "the warnings above)")
    assert not (tmp_path / "run").exists()


def test_wav_stems_leave_the_cache_alone(tmp_path, stems):  # noqa: F811
    songs = datamod.discover(stems)
    assert readable(songs, tmp_path / "cache") == songs
    assert not (tmp_path / "cache").exists()


def test_a_musdb_root_with_only_test_songs_is_refused_for_training(tmp_path):
    root = tmp_path / "musdb18hq"
    for name in ("a", "b"):
        song(root / "test", name, 1, names=("vocals", "mixture"))
        sf.write(root / "test" / name / "drums.wav", np.zeros((16000, 1), np.float32), 16000)
    assert datamod.detect_kind(root) == "musdb-hq"
    with pytest.raises(VocalsepError, match=r"has a test/ folder .* but no train/"):
        datamod.discover_all(DataConfig(datasets=[str(root)]))
    assert len(datamod.discover_all(DataConfig(datasets=[str(root / "test")]))) == 2  # on purpose


def test_the_musdb_decode_cache_clears_a_killed_runs_temporary_files(tmp_path):
    root = musdb_preview(tmp_path, 1)
    cache = tmp_path / "cache"
    cfg = DataConfig(datasets=[str(root)], cache_dir=str(cache))
    datamod.discover_all(cfg)
    [folder] = [p for p in cache.iterdir() if p.is_dir()]
    (folder / "vocals.wav").unlink()  # as if the run was killed while writing it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = folder / f".vocals.wav.{dead.pid}.x1y2z3.part"
    stale.write_bytes(b"half a wav")
    [s] = datamod.discover_all(cfg)
    assert not stale.exists() and (folder / "vocals.wav").is_file()
    assert s.length > 0
