"""The inputs of a folder batch: which files ``vocalsep separate`` takes, and where each one's outputs go.

Output folders are relative to the output root and never leave it (see :func:`output_name`).  Nothing here
opens an input that is not a regular file (a FIFO with no writer would block).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import audio
from .errors import VocalsepError

log = logging.getLogger("vocalsep.inputs")


def duration(path: Path) -> float:
    """Seconds of audio in a file from its header (for the progress bar); 0 when it cannot be read."""
    import soundfile as sf

    if not path.is_file():  # a FIFO would block here (audio.check_file refuses it with a message)
        return 0.0
    if not audio.mp3_without_length(path):  # libsndfile's length is a guess there; FFmpeg's is closer
        try:
            with audio.quiet_stderr():
                i = sf.info(str(path))
            return i.frames / i.samplerate if i.samplerate else 0.0
        except Exception:
            if audio.libsndfile_only(path):
                return 0.0
    from .containers import duration as container_duration

    return container_duration(path)


@dataclass
class Job:
    """One input file and the folder its two outputs go to (relative to the output root); ``error`` is set
    for an input that cannot be separated at all (a missing path, a folder without audio)."""

    path: Path
    name: Path
    error: str | None = None


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (False where either does not exist)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def collect_inputs(inputs: Iterable[str | Path]) -> list[Job]:
    """Expand files and folders (recursively) into jobs.  A folder's files keep their sub-folders in the
    output (``out/<sub>/<song>/``); files that vocalsep wrote as outputs (listed in their folder's manifest,
    e.g. ``separated/`` inside the folder from an earlier run) are left out, with one message per folder.
    A file named on its own is always taken.  A missing path or a folder with no audio becomes a failed
    job, so that the rest of the batch goes on; when no input is usable at all, VocalsepError says why."""
    from .outputs import read_manifest, recorded

    jobs: list[Job] = []
    for p in map(Path, inputs):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in audio.INPUT_EXTENSIONS
                           and not f.name.startswith("."))
            made = {d: recorded(read_manifest(d)) for d in {f.parent for f in found}}  # each manifest read once
            files = [f for f in found if f.name not in made[f.parent]]
            if len(files) < len(found):
                log.info("%s: left out %d file(s) that vocalsep wrote (outputs of an earlier run)",
                         p, len(found) - len(files))
            if files:
                jobs += [Job(f, output_name(f.relative_to(p))) for f in files]
            else:
                what = (f"only vocalsep's own outputs ({len(found)} files) found in this folder" if found else
                        f"no audio files found in this folder (looked for {', '.join(audio.INPUT_EXTENSIONS)})")
                jobs.append(Job(p, Path(p.name), f"{p}: {what}"))
        elif p.exists():
            jobs.append(Job(p, output_name(Path(p.name))))
        else:
            why = ("standard input is not read: save the audio to a file first" if str(p) == "-" else
                   "no such file or folder")
            jobs.append(Job(p, output_name(Path(p.name)), f"{p}: {why}"))
    if all(j.error for j in jobs):
        raise VocalsepError(jobs[0].error if jobs else "no input given")
    return jobs


def output_name(rel: Path) -> Path:
    """The output folder (relative to the output root) of an input at ``rel``: its path without the
    extension, or its whole name where the name without extension would be ``.`` or ``..`` (an input named
    ``..wav`` or ``...wav``), so that an output never lands in or above the output root."""
    stem = Path(rel.name).stem
    return rel.with_name(stem if stem not in ("", ".", "..") else rel.name)


def open_part(path: Path, opts, block_sizes, warn_short: bool = True) -> tuple[int, int, Iterator[np.ndarray]]:
    """Sample rate, channels and an iterator of the overlapping blocks (``audio.blocks``) of the part of a
    file that ``opts`` (an ``OutputOptions``) selects with ``start`` / ``duration``; ``block_sizes(rate)``
    gives (block, overlap) in samples; ``warn_short``: warn of a file cut short (``audio.reader_blocks``).
    Files libsndfile cannot read, or would cut short (``audio.mp3_without_length``), are decoded in blocks
    by PyAV (:mod:`vocalsep.containers`), a part from its start sample by decoding up to it."""
    import soundfile as sf

    audio.check_file(path)
    past_end = f"{path}: --start {opts.start:g} s is at or past its end"
    if audio.mp3_without_length(path):
        return _open_container_part(path, opts, block_sizes, past_end, warn_short)
    try:
        with audio.open_file(path) as f:
            sr, ch = f.samplerate, f.channels
            start, frames = opts.span(sr)
            with audio.quiet_stderr():
                # the start is probed before any read: libsndfile's Vorbis decoder, once it has read, finds
                # nothing after a seek into the last ~1000 samples of a short file
                if start:
                    try:
                        f.seek(start)
                        first = f.read(1, dtype="float32")
                    except (sf.LibsndfileError, RuntimeError, ValueError):
                        first = np.zeros((0, ch), np.float32)
                    if len(first) == 0:
                        f.seek(0)
                        if len(f.read(1, dtype="float32")):
                            raise VocalsepError(past_end + (
                                f" ({f.frames / sr:.2f} s long)" if start >= f.frames else
                                f" (its audio stops before the {f.frames / sr:.2f} s its header announces: the "
                                "file may be cut short)"))
                else:
                    first = f.read(1024, dtype="float32")
    except (sf.LibsndfileError, RuntimeError) as e:
        if audio.libsndfile_only(path):
            raise audio._soundfile_error(path, e) from None
        return _open_container_part(path, opts, block_sizes, past_end, warn_short)
    if len(first) == 0:
        raise VocalsepError(f"{path}: contains no audio samples")
    return sr, ch, audio.blocks(path, *block_sizes(sr), start=start, frames=frames, warn_short=warn_short)


def _open_container_part(path: Path, opts, block_sizes, past_end: str,
                         warn_short: bool = True) -> tuple[int, int, Iterator[np.ndarray]]:
    """:func:`open_part` for a file that PyAV decodes (m4a, aac, wma, video): streamed in blocks."""
    from .containers import Reader

    r = Reader(path)
    try:
        sr, ch = r.samplerate, r.channels
        start, frames = opts.span(sr)
        if start and (r.seek(start) < start or r.at_end()):
            raise VocalsepError(f"{past_end} ({r.tell() / sr:.2f} s long)")
    except BaseException:
        r.close()
        raise
    return sr, ch, audio.reader_blocks(r, *block_sizes(sr), frames=frames, warn_short=warn_short)
