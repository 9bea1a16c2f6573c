"""Reliability of written outputs (issue 17, items 1-3): runs sharing an output folder, a failure or a kill
between the two renames, --overwrite all or nothing, SIGTERM, temporary files of dead runs.  Faults are
injected (a failing rename, a process killed at a rename, a second run in a thread)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from vocalsep import Separator, VocalsepError, atomic, audiowrite, outputs
from vocalsep.cli import main
from vocalsep.separate import collect_inputs, run_batch

ROOT = Path(__file__).resolve().parents[1]
STEM_FILES = ("vocals.wav", "accompaniment.wav")


def parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".part"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in STEM_FILES}


def fail_renames_to(monkeypatch, name: str, exc: BaseException):
    """Make every rename or hard link onto a file called ``name`` raise ``exc`` (the second stem's commit)."""
    real_replace, real_link = os.replace, os.link

    def replace(src, dst, *a, **k):
        if Path(dst).name == name:
            raise exc
        return real_replace(src, dst, *a, **k)

    def link(src, dst, *a, **k):
        if Path(dst).name == name:
            raise exc
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)


def test_failed_second_rename_under_overwrite_keeps_the_old_outputs(tiny_model, write_audio, tmp_path, monkeypatch):
    """An error at the accompaniment's rename must not leave new vocals beside the old accompaniment."""
    sep = Separator(tiny_model)
    out = tmp_path / "out" / "song"
    sep.separate_file(write_audio("a.wav", 0.5), out)
    old = snapshot(out)
    fail_renames_to(monkeypatch, "accompaniment.wav", OSError(28, "No space left on device"))
    with pytest.raises(VocalsepError, match="No space left on device") as e:
        sep.separate_file(write_audio("b.wav", 0.7), out, overwrite=True)
    assert "\n" not in str(e.value) and str(out) in str(e.value)
    assert snapshot(out) == old  # both old files, as they were
    assert outputs.state(out, STEM_FILES) == "done" and not parts(tmp_path / "out")


def test_ctrl_c_at_the_second_rename_keeps_the_old_outputs(tiny_model, write_audio, tmp_path, monkeypatch):
    sep = Separator(tiny_model)
    out = tmp_path / "song"
    sep.separate_file(write_audio("a.wav", 0.5), out)
    old = snapshot(out)
    fail_renames_to(monkeypatch, "accompaniment.wav", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        sep.separate_file(write_audio("b.wav", 0.7), out, overwrite=True)
    assert snapshot(out) == old and not parts(tmp_path)


KILL_AT_SECOND_RENAME = """
import os, sys
from pathlib import Path
real_replace, real_link = os.replace, os.link
def die_at(real):
    def f(src, dst, *a, **k):
        if Path(dst).name == "accompaniment.wav":
            os._exit(137)  # as kill -9 at this instant: no cleanup of any kind
        return real(src, dst, *a, **k)
    return f
os.replace, os.link = die_at(real_replace), die_at(real_link)
from vocalsep.cli import main
main(sys.argv[1:])
"""


def test_a_song_killed_between_its_renames_is_not_done(tiny_model, write_audio, tmp_path):
    """kill -9 between the two renames: the next run does not skip the song, writes both outputs again,
    and removes the dead run's temporary files."""
    src = write_audio("music/song.wav", 0.6)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", KILL_AT_SECOND_RENAME, "separate", str(src), "-o", str(out),
                        "--model", str(tiny_model)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 137, r.stderr
    assert not (out / "song" / "accompaniment.wav").exists()  # the kill came at the second rename
    assert parts(out)  # what the dead run left
    lines = []
    failed = run_batch(Separator(tiny_model), collect_inputs([src]), out, progress=False, echo=lines.append)
    assert not failed and not any("skipped" in line for line in lines), lines
    assert outputs.state(out / "song", STEM_FILES) == "done"
    v, _ = sf.read(out / "song" / "vocals.wav")
    a, _ = sf.read(out / "song" / "accompaniment.wav")
    x, _ = sf.read(src)
    assert np.abs(v + a - x).max() < 3 / 32768  # a matching pair
    assert not parts(out)


def test_outputs_from_elsewhere_are_not_taken_for_a_done_song(tiny_model, write_audio, tmp_path):
    """One stem alone, not written by a vocalsep run: the song fails (exit 1) and the file is kept."""
    src = write_audio("song.wav", 0.4)
    (tmp_path / "out" / "song").mkdir(parents=True)
    (tmp_path / "out" / "song" / "vocals.wav").write_bytes(b"mine")
    r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model)])
    assert r.exit_code == 1 and "not all the outputs" in r.output and "--overwrite" in r.output
    assert (tmp_path / "out" / "song" / "vocals.wav").read_bytes() == b"mine"
    r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                                  "--overwrite"])
    assert r.exit_code == 0 and outputs.state(tmp_path / "out" / "song", STEM_FILES) == "done"


