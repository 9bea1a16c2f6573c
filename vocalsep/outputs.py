"""One song's output folder: claimed by one run at a time, written all or nothing.

A run that writes a song's outputs (``vocals.wav`` and ``accompaniment.wav``, or another format) into a
folder first **claims** it: it takes an exclusive lock (``flock``) on ``<folder>/.vocalsep.lock``, which the
kernel drops when the process dies, so a killed run never leaves a folder locked.  A second run that wants
the same folder meanwhile gets a VocalsepError naming the first run's process id; it never writes there.
On a file system that refuses locks (NFS without a lock daemon) the run writes without the claim, after
one warning.

The outputs are committed together, after every temporary file is complete:

1. ``.vocalsep-outputs.json`` (the manifest) is written, atomically, as ``{"writing": [names]}`` (plus the
   records of the folder's other songs, when a ``--filename`` template puts several songs in one folder);
2. each temporary file is renamed to its name: without ``overwrite`` with no-replace semantics
   (``os.link``, which fails if the name exists), with ``overwrite`` over the old file, which is kept under
   a temporary hard link until the end;
3. the manifest is rewritten as ``{"complete": [names], "outputs": {name: provenance}, ...}``: for each
   file, what made it (the input, the model's path and SHA-256, vocalsep's version, the options that shape
   the audio) and its size in bytes.

A failure (an error, Ctrl-C, SIGTERM) in steps 1-3 puts back what was there: the old outputs (from their
hard links) or nothing.  A run killed outright (kill -9, a power cut) in steps 1-3 leaves the manifest at
``writing``, so the song never counts as done: the next run writes it again.  A song counts as done when
all its outputs exist, the manifest records them and does not say they are being written (files that no
manifest records, another tool's or vocalsep 0.1's, are not taken for done: without ``overwrite`` that is
an error).  A done song whose manifest says its
outputs were made by another model (another SHA-256) or with other options is not taken for done: without
``overwrite`` that is an error (:class:`OutputsDiffer`), so a run never silently keeps another model's
outputs as its own.  Cleaning up after a failure
removes only what this run created: its temporary files, its lock file and the folders it made, if empty.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Iterable

from . import atomic
from .errors import VocalsepError

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: no claim, the commit is still all or nothing)
    fcntl = None

MANIFEST = ".vocalsep-outputs.json"
LOCK = ".vocalsep.lock"
_warned_unlocked: set[int] = set()  # file systems (st_dev) already warned about: no flock there
_MANIFEST_LIMIT = 1 << 20  # bytes read of a manifest at most


class OutputsExist(VocalsepError):
    """A song's outputs are all there already (and ``overwrite`` was not given): the song is done."""


class OutputsDiffer(VocalsepError):
    """A song's outputs are all there, but another model or other options made them (no ``overwrite``)."""


#: the parts of a file's provenance that must match for a done song to count as this run's
_SAME = ("model_sha256", "options")


def _model(p: dict) -> str:
    sha = p.get("model_sha256")  # an ensemble's: its members' joined by +
    sha = "+".join(s[:12] for s in sha.split("+")) if isinstance(sha, str) else "?"
    return f"model {p.get('model')} (sha256 {sha})"


def _options(p: dict):
    """The recorded options with the unset ones (null) left out, as :meth:`OutputOptions.describe` leaves them."""
    o = p.get("options")
    return {k: v for k, v in o.items() if v is not None} if isinstance(o, dict) else o


