#!/usr/bin/env python3
"""Fuzz what vocalsep reads from outside: model files and audio file headers.  Prints what it found.

    python scripts/fuzz_inputs.py [--model PATH] [--cases 100] [--seed 0] [--mem-gb 4] [--timeout 20]
                                  [--audio-only]

Model files: the model (default: vocalsep/models/default.vsep, the first shipped one) is taken apart and rebuilt with one mutation per case
(a config.json setting replaced by NaN, a negative, a huge number, a string, null or a list; bytes flipped
in an uncompressed member; a member truncated, emptied or dropped; the archive itself truncated), then
loaded and used to separate one second of noise.  Audio: a short wav, flac, mp3 and m4a (AAC, decoded by
PyAV) get bytes flipped in their first 128 bytes or are cut short, then go through
``Separator.separate_file``.  ``--audio-only`` skips the model files.

Each case ends as ``ok`` (worked: finite output, both files), ``refused`` (a one-line VocalsepError) or
``BUG``: any other exception, a message over one line, a hang past --timeout, more than --mem-gb of memory,
NaN in an output, or files left behind by a failure.  Exit code 1 if any case is a BUG.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vocalsep import Separator, VocalsepError  # noqa: E402
from vocalsep.model import default_model_path  # noqa: E402

VALUES = [float("nan"), float("inf"), -1, 0, 2 ** 40, "16k", None, [1, 2], {"a": 1}, True, 1.5]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def run_case(fn, timeout: float) -> tuple[str, str]:
    """(outcome, detail) of ``fn()``, which returns a problem string or None."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(timeout))
    try:
        problem = fn()
        return ("BUG", problem) if problem else ("ok", "")
    except VocalsepError as e:
        msg = str(e)
        return ("BUG", f"message of {msg.count(chr(10)) + 1} lines: {msg[:200]!r}") if "\n" in msg else ("refused", msg)
    except Hang:
        return "BUG", f"still running after {timeout:.0f} s"
    except MemoryError:
        return "BUG", "ran out of its memory limit"
    except Exception as e:  # noqa: BLE001
        return "BUG", f"{type(e).__name__}: {str(e)[:200]} at {traceback.extract_tb(e.__traceback__)[-1].filename}"
    finally:
        signal.alarm(0)


def mutate_model(parts: dict[str, bytes], rnd: random.Random) -> tuple[dict[str, bytes], str, bool]:
    """One mutation of a model file's members: (members, description, truncate the archive)."""
    parts = dict(parts)
    kind = rnd.choice(["setting", "setting", "flip", "truncate", "empty", "drop", "archive"])
    if kind == "setting":
        cfg = json.loads(parts["config.json"])
        section = rnd.choice(["spectral", "model"])
        key = rnd.choice(sorted(cfg[section]))
        value = rnd.choice(VALUES)
        cfg[section][key] = value
        parts["config.json"] = json.dumps(cfg).encode()
        return parts, f"config.json {section}.{key} = {value!r}", False
    name = rnd.choice(sorted(parts))
    data = bytearray(parts[name])
    if kind == "flip":
        for _ in range(rnd.randint(1, 16)):
            i = rnd.randrange(len(data))
            data[i] ^= 1 << rnd.randrange(8)
        parts[name] = bytes(data)
        return parts, f"bits flipped in {name}", False
    if kind == "truncate":
        parts[name] = bytes(data[: rnd.randrange(len(data))])
        return parts, f"{name} truncated", False
    if kind == "empty":
        parts[name] = b""
        return parts, f"{name} empty", False
    if kind == "drop":
        del parts[name]
        return parts, f"{name} missing", False
    return parts, "archive truncated", True


def fuzz_models(model: Path, cases: int, rnd: random.Random, tmp: Path, timeout: float) -> list[tuple[str, str, str]]:
    with zipfile.ZipFile(model) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    x = (0.1 * np.random.default_rng(0).standard_normal((16000, 2))).astype(np.float32)
    results = []
    for i in range(cases):
        mutated, what, cut = mutate_model(parts, rnd)
        path = tmp / f"m{i}.vsep"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for n, b in mutated.items():
                z.writestr(n, b)
        data = buf.getvalue()
        path.write_bytes(data[: rnd.randrange(len(data))] if cut else data)

        def case():
            for backend in ("auto", "keras"):
                v, a = Separator(path, backend=backend).separate(x, 16000)
                if not (np.isfinite(v).all() and np.isfinite(a).all()):
                    return f"{backend}: NaN or Inf in the output"
            return None

        results.append((f"model: {what}", *run_case(case, timeout)))
        path.unlink()
    return results


def fuzz_audio(sep: Separator, cases: int, rnd: random.Random, tmp: Path, timeout: float) -> list[tuple[str, str, str]]:
    x = (0.1 * np.random.default_rng(1).standard_normal((22050, 2))).astype(np.float32)
    originals = {}
    for fmt in ("wav", "flac", "mp3"):
        p = tmp / f"orig.{fmt}"
        sf.write(p, x, 22050, format=fmt.upper())
        originals[fmt] = p.read_bytes()
    import av  # an m4a, which libsndfile does not read: PyAV decodes it

    with av.open(str(tmp / "orig.m4a"), "w") as c:
        st = c.add_stream("aac", rate=22050, layout="stereo")
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp", layout="stereo")
        f.sample_rate, f.pts = 22050, 0
        for pkt in [*st.encode(f), *st.encode(None)]:
            c.mux(pkt)
    originals["m4a"] = (tmp / "orig.m4a").read_bytes()
    results = []
    for i in range(cases):
        fmt = rnd.choice(sorted(originals))
        data = bytearray(originals[fmt])
        if rnd.random() < 0.7:
            for _ in range(rnd.randint(1, 8)):
                j = rnd.randrange(min(128, len(data)))
                data[j] = rnd.randrange(256)
            what = f"{fmt}: header bytes changed"
        else:
            data = data[: rnd.randrange(len(data))]
            what = f"{fmt}: cut short"
        src = tmp / f"a{i}.{fmt}"
        src.write_bytes(bytes(data))
        out = tmp / f"out{i}"

        def case():
            try:
                res = sep.separate_file(src, out)
            except BaseException:
                if out.exists():
                    return f"failed, and left {sorted(p.name for p in out.iterdir())}"
                raise
            v, _ = sf.read(res["vocals"])
            a, _ = sf.read(res["accompaniment"])
            if len(v) != len(a) or not np.isfinite(v).all():
                return "outputs of different lengths or not finite"
            return None

        results.append((what, *run_case(case, timeout)))
        src.unlink()
        shutil.rmtree(out, ignore_errors=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--cases", type=int, default=100, help="cases of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mem-gb", type=float, default=4.0, help="address space limit of this process")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds a case may take")
    ap.add_argument("--audio-only", action="store_true", help="fuzz the audio files only, not the model files")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sep = Separator(args.model)  # before the memory limit: TensorFlow-free, but LiteRT maps memory
    limit = int(args.mem_gb * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as d:
        results = [] if args.audio_only else fuzz_models(args.model, args.cases, rnd, Path(d), args.timeout)
        results += fuzz_audio(sep, args.cases, rnd, Path(d), args.timeout)
    counts = {k: sum(r[1] == k for r in results) for k in ("ok", "refused", "BUG")}
    print(f"{len(results)} cases: {counts['ok']} ok, {counts['refused']} refused with one line, {counts['BUG']} BUG")
    for what, outcome, detail in results:
        if outcome == "BUG":
            print(f"  BUG  {what}: {detail}")
    return 1 if counts["BUG"] else 0


if __name__ == "__main__":
    sys.exit(main())