def test_a_second_run_cannot_write_into_a_claimed_song_folder(tiny_model, write_audio, tmp_path):
    """Run A is separating into out/song; run B (another file of that name) is refused, and A's Ctrl-C then
    removes only what A wrote."""
    a_src, b_src = write_audio("a/song.wav", 1.0), write_audio("b/song.wav", 0.4)
    out = tmp_path / "out"
    started, go_on = threading.Event(), threading.Event()
    result = {}

    def progress(_):
        started.set()
        go_on.wait(30)
        raise KeyboardInterrupt  # A is stopped with Ctrl-C once B has had its try

    def run_a():
        try:
            Separator(tiny_model, block_seconds=0.25).separate_file(a_src, out / "song", progress=progress)
        except BaseException as e:  # noqa: BLE001
            result["a"] = e

    t = threading.Thread(target=run_a)
    t.start()
    try:
        assert started.wait(30)
        failed = run_batch(Separator(tiny_model), collect_inputs([b_src]), out, progress=False, echo=lambda s: None)
    finally:
        go_on.set()
        t.join(30)
    assert isinstance(result.get("a"), KeyboardInterrupt)
    assert len(failed) == 1 and "another vocalsep run" in failed[0].message and str(os.getpid()) in failed[0].message
    # B wrote nothing that A's cleanup could have removed, and A left nothing behind
    assert not (out / "song").exists() and not parts(out)


def test_a_run_that_finds_the_song_done_at_commit_time_does_not_replace_it(tiny_model, write_audio, tmp_path):
    """Run A checks, then decodes a long input; run B writes the same song meanwhile: A must not replace B's
    outputs (it reports the song as done), without --overwrite."""
    a_src, b_src = write_audio("a/song.wav", 1.0), write_audio("b/song.wav", 0.4)
    out = tmp_path / "out"
    sep_a = Separator(tiny_model)
    decoding, b_done = threading.Event(), threading.Event()
    real_open = sep_a._open_blocks

    def slow_open(path, *options):
        decoding.set()
        b_done.wait(30)
        return real_open(path, *options)

    sep_a._open_blocks = slow_open
    result = {}
    lines = result.setdefault("lines", [])
    t = threading.Thread(target=lambda: result.setdefault(
        "a", run_batch(sep_a, collect_inputs([a_src]), out, progress=False, echo=lines.append)))
    t.start()
    try:
        assert decoding.wait(30)
        assert not run_batch(Separator(tiny_model), collect_inputs([b_src]), out, progress=False, echo=lambda s: None)
        b_files = snapshot(out / "song")
    finally:
        b_done.set()
        t.join(30)
    assert result["a"] == [] and any("skipped" in line for line in result["lines"])
    assert snapshot(out / "song") == b_files


class _SigtermReachedTest(Exception):
    pass


def test_sigterm_stops_separate_like_ctrl_c(tiny_model, write_audio, tmp_path, monkeypatch):
    """``kill PID`` of a separate run: exit 130, its temporary files and the folder it made are removed."""
    src = write_audio("song.wav", 2.0)
    hit = []
    real_write = audiowrite.AtomicWriter.write

    def write_then_term(self, x):
        if not hit:
            hit.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
        return real_write(self, x)

    monkeypatch.setattr(audiowrite.AtomicWriter, "write", write_then_term)
    # without a handler of its own, the run would go on to the end (and this test fail, not pytest die)
    previous = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model)],
                               catch_exceptions=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert hit and r.exit_code == 130 and "Interrupted" in r.output
    assert not (tmp_path / "out" / "song").exists() and not parts(tmp_path / "out")