def _made_otherwise(p: dict, about: dict) -> str:
    """What differs between a recorded provenance ``p`` and this run's ``about``: the model, then each option
    that differs, as ``duration 20.0 (this run: none)``."""
    def show(v) -> str:
        return "none" if v is None else v if isinstance(v, str) else json.dumps(v)

    parts = []
    if p.get("model_sha256") != about["model_sha256"]:
        parts.append(f"{_model(p)} (this run: {_model(about)})")
    old, new = _options(p), _options(about)
    if old != new:
        if isinstance(old, dict) and isinstance(new, dict):
            parts += [f"{k} {show(old.get(k))} (this run: {show(new.get(k))})"
                      for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        else:
            parts.append(f"options {json.dumps(old, sort_keys=True)} (this run: {json.dumps(new, sort_keys=True)})")
    return ", ".join(parts)


def differs(folder: Path, names: list[str], about: dict | None) -> str | None:
    """A one-line reason when the manifest of ``folder`` records that one of ``names`` was made otherwise
    than ``about`` says (another model file, other options); None when it matches or is not recorded
    (a manifest of vocalsep 0.1, or none)."""
    if not about or not all(k in about for k in _SAME):
        return None
    rec = (read_manifest(folder) or {}).get("outputs")
    if not isinstance(rec, dict):
        return None
    for n in names:
        p = rec.get(n)
        if isinstance(p, dict) and (p.get("model_sha256") != about["model_sha256"] or _options(p) != _options(about)):
            return (f"{folder / n}: was made with {_made_otherwise(p, about)}; use --overwrite to replace it, "
                    "or another output folder")
    return None


def read_manifest(folder: Path) -> dict | None:
    """The manifest of ``folder``, or None when there is none (or it is not one: then it is ignored)."""
    try:
        with open(folder / MANIFEST, "rb") as f:
            m = json.loads(f.read(_MANIFEST_LIMIT))
    except (OSError, ValueError, RecursionError):
        return None
    return m if isinstance(m, dict) else None


def state(folder: str | Path, names: Iterable[str]) -> str:
    """What ``folder`` holds of the outputs ``names`` (file names):

    ``absent`` (none of them), ``done`` (all, complete), ``interrupted`` (a run that was writing them died:
    what is there is vocalsep's own and may be replaced), ``partial`` (some of them, from elsewhere) or
    ``foreign`` (all of them, but no manifest vouches for them: another tool's, such as Spleeter's
    ``vocals.wav`` and ``accompaniment.wav``, or vocalsep 0.1's, which wrote none).
    """
    folder, names = Path(folder), list(names)
    m = read_manifest(folder)
    writing = m.get("writing") if m else None
    if isinstance(writing, list) and set(names) & set(writing):
        return "interrupted"
    present = [n for n in names if os.path.lexists(folder / n)]
    if not present:
        return "absent"
    if len(present) < len(names):
        return "partial"
    return "done" if set(names) <= recorded(m) else "foreign"


def recorded(manifest: dict | None) -> set[str]:
    """The file names a manifest (:func:`read_manifest`) records as vocalsep's outputs: complete, or being
    written."""
    m = manifest or {}
    names = [*(m.get("outputs") if isinstance(m.get("outputs"), dict) else {}),
             *(m.get("complete") if isinstance(m.get("complete"), list) else []),
             *(m.get("writing") if isinstance(m.get("writing"), list) else [])]
    return {n for n in names if isinstance(n, str)}


def check(folder: str | Path, names: list[str], overwrite: bool, about: dict | None = None) -> str:
    """:func:`state`, raising what a run without ``overwrite`` may not go past: OutputsExist for a done song,
    OutputsDiffer for a done song that another model or other options made (``about``: this run's
    provenance), VocalsepError for a partial one (files that no vocalsep run can vouch for)."""
    folder = Path(folder)
    st = state(folder, names)
    if overwrite:
        return st
    if st == "done":
        why = differs(folder, names, about)
        if why:
            raise OutputsDiffer(why)
        raise OutputsExist(f"{folder / names[0]}: already exists (use --overwrite to replace it)")
    if st == "foreign":
        raise VocalsepError(f"{folder}: holds {', '.join(names)}, but no vocalsep run vouches for them (another "
                            "tool's outputs, or vocalsep 0.1's); use --overwrite to replace them")
    if st == "partial":
        have = [n for n in names if os.path.lexists(folder / n)]
        raise VocalsepError(f"{folder}: holds {', '.join(have)} but not all the outputs, and no vocalsep run was "
                            "writing them; use --overwrite to replace them")
    return st


class Claim:
    """The claim of one song folder (use :func:`claim`): the lock, the folders it made, and :meth:`commit`."""

    def __init__(self, folder: Path, names: list[str], overwrite: bool, about: dict | None = None):
        self.folder, self.names, self.overwrite, self.about = folder, names, overwrite, about
        self._made: list[Path] = []
        self._fd: int | None = None

    # -- claiming ------------------------------------------------------------------------------------
    def _mkdir(self) -> None:
        missing = []
        p = self.folder
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        try:
            for d in reversed(missing):
                try:
                    d.mkdir()
                    self._made.append(d)
                except FileExistsError:
                    pass
        except OSError as e:
            raise VocalsepError(f"{self.folder}: cannot create output folder ({e.strerror})") from None

    def acquire(self) -> "Claim":
        for _ in range(100):
            self._mkdir()
            if fcntl is None:  # pragma: no cover
                break
            lock = self.folder / LOCK
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except FileNotFoundError:  # another run gave the folder up and removed it just now: make it again
                continue
            except OSError as e:
                self.release()
                raise VocalsepError(f"{self.folder}: cannot write there ({e.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # no locks on this file system (NFS
                    self._unlocked(fd, e)                              # without a lock daemon): go on, say so
                else:
                    pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    self.release()
                    raise VocalsepError(f"{self.folder}: another vocalsep run (process {pid}) is writing there; "
                                        "wait for it or choose another output folder") from None
            try:  # its last holder may have removed the lock file between our open and our lock: retry
                same = os.path.samestat(os.fstat(fd), os.stat(lock, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            break
        else:  # pragma: no cover
            raise VocalsepError(f"{self.folder}: could not claim the folder (it keeps disappearing)")
        atomic.clear_stale(self.folder)  # temporary files of dead runs: nobody else writes here now
        check(self.folder, self.names, self.overwrite, self.about)
        return self

    def _unlocked(self, fd: int, e: OSError) -> None:
        """The file system of ``fd`` refuses ``flock`` (``e``): write without the claim (the commit is still
        all or nothing), with one warning per file system."""
        dev = os.fstat(fd).st_dev
        if dev not in _warned_unlocked:
            _warned_unlocked.add(dev)
            logging.getLogger("vocalsep").warning(
                "%s: cannot lock output folders on this file system (%s): a second vocalsep run writing the same "
                "song at the same time would not be stopped", self.folder, e.strerror or e)

    def release(self) -> None:
        """Give the folder up: remove the lock file, then the folders this claim made if they are empty."""
        if self._fd is not None:
            lock = self.folder / LOCK
            try:
                if os.path.samestat(os.fstat(self._fd), os.stat(lock, follow_symlinks=False)):
                    os.unlink(lock)  # while still holding the lock: a run waiting for it sees the file gone
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        for d in reversed(self._made):
            try:
                d.rmdir()  # only if empty: never what another run wrote
            except OSError:
                break
        self._made = []

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- committing ----------------------------------------------------------------------------------
    def commit(self, temps: dict[str, Path], about: dict | None = None) -> None:
        """Rename the complete temporary files ``temps`` ({file name: temporary path}, in this folder) to
        their names, all or nothing (see the module's docstring).  ``about``: each file's provenance for the
        manifest (default: the claim's)."""
        folder = self.folder
        about = self.about if about is None else about
        check(folder, self.names, self.overwrite, about)  # again at commit time
        try:
            with open(folder / MANIFEST, "rb") as f:
                old_manifest = f.read(_MANIFEST_LIMIT)
        except OSError:
            old_manifest = None
        previous = read_manifest(folder) or {}
        replacing = [n for n in temps if os.path.lexists(folder / n)]
        backups: dict[str, Path] = {}
        renamed: list[str] = []
        try:
            kept = {k: previous[k] for k in ("complete", "outputs") if k in previous}  # the folder's other songs
            atomic.write_bytes(folder / MANIFEST, json.dumps({"writing": sorted(temps), "pid": os.getpid(),
                                                              **kept}).encode())
            for n in replacing:
                b = folder / f".{n}.{os.getpid()}.{secrets.token_hex(4)}.part"
                try:
                    os.link(folder / n, b)
                    backups[n] = b
                except OSError:  # no hard links here: the old file cannot be put back
                    pass
            for n, tmp in temps.items():
                _rename(tmp, folder / n, replace=n in replacing)
                renamed.append(n)
            complete = sorted(set(temps) | {n for n in previous.get("complete", []) if isinstance(n, str)
                                             and n not in temps and os.path.lexists(folder / n)})
            made = previous.get("outputs") if isinstance(previous.get("outputs"), dict) else {}
            made = {n: p for n, p in made.items() if n in complete and n not in temps}
            made.update({n: {**(about or {}), "bytes": (folder / n).stat().st_size} for n in temps})
            atomic.write_bytes(folder / MANIFEST, json.dumps({"complete": complete, "outputs": made},
                                                             indent=1).encode())
        except BaseException as e:
            restored = True
            for n in renamed:  # put back what was there
                try:
                    if n in backups:
                        os.replace(backups.pop(n), folder / n)
                    elif n in replacing:
                        restored = False
                    else:
                        os.unlink(folder / n)
                except OSError:
                    restored = False
            if restored:
                try:
                    if old_manifest is None:
                        os.unlink(folder / MANIFEST)
                    else:
                        atomic.write_bytes(folder / MANIFEST, old_manifest)
                except OSError:  # the manifest still says "writing": the song is not done
                    pass
            if isinstance(e, OSError):
                kept = "the old outputs are kept" if replacing else "nothing was written"
                if not restored:
                    kept = "they are incomplete and will be written again"
                raise VocalsepError(f"{folder}: could not write the outputs ({e.strerror or e}); {kept}") from None
            raise
        finally:
            for b in backups.values():
                b.unlink(missing_ok=True)


def _rename(tmp: Path, target: Path, replace: bool) -> None:
    """Give ``tmp`` a normal file's permissions and the name ``target``; without ``replace``, never over an
    existing file (VocalsepError if one appeared meanwhile)."""
    if replace:
        atomic.publish(tmp, target)
        return
    try:
        atomic.publish_new(tmp, target)
    except FileExistsError:
        raise VocalsepError(f"{target}: appeared while this run was writing it; left as it is") from None


def claim(folder: str | Path, names: list[str], overwrite: bool = False, about: dict | None = None) -> Claim:
    """Claim ``folder`` for writing the outputs ``names`` (file names): make it (and its missing parents),
    lock it, remove temporary files of dead runs in it, and check what is there (:func:`check`, with
    ``about``, this run's provenance of each file).
    ``with claim(...) as c: ...; c.commit(temps)``; leaving the ``with`` gives the folder up."""
    c = Claim(Path(folder), list(names), overwrite, about)
    try:
        return c.acquire()
    except BaseException:
        c.release()
        raise
