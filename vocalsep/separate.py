"""Separation: the :class:`Separator` and the folder batch behind ``vocalsep separate``.

How a song is separated (any rate, any channel count, any length):

1. The song is cut into blocks of ``block_seconds`` with ``overlap_seconds`` of context on each side
   (by default the context the front end asks for, half a patch: 2 s for the default model; memory holds
   one block, whatever the song's length).
2-3. Each block goes through the spectral front end (:mod:`vocalsep.frontend`, the one training uses too):
   resampled to the model's rate (16384 Hz by default), the magnitude STFT of its mid channel (or of each
   channel, ``stereo="channels"``) cut into normalised patches (overlapping by a quarter by default) that
   go through the network (a runner, :mod:`vocalsep.runners`) in batches; the patches' masks overlap-added,
   interpolated onto the full-resolution STFT of the block at the input's own rate (window ~0.1 s), and
   above the model's Nyquist (8192 Hz for the default model) the high-band rule (``HIGH_BAND_SLOPE``), so
   the whole band is kept and an uncertain mask fades where cymbals and hi-hats take over.  A waveform
   model (the Wave-U-Net) goes through the waveform front end (:mod:`vocalsep.wavefront`) instead: its
   vocals at the model's rate become a ratio mask on the same grid, and the same full-band stage follows.
4. vocals = ISTFT(mask x mixture STFT) with the mixture's phase; accompaniment = mixture - vocals, so the
   two add up to the input exactly.
5. Consecutive blocks are cross-faded linearly over their shared 2 x overlap samples, so there are no
   seams.

Threads: the network works on block i + 1 while block i goes through steps 3-4, and a file's next block is
decoded and its last piece encoded in an I/O thread.  The audio is the same as with one thread; the
time it saves is measured in docs/choices.md ("Speed").
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import __version__, atomic, audio, audiowrite, outputs
from .checks import check_number, check_rate
from .errors import VocalsepError
from .inputs import Job, collect_inputs, duration, open_part, output_name, same_file  # noqa: F401  (re-exported)
from .ensemble import Member, load_members, mean_masks  # noqa: F401  (Member re-exported)
from .frontend import FULL_BAND_WINDOW_S, HIGH_BAND_SLOPE, SpectralFrontEnd, full_band_stft_params  # noqa: F401
from .outspec import STEMS, OutputOptions, warn_clipping  # noqa: F401  (STEMS re-exported)
from .stemwrite import finite, read_ahead, write_stems
#: more channels than this in an array given to Separator.separate is taken for (channels, samples) by mistake
MAX_CHANNELS = 8


class Separator:
    """Separates vocals from accompaniment with a trained network (any architecture, spectral or waveform).

    model_path: a ``.vsep`` file written by ``vocalsep train``, or a list of them: an ensemble
        (:mod:`vocalsep.ensemble`), whose masks on the model grid are the mean of its members' (each
        member's network runs on every patch: N members take N times the network's time).  The members
        must share the STFT (``spectral``) and the number of bins (``model.freq_bins``); their
        architectures may differ; a file given twice is refused.  The first member's front end does the full-band stage.
        None: the models shipped with vocalsep, an ensemble of two (``vocalsep.model.shipped_model_paths()``;
        ``default_model_path()`` is the first alone, ``vocalsep separate --fast``).
    backend: ``auto`` (LiteRT when the model file has it), ``litert`` or ``keras``.
    block_seconds / overlap_seconds: streaming block length and the context on each side of a block (None:
        the front end's ``context_seconds()``: half a patch for a spectral model, the network's context for a
        waveform one; an ensemble's widest member's).  A block must be at least twice the overlap (a
        block's context then reaches no further than its neighbours), else VocalsepError: 4 s for the shipped
        models.
    high_band_from_hz: the mask above the model's band is the mean of its mask above this frequency
        (None: the model's top half-octave, from its Nyquist / sqrt(2); the best of the rules that
        scripts/measure_full_band.py compares), raised to 1 + ``high_band_slope`` x octaves above the band
        (0: that mean everywhere above, as in 0.1.0).
    stereo: ``mid`` (one mask, computed from the mean of the channels, applied to every channel) or
        ``channels`` (a mask per channel).  ``mid`` is the default: it scored higher on MUSDB18-HQ
        (scripts/eval_default.py --variants; docs/choices.md) and costs half as much.
    patch_overlap: share of a patch that overlaps the next one (0.25: a patch every 3/4 patch).  Measured
        against 0.5 (docs/choices.md): the same quality on validation, 1.33x less network time.  (A waveform
        model has no patches: its network calls meet end to end.)
    pipeline: run the network on the next block in a thread while this block is taken to the full band
        (the same audio; False: everything in the calling thread, e.g. to profile).
    threads: the network's threads (LiteRT; None: one per CPU).  The audio is the same.
    """

    def __init__(self, model_path: str | Path | list | None = None, backend: str = "auto", block_seconds: float = 60.0,
                 overlap_seconds: float | None = None, high_band_from_hz: float | None = None, batch: int = 4,
                 stereo: str = "mid", patch_overlap: float = 0.25, pipeline: bool = True,
                 high_band_slope: float = HIGH_BAND_SLOPE, threads: int | None = None):
        check_number("block_seconds", block_seconds, 0, math.inf, low_open=True)
        if overlap_seconds is not None:
            check_number("overlap_seconds", overlap_seconds, 0, math.inf)
        if high_band_from_hz is not None:
            check_number("high_band_from_hz", high_band_from_hz, 0, math.inf, low_open=True)
        check_number("high_band_slope", high_band_slope, 0, 16)
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise VocalsepError(f"batch must be a whole number >= 1, not {batch!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise VocalsepError(f"threads must be a whole number >= 1, not {threads!r}")
        if stereo not in ("channels", "mid"):
            raise VocalsepError(f"stereo must be 'channels' or 'mid', not {stereo!r}")
        #: each member of the ensemble (one for a single model)
        self.members, first = load_members(model_path, backend, int(batch), threads, patch_overlap,
                                           high_band_from_hz, high_band_slope)
        self.spectral, self.model_config, self.info = first.spectral, first.model, first.info
        self.block_seconds = block_seconds
        self.overlap_seconds = (overlap_seconds if overlap_seconds is not None
                                else max(m.frontend.context_seconds() for m in self.members))
        if block_seconds < 2 * self.overlap_seconds:  # _stream cross-fades each block with its neighbours only
            raise VocalsepError(f"block_seconds must be at least twice the overlap ({2 * self.overlap_seconds:g} s"
                                f"{' for these models' if overlap_seconds is None else ''}), not {block_seconds!r}")
        self.stereo = stereo
        self.pipeline = pipeline

    # the members' files: the first one's, all of them, and all of them as one name (" + " between)
    model_path = property(lambda self: self.members[0].path)
    model_paths = property(lambda self: [m.path for m in self.members])
    model_name = property(lambda self: " + ".join(map(str, self.model_paths)))

    # the first member's front end (which does the full-band stage) and runner; tests replace the runner
    frontend = property(lambda self: self.members[0].frontend)
    runner = property(lambda self: self.members[0].runner, lambda self, r: setattr(self.members[0], "runner", r))

    # the front end's settings, as attributes of the Separator (scripts read and set them; set on every member)
    patch_hop = property(lambda self: self.frontend.patch_hop)
    high_band_from_hz = property(lambda self: self.frontend.high_band_from_hz,
                                 lambda self, v: self._set_all("high_band_from_hz", v))
    high_band_slope = property(lambda self: self.frontend.high_band_slope,
                               lambda self, v: self._set_all("high_band_slope", float(v)))

    def _set_all(self, name: str, value) -> None:
        for m in self.members:
            setattr(m.frontend, name, value)

    # -- the model's view: masks at the model's rate ---------------------------------------------------
    def model_masks(self, x_model: np.ndarray) -> np.ndarray:
        """Vocal masks for audio at the model's rate.

        x_model: (samples, channels) float32 at ``spectral.sample_rate``.
        Returns (channels, freq_bins, frames) float32 in [0, 1] (one "channel" for ``stereo="mid"``): bin k
        at k * sample_rate / n_fft Hz, frame t at t * hop_length samples.
        """
        if self.stereo == "mid" and x_model.shape[1] > 1:
            x_model = _mid(x_model)
        return mean_masks(self.members, x_model)

    # -- one block at the input's rate -----------------------------------------------------------------
    def _block_masks(self, x: np.ndarray, sr: int) -> np.ndarray:
        """The model's masks for one block.  x: (samples, channels) float32 at ``sr``; returns
        :meth:`model_masks`'s (mask channels, freq_bins, frames)."""
        # the mid is taken before resampling (both are linear): one channel to resample instead of two
        y = _mid(x) if self.stereo == "mid" else x
        return self.model_masks(audio.resample(y, sr, self.spectral.sample_rate).reshape(-1, y.shape[1]))

    def _block_vocals(self, x: np.ndarray, masks: np.ndarray, sr: int) -> np.ndarray:
        """Vocals for one block: its full-resolution STFT x the masks, inverted.  Returns x's shape."""
        return self.frontend.full_band(x, masks, sr)

    def _separated_blocks(self, blocks: Iterable[np.ndarray], sr: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(block, its vocals) for each block; the network works on the next block in a thread while
        this one is taken to the full band."""
        if not self.pipeline:
            for x in blocks:
                yield x, self._block_vocals(x, self._block_masks(x, sr), sr)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="vocalsep-net") as pool:
            items = iter(blocks)
            x = next(items, None)
            masks = pool.submit(self._block_masks, x, sr) if x is not None else None
            while x is not None:
                m = masks.result()
                nxt = next(items, None)
                if nxt is not None:
                    masks = pool.submit(self._block_masks, nxt, sr)
                yield x, self._block_vocals(x, m, sr)
                x = nxt

    def _stream(self, blocks: Iterable[np.ndarray], sr: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Separate consecutive overlapping blocks (see ``audio.blocks``) and yield (mixture, vocals)
        pieces that tile the input in order, cross-fading the overlaps."""
        _, overlap = self._block_sizes(sr)
        tail_mix = tail_voc = None
        for x, voc in self._separated_blocks(blocks, sr):
            if tail_voc is not None:
                # x starts `overlap` before the block start; the previous block's tail covers 2*overlap
                n = min(len(tail_voc), len(voc))
                ramp = ((np.arange(n) + 0.5) / n).astype(np.float32)[:, None]
                yield x[:n], tail_voc[:n] * (1 - ramp) + voc[:n] * ramp
                x, voc = x[n:], voc[n:]
            keep = min(2 * overlap, len(x)) if overlap else 0
            # hold back the part that the next block will overlap
            cut = len(x) - keep
            if cut > 0:
                yield x[:cut], voc[:cut]
            tail_mix, tail_voc = x[cut:], voc[cut:]
        if tail_voc is not None and len(tail_voc):
            yield tail_mix, tail_voc

    def _block_sizes(self, sr: int) -> tuple[int, int]:
        """(block, overlap) in samples at ``sr``; the overlap at most half the block (rounding may cost the
        overlap a sample) so that consecutive blocks' overlaps meet end to end, as ``_stream`` needs."""
        block = max(1, int(round(self.block_seconds * sr)))
        return block, min(int(round(self.overlap_seconds * sr)), block // 2)

    # -- public API ------------------------------------------------------------------------------------
    def separate(self, x: np.ndarray, sample_rate: int, channels_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Separate an array.

        x: (samples, channels) or (samples,) float, any rate: samples first, as soundfile reads them
        (``always_2d=True``).  ``channels_first=True`` takes (channels, samples) instead, the convention of
        torchaudio, Demucs and Open-Unmix, and returns that shape.  A shape that is more likely the other
        convention (more than 8 channels, or more channels than samples beyond stereo) is refused.
        Returns (vocals, accompaniment), each float32 of x's shape; vocals + accompaniment == x (up to
        float32 rounding).
        """
        sample_rate = check_rate(sample_rate)
        try:
            x = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise VocalsepError(f"x must be an array of audio samples ({str(e).splitlines()[0]})") from None
        mono = x.ndim == 1
        if mono:
            x = x[:, None]
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise VocalsepError(f"x: expected audio of shape {'(channels, samples)' if channels_first else '(samples, channels)'}"
                                f" or (samples,) with samples and channels > 0, got {x.shape}")
        if channels_first and not mono:
            voc, acc = self.separate(np.ascontiguousarray(x.T), sample_rate)
            return voc.T, acc.T
        n, c = x.shape
        if c > MAX_CHANNELS or (c > 2 and c > n):
            raise VocalsepError(f"audio of shape {x.shape} would be {n} samples of {c} channels: separate() takes "
                                f"(samples, channels) with at most {MAX_CHANNELS} channels; for (channels, samples) "
                                f"audio pass channels_first=True")
        if not np.isfinite(x).all():
            raise VocalsepError("audio contains NaN or infinite samples")
        pieces = self._stream(audio.array_blocks(x, *self._block_sizes(sample_rate)), sample_rate)
        voc = np.concatenate([v for _, v in pieces])
        acc = x - voc
        return (voc[:, 0], acc[:, 0]) if mono else (voc, acc)

    def separate_file(self, path: str | Path, out_dir: str | Path, fmt: str | None = None, overwrite: bool = False,
                      progress: Callable[[float], None] | None = None, options: OutputOptions | None = None,
                      names: dict[str, str] | None = None) -> dict[str, Path]:
        """Separate one file into ``out_dir/vocals.<fmt>`` and ``out_dir/accompaniment.<fmt>``.

        ``fmt``: the output format (default wav), or say it in ``options`` (a ``fmt`` that differs from
        ``options.fmt`` is a VocalsepError, not ignored).
        ``options`` (:class:`~vocalsep.outspec.OutputOptions`; default: both stems in ``fmt``) choose the
        stems, their sample format (default: the input's) and what happens beyond full scale (default: float
        outputs keep it; integer ones and mp3 are scaled down, both stems by one gain, with a warning);
        ``names`` maps each stem to its file name in ``out_dir``.  Streams the file block by block.
        ``out_dir`` is claimed for the run (a second run that wants it meanwhile gets a VocalsepError); the
        outputs are written to temporary names and committed together only when the whole song is done (see
        :mod:`vocalsep.outputs`), so a failure leaves no partial file and, with ``overwrite``, the old outputs
        as they were.  Existing outputs raise :class:`~vocalsep.outputs.OutputsExist` (or, when another model
        or other options made them, :class:`~vocalsep.outputs.OutputsDiffer`), both VocalsepErrors, unless
        ``overwrite``.  ``progress`` is called with the seconds of audio done after each piece.  Returns
        {stem: path}.
        """
        path, out_dir = Path(path), Path(out_dir)
        if options is not None and fmt is not None and fmt != options.fmt:
            raise VocalsepError(f"separate_file: fmt={fmt!r} but options.fmt={options.fmt!r}: give the format once")
        opts = options or OutputOptions(fmt or "wav")
        names = names or opts.file_names()
        subtype, clip = opts.sample_format(audio.subtype(path))
        about = {"input": str(path), "model": self.model_name, "model_sha256": self.model_sha256(),
                 "vocalsep": __version__, "options": opts.describe(subtype, clip)}
        files = [names[s] for s in opts.stems]
        for f in files:  # not even with overwrite: the input would be gone, replaced by one of its stems
            if same_file(out_dir / f, path):
                raise VocalsepError(f"{path}: its output {out_dir / f} is the input file itself; choose another "
                                    "output folder (-o) or --filename")
        outputs.check(out_dir, files, overwrite, about)  # before any decoding
        sr, channels, blocks = self._open_blocks(path, opts)
        encoding = opts.encoding(path)  # the tags and cover, read once
        with outputs.claim(out_dir, files, overwrite, about) as claim:
            # rescale needs the peak before it can write: the first pass keeps the vocals as float32 (a
            # hidden file beside the outputs), so that a hot song is written again without the network
            w: dict[str, audiowrite.AtomicWriter] = {}
            record = None
            try:
                if clip == "rescale":
                    try:
                        record = atomic.temporary_beside(out_dir / "vocals.f32")
                    except OSError as e:
                        raise VocalsepError(f"{out_dir}: cannot write there ({e.strerror})") from None
                w = write_stems(path, self._stream_file(blocks, sr, path), sr, channels, out_dir, names,
                                opts, subtype, clip != "none", encoding, progress, record)
                gain = 1.0
                peak = max(x.peak for x in w.values())
                if clip == "rescale" and peak > 1:  # both stems scaled by one gain
                    for x in w.values():
                        x.discard()
                    gain = 1 / peak
                    w = write_stems(path, self._replay(path, opts, record), sr, channels, out_dir, names,
                                    opts, subtype, True, encoding, gain=gain)
                warn_clipping(path, w, clip, peak, gain, opts.fmt, subtype)
                claim.commit({names[s]: x.tmp for s, x in w.items()}, {**about, "gain": gain})
            except BaseException:
                for x in w.values():
                    x.discard()
                raise
            finally:
                if record is not None:
                    record.unlink(missing_ok=True)
        return {s: out_dir / names[s] for s in opts.stems}

    def model_sha256(self) -> str:
        """SHA-256 of the model file (hex), recorded with each output (computed once); an ensemble's
        members' sorted and joined by ``+`` (their mean does not depend on their order)."""
        if getattr(self, "_sha256", None) is None:
            import hashlib

            digests = []
            for p in self.model_paths:
                with open(p, "rb") as f:
                    digests.append(hashlib.file_digest(f, "sha256").hexdigest())
            self._sha256 = "+".join(sorted(digests))
        return self._sha256

    def _stream_file(self, blocks: Iterator[np.ndarray], sr: int, path: Path):
        """The (mixture, vocals) pieces of a file's overlapping ``blocks``, as a function of the I/O pool
        that decodes the next block meanwhile (what :func:`~vocalsep.stemwrite.write_stems` takes)."""
        return lambda io: self._stream(read_ahead(finite(blocks, path), io), sr)

    def _replay(self, path: Path, opts: OutputOptions, record: Path):
        """:meth:`_stream_file`'s pieces again without the network: the file's part decoded again in blocks
        that tile it, with the vocals the first pass wrote to ``record`` (raw float32, samples x channels)."""
        def pieces(io: ThreadPoolExecutor) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            _, _, blocks = open_part(path, opts, lambda rate: (self._block_sizes(rate)[0], 0), warn_short=False)
            differs = VocalsepError(f"{path}: decoded to a different length the second time; use --clip clamp "
                                    "or --float32")
            with open(record, "rb") as f:
                for x in read_ahead(blocks, io):
                    voc = np.fromfile(f, np.float32, x.size)
                    if voc.size != x.size:
                        raise differs
                    yield x, voc.reshape(x.shape)
                if f.read(1):
                    raise differs
        return pieces

    def _open_blocks(self, path: Path, opts: OutputOptions) -> tuple[int, int, Iterator[np.ndarray]]:
        """Sample rate, channels and an iterator of overlapping blocks of a file's part (``inputs.open_part``)."""
        return open_part(path, opts, self._block_sizes)


def _mid(x: np.ndarray) -> np.ndarray:
    """Mean of the channels, (samples, 1) float32, for (samples, channels) float32 (as a matrix product:
    numpy's mean over a short last axis is several times slower)."""
    return x @ np.full((x.shape[1], 1), 1 / x.shape[1], dtype=np.float32)


# -- folder batches: vocalsep/batch.py (their inputs: vocalsep/inputs.py) ----------------------------
from .batch import Outcome, run_batch  # noqa: E402,F401  (re-exported)