def test_clear_stale_removes_only_dead_writers_parts(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {f".vocals.wav.{dead.pid}.abc123.part": False,          # its writer is gone
             f".checkpoint.npz.{os.getppid()}.abc123.part": True,    # a live process's
             f".vocals.wav.{os.getpid()}.abc123.part": True,         # our own
             ".vocals.wav.abc123.part": True,                        # no writer named: left alone
             "notes.part": True}
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    atomic.clear_stale(tmp_path)
    assert {n: (tmp_path / n).exists() for n in names} == names


@pytest.mark.parametrize("hard_links", [True, False])
def test_publish_new_never_replaces_a_file(tmp_path, monkeypatch, hard_links):
    """atomic.publish_new: a new name gets the file (normal permissions, the temporary gone); an existing
    one is left as it is (FileExistsError, the temporary kept for its writer to remove), also on a file
    system without hard links."""
    if not hard_links:
        def no_link(*a, **k):
            raise OSError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_link)
    tmp = atomic.temporary_beside(tmp_path / "a.bin")
    tmp.write_bytes(b"new")
    atomic.publish_new(tmp, tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"new" and not tmp.exists()
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o666 & ~atomic._umask()
    tmp = atomic.temporary_beside(tmp_path / "a.bin")
    tmp.write_bytes(b"newer")
    with pytest.raises(FileExistsError):
        atomic.publish_new(tmp, tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"new" and tmp.read_bytes() == b"newer"


WRITE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))  # writes fail beyond it, as on a full disk
from vocalsep.cli import main
main(sys.argv[1:])
"""


def test_a_full_output_disk_blames_the_output_and_the_batch_goes_on(tiny_model, write_audio, tmp_path):
    """A write that fails (here a file size limit, as a full disk does) names the output, not the input as
    'could not be decoded'; the batch goes on to the next song and nothing partial is left."""
    for name in ("a.wav", "b.wav"):
        write_audio(f"music/{name}", 5.0)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", WRITE_LIMIT, "separate", str(tmp_path / "music"), "-o", str(out),
                        "--model", str(tiny_model)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    lines = [line.strip() for line in r.stderr.splitlines() if line.strip().startswith(str(tmp_path / "music"))]
    assert len(lines) == 2, r.stderr  # both songs were tried (failures go to stderr)
    for line, song in zip(lines, "ab"):
        # the first file past the limit: vocals.wav, or the float32 copy of the vocals in that folder that
        # --clip rescale (the default for 16-bit outputs) keeps until the peak is known
        assert f"{out / song}: could not be written" in line or f"{out / song}/vocals.wav: could not be written" in line
        assert "decoded" not in line
    assert not list(out.rglob("*.wav")) and not parts(out)


@pytest.mark.parametrize("content", [b"[" * 200_000, b"\xff\xfe garbage", b'"a string"'])
def test_a_damaged_manifest_is_ignored_not_a_traceback(tmp_path, content):
    (tmp_path / "song").mkdir()
    (tmp_path / "song" / outputs.MANIFEST).write_bytes(content)
    (tmp_path / "song" / "vocals.wav").write_bytes(b"x")
    assert outputs.state(tmp_path / "song", STEM_FILES) == "partial"


def test_a_file_system_without_locks_writes_with_one_warning(tiny_model, write_audio, tmp_path, monkeypatch, caplog):
    """flock refused by the file system (ENOLCK: NFS without a lock daemon) used to fail every song as
    'another vocalsep run (process ?) is writing there'; contention (EWOULDBLOCK) still does."""
    import errno
    import logging

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(outputs.fcntl, "flock", no_locks)
    monkeypatch.setattr(outputs, "_warned_unlocked", set())
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)  # (the CLI's tests turn it off)
    for name in ("a.wav", "b.wav"):
        write_audio(f"music/{name}", 0.4)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="vocalsep"):
        failed = run_batch(Separator(tiny_model), collect_inputs([tmp_path / "music"]), out, progress=False,
                           echo=lambda s: None)
    assert not failed
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == [
        "a/accompaniment.wav", "a/vocals.wav", "b/accompaniment.wav", "b/vocals.wav"]
    warnings = [r.getMessage() for r in caplog.records if "cannot lock" in r.getMessage()]
    assert len(warnings) == 1 and "No locks available" in warnings[0]  # once per file system
    assert not list(out.rglob(outputs.LOCK))

    def busy(fd, op):
        raise BlockingIOError(errno.EWOULDBLOCK, "Resource temporarily unavailable")

    monkeypatch.setattr(outputs.fcntl, "flock", busy)
    failed = run_batch(Separator(tiny_model), collect_inputs([tmp_path / "music" / "a.wav"]), tmp_path / "o2",
                       progress=False, echo=lambda s: None)
    assert len(failed) == 1 and "another vocalsep run" in failed[0].message


def test_an_output_that_is_the_input_is_refused_even_with_overwrite(tiny_model, write_audio, tmp_path):
    """``vocalsep separate t/vocals.wav -o t --filename "{stem}.{ext}"``: the message suggested --overwrite,
    which then replaced the input with its own vocals."""
    src = write_audio("t/vocals.wav", 0.4)
    before = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "t"), "--filename", "{stem}.{ext}",
                                      "--model", str(tiny_model), *extra])
        assert r.exit_code == 1 and "is the input file itself" in r.output and "--overwrite" not in r.output
        assert src.read_bytes() == before and sorted(p.name for p in (tmp_path / "t").iterdir()) == ["vocals.wav"]


def test_another_tools_stems_are_not_taken_for_a_done_song(tiny_model, write_audio, tmp_path):
    """Spleeter's layout (separated/song/vocals.wav + accompaniment.wav, no vocalsep manifest) was skipped as
    done, exit 0; now the song fails until --overwrite, and the files are kept."""
    src = write_audio("song.wav", 0.4)
    folder = tmp_path / "separated" / "song"
    folder.mkdir(parents=True)
    for n in STEM_FILES:
        (folder / n).write_bytes(b"spleeter's")
    r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "separated"), "--model", str(tiny_model)])
    assert r.exit_code == 1 and "no vocalsep run vouches for them" in r.output and "--overwrite" in r.output
    assert all((folder / n).read_bytes() == b"spleeter's" for n in STEM_FILES)
    r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "separated"), "--model", str(tiny_model),
                                  "--overwrite"])
    assert r.exit_code == 0 and outputs.state(folder, STEM_FILES) == "done"
    r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "separated"), "--model", str(tiny_model)])
    assert r.exit_code == 0 and "skipped" in r.output  # vocalsep's own: done
