"""The command line through click's test runner, and its start-up cost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
from click.testing import CliRunner

from vocalsep.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from vocalsep.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'librosa', 'ai_edge_litert', 'scipy') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_separate_one_file(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", seconds=1.0, sr=44100, channels=2)
    res = run("separate", src, "-o", tmp_path / "out", "--model", tiny_model)
    assert res.exit_code == 0, res.output
    for stem in ("vocals", "accompaniment"):
        y, sr = sf.read(tmp_path / "out" / "song" / f"{stem}.wav")
        assert sr == 44100 and y.shape == (44100, 2)


def test_separate_formats(tiny_model, write_audio, tmp_path):
    src = write_audio("song.ogg", seconds=1.0, sr=22050, channels=1)
    for fmt in ("flac", "mp3"):
        res = run("separate", src, "-o", tmp_path / fmt, "--format", fmt, "--model", tiny_model)
        assert res.exit_code == 0, res.output
        y, sr = sf.read(tmp_path / fmt / "song" / f"vocals.{fmt}")
        assert sr == 22050
        # mp3 encoders pad: flac is exact, mp3 within a frame
        assert y.ndim == 1 and (len(y) == 22050 if fmt == "flac" else abs(len(y) - 22050) < 2400)


def test_folder_with_a_corrupt_file(tiny_model, write_audio, tmp_path):
    write_audio("music/good.wav", 0.5)
    (tmp_path / "music" / "corrupt.wav").write_text("not audio at all")
    res = run("separate", tmp_path / "music", "-o", tmp_path / "out", "--model", tiny_model)
    assert res.exit_code == 1
    assert "corrupt.wav" in res.output and "FAILED" in res.output
    assert (tmp_path / "out" / "good" / "vocals.wav").exists()
    assert not (tmp_path / "out" / "corrupt").exists()
    assert "Traceback" not in res.output


def test_no_clobber_then_overwrite(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 0.5)
    assert run("separate", src, "-o", tmp_path / "o", "--model", tiny_model).exit_code == 0
    target = tmp_path / "o" / "song" / "vocals.wav"
    target.write_bytes(b"keep me")
    res = run("separate", src, "-o", tmp_path / "o", "--model", tiny_model)
    assert res.exit_code == 0 and "skipped" in res.output
    assert target.read_bytes() == b"keep me"
    res = run("separate", src, "-o", tmp_path / "o", "--model", tiny_model, "--overwrite")
    assert res.exit_code == 0 and target.read_bytes() != b"keep me"


def test_a_missing_input_does_not_stop_the_others(tiny_model, write_audio, tmp_path):
    good = write_audio("good.wav", 0.3)
    res = run("separate", tmp_path / "missing.wav", good, "-o", tmp_path / "out", "--model", tiny_model)
    assert res.exit_code == 1 and "missing.wav: no such file" in res.output and "1 FAILED" in res.output
    assert (tmp_path / "out" / "good" / "vocals.wav").exists()


def test_bad_paths_give_one_line(tiny_model, tmp_path, write_audio):
    res = run("separate", tmp_path / "nope.mp3", "--model", tiny_model)
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0 and "nope.mp3" in res.output
    (tmp_path / "empty").mkdir()
    res = run("separate", tmp_path / "empty", "--model", tiny_model)
    assert res.exit_code == 1 and "no audio files" in res.output
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_text("not audio at all")
    res = run("separate", corrupt, "-o", tmp_path / "out", "--model", tiny_model)
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0 and "corrupt.mp3: " in res.output
    assert not (tmp_path / "out" / "corrupt").exists()
    res = run("separate", write_audio("a.wav", 0.2), "--model", tmp_path / "missing.vsep")
    assert res.exit_code == 1 and "missing.vsep" in res.output
    # an output "folder" that is a file cannot be written
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("separate", write_audio("b.wav", 0.2), "-o", blocker / "out", "--model", tiny_model)
    assert res.exit_code == 1 and "Traceback" not in res.output and str(blocker) in res.output


# -- a quiet, scriptable command line --------------------------------------------------------------------
def vocalsep(*args, cwd=None):
    """``python -m vocalsep ARGS`` in a subprocess whose stderr is a pipe (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "vocalsep", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def test_python_m_vocalsep_no_bar_in_a_pipe_and_quiet(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 0.5)
    p = vocalsep("separate", src, "-o", tmp_path / "out", "--model", tiny_model)
    assert p.returncode == 0 and p.stdout == ""
    assert p.stderr.splitlines() == [p.stderr.strip()] and p.stderr.startswith("Separated 1 of 1 file into ")
    p = vocalsep("separate", src, "-o", tmp_path / "out2", "--model", tiny_model, "-q")
    assert p.returncode == 0 and p.stdout == "" and p.stderr == ""
    assert (tmp_path / "out2" / "song" / "vocals.wav").exists()
    assert "Usage: vocalsep " in vocalsep("--help").stdout


def test_keras_backend_prints_no_tensorflow_banner(tiny_model, write_audio, tmp_path):
    src = write_audio("song.wav", 0.5)
    p = vocalsep("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--backend", "keras", "-q")
    assert p.returncode == 0 and p.stdout == "" and p.stderr == ""


def test_train_prints_no_tensorflow_banner(tmp_path):
    import yaml

    from .test_train import TINY, song

    for i in range(3):
        song(tmp_path / "stems", f"s{i}", i)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    p = vocalsep("train", "--data", tmp_path / "stems", "--config", tmp_path / "tiny.yaml", "--steps", 2,
                 "--validation", "s2", "--out", tmp_path / "run", "-q")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    assert (tmp_path / "run" / "model.vsep").is_file()


def test_failures_on_stderr_and_plurals(tiny_model, write_audio, tmp_path):
    good = write_audio("good.wav", 0.3)
    res = CliRunner().invoke(main, ["separate", str(tmp_path / "missing.wav"), str(good), "-o", str(tmp_path / "o"),
                                    "--model", str(tiny_model)])
    assert res.exit_code == 1 and res.stdout == ""
    assert "missing.wav: no such file" in res.stderr and "Separated 1 of 2 files into" in res.stderr
    res = run("separate", tmp_path / "missing.wav", "--model", tiny_model, "-q")
    assert res.exit_code == 1 and res.stdout == "" and "missing.wav" in res.stderr
    res = run("separate", good, "-o", tmp_path / "o1", "--model", tiny_model, "-v")
    assert "good.wav: separated into" in res.stderr and "Separated 1 of 1 file into" in res.stderr
    assert run("separate", good, "-q", "-v").exit_code == 2


def test_two_sample_formats_are_refused(tiny_model, write_audio, tmp_path):
    """--int16 --int24 used to write 24-bit files (click's shared flag took the last one): now bad options."""
    good = write_audio("good.wav", 0.3)
    res = run("separate", good, "-o", tmp_path / "o", "--model", tiny_model, "--int16", "--int24")
    assert res.exit_code == 2 and "--int16 and --int24 are alternatives" in res.stderr
    assert not (tmp_path / "o").exists()
