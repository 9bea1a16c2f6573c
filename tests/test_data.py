"""vocalsep.data: discovery per data set kind, bad songs skipped, the split, the example sampler and batching.

Synthetic stems are written to tmp_path; nothing imports TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vocalsep import data
from vocalsep.config import DataConfig, ModelConfig, SpectralConfig, load_config
from vocalsep.errors import VocalsepError

from .conftest import musdb_preview

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPEC = SpectralConfig(sample_rate=8192, n_fft=128, hop_length=32)
MODEL = ModelConfig(freq_bins=64, frames=16, channels=(4, 8), dropout_layers=1)
PATCH = (MODEL.frames - 1) * SPEC.hop_length


def tone(seconds: float, sr: int, freq: float, channels: int = 1, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(len(t))
    return np.stack([x * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def write_song(root: Path, name: str, stems: dict[str, np.ndarray], sr: int, ext: str = "wav") -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for stem, x in stems.items():
        sf.write(d / f"{stem}.{ext}", x, sr)
    return d


def stems_folder(root: Path, n: int = 4, sr: int = 16000, seconds: float = 1.0, channels: int = 1) -> Path:
    for i in range(n):
        write_song(root, f"singer_{i // 2 + 1}_{i % 2 + 1:02d}", {
            "vocals": tone(seconds, sr, 440 + 50 * i, channels),
            "accompaniment": tone(seconds, sr, 110, channels, noise=0.05, seed=i)}, sr)
    return root


# --------------------------------------------------------------------------------------------- discovery


def test_stems_folder_discovery_and_groups(tmp_path):
    root = stems_folder(tmp_path / "stems")
    write_song(root, "multi", {"vocals": tone(1, 22050, 300), "drums": tone(1, 22050, 60),
                               "bass": tone(1, 22050, 80), "mixture": tone(1, 22050, 1)}, 22050, "flac")
    assert data.detect_kind(root) == "stems"
    songs = {s.name: s for s in data.discover(root)}
    assert len(songs) == 5
    s = songs["singer_1_02"]
    assert s.group == "singer_1" and s.sample_rate == 16000 and s.channels == 1 and s.length == 16000
    multi = songs["multi"]
    # every stem but vocals* (and mix*) goes into the accompaniment
    assert [Path(p).name for p in multi.accompaniment] == ["bass.flac", "drums.flac"]
    assert multi.group == "multi"
    assert data.stems_group("amy_10_03") == "amy_10" and data.stems_group("track_01") == "track_01"


def test_ccmixter_and_musdb_hq_layouts(tmp_path):
    root = tmp_path / "ccm"
    for i in range(2):
        write_song(root, f"song{i}", {"mix": tone(1, 44100, 1, 2), "source-01": tone(1, 44100, 100, 2),
                                      "source-02": tone(1, 44100, 500, 2)}, 44100)
    assert data.detect_kind(root) == "ccmixter"
    songs = data.discover(root)
    assert [s.name for s in songs] == ["song0", "song1"]
    assert songs[0].vocals[0].endswith("source-02.wav") and songs[0].accompaniment[0].endswith("source-01.wav")
    assert songs[0].channels == 2 and songs[0].kind == "ccmixter"

    hq = tmp_path / "hq"
    write_song(hq / "test", "A - B", {s: tone(1, 44100, 200 + i, 2) for i, s in
                                      enumerate(("mixture", "drums", "bass", "other", "vocals"))}, 44100)
    assert data.detect_kind(hq) == "musdb-hq"
    (s,) = data.discover(hq)
    assert s.name == "A - B" and len(s.accompaniment) == 3 and s.vocals[0].endswith("vocals.wav")


def test_bad_songs_are_skipped_with_a_warning(tmp_path, caplog, monkeypatch):
    # the CLI stops "vocalsep" records from propagating (it prints them itself); caplog listens at the root
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)
    root = stems_folder(tmp_path / "stems", n=2)
    write_song(root, "no_vocals", {"accompaniment": tone(1, 16000, 100)}, 16000)
    bad = write_song(root, "corrupt", {"accompaniment": tone(1, 16000, 100)}, 16000)
    (bad / "vocals.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    mixed = write_song(root, "rates", {"vocals": tone(1, 16000, 300)}, 16000)
    sf.write(mixed / "accompaniment.wav", tone(1, 22050, 100), 22050)
    write_song(root, "lengths", {"vocals": tone(1, 16000, 300), "accompaniment": tone(0.5, 16000, 100)}, 16000)
    with caplog.at_level(logging.WARNING, logger="vocalsep.data"):
        songs = data.discover(root)
    assert sorted(s.name for s in songs) == ["singer_1_01", "singer_1_02"]
    text = caplog.text
    assert "no_vocals" in text and "missing vocals" in text
    assert str(bad / "vocals.wav") in text
    assert str(mixed / "accompaniment.wav") in text and "sample rate" in text
    assert "lengths" in text and "length" in text
    # a ccmixter song without its voice stem
    ccm = tmp_path / "ccm"
    write_song(ccm, "ok", {"source-01": tone(1, 8000, 100), "source-02": tone(1, 8000, 300)}, 8000)
    write_song(ccm, "half", {"source-01": tone(1, 8000, 100), "mix": tone(1, 8000, 100)}, 8000)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vocalsep.data"):
        assert [s.name for s in data.discover(ccm, "ccmixter")] == ["ok"]
    assert "source-02.wav" in caplog.text


def test_no_songs_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VocalsepError, match="no usable songs"):
        data.discover(tmp_path / "empty")
    with pytest.raises(VocalsepError, match="does not exist"):
        data.discover(tmp_path / "missing")
    write_song(tmp_path / "bad", "x", {"accompaniment": tone(1, 8000, 100)}, 8000)
    with pytest.raises(VocalsepError, match="no usable songs"):
        data.discover_all(DataConfig(datasets=[str(tmp_path / "bad")]))
    with pytest.raises(VocalsepError, match="no training data"):
        data.discover_all(DataConfig())


def test_split_keeps_songs_together(tmp_path):
    songs = data.discover(stems_folder(tmp_path / "s", n=8))
    train, val = data.split_songs(songs, [], 0.25)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert len({s.group for s in val}) == 1 and len(train) + len(val) == 8
    assert data.split_songs(songs, [], 0.25) == (train, val)  # the same in every run
    train, val = data.split_songs(songs, ["singer_2"], 0.25)
    assert sorted(s.name for s in val) == ["singer_2_01", "singer_2_02"]
    train, val = data.split_songs(songs, ["singer_3_01"], 0.0)  # a clip names its whole song
    assert sorted(s.name for s in val) == ["singer_3_01", "singer_3_02"]
    assert data.split_songs(songs, [], 0.0)[1] == []
    # a prefix ends where a word does: x_1 is not x_10
    more = data.discover(stems_folder(tmp_path / "t", n=2)) + [
        data.Song("x_1_01", "x_1", (), (), 8000, 1, 10), data.Song("x_10_01", "x_10", (), (), 8000, 1, 10)]
    assert [s.name for s in data.split_songs(more, ["x_1"])[1]] == ["x_1_01"]
    assert [s.name for s in data.split_songs(more, ["x"])[1]] == ["x_1_01", "x_10_01"]
    assert [s.name for s in data.split_songs(more, ["singer"])[1]] == ["singer_1_01", "singer_1_02"]
    with pytest.raises(VocalsepError, match="nope"):
        data.split_songs(songs, ["nope"], 0.1)


# ---------------------------------------------------------------------------------------------- examples


def test_examples_shapes_normalisation_and_rate(tmp_path):
    root = tmp_path / "s"
    # vocals: a 1 kHz tone at 44.1 kHz stereo; accompaniment: 250 Hz
    write_song(root, "a", {"vocals": tone(2, 44100, 1000, 2), "accompaniment": tone(2, 44100, 250, 2)}, 44100)
    songs = data.discover(root)
    cfg = DataConfig(gain_db=0, remix_probability=0)
    sampler = data.PatchSampler(songs, SPEC, MODEL, cfg)
    assert sampler.patch_len == PATCH
    v, a = sampler.waveforms(np.random.default_rng(0))
    assert v.shape == a.shape == (PATCH,) and v.dtype == np.float32
    mix, voc, acc = sampler.example(np.random.default_rng(0))
    for x in (mix, voc, acc):
        assert x.shape == (MODEL.freq_bins, MODEL.frames) and x.dtype == np.float32
    assert mix.max() == pytest.approx(1.0, abs=1e-5)
    bin_hz = SPEC.sample_rate / SPEC.n_fft
    assert abs(voc.mean(axis=1).argmax() - 1000 / bin_hz) <= 1
    assert abs(acc.mean(axis=1).argmax() - 250 / bin_hz) <= 1
    # the mixture is the magnitude of the sum
    b = sampler.batch(np.random.default_rng(3), 5)
    assert all(x.shape == (5, MODEL.freq_bins, MODEL.frames, 1) for x in b)
    assert np.allclose(b[0].max(axis=(1, 2, 3)), 1.0, atol=1e-5)
    assert np.all(b[0] <= b[1] + b[2] + 1e-5)


def test_augmentations(tmp_path):
    root = tmp_path / "s"
    write_song(root, "a", {"vocals": tone(2, 16000, 1000), "accompaniment": tone(2, 16000, 250)}, 16000)
    write_song(root, "b", {"vocals": tone(2, 16000, 2000), "accompaniment": tone(2, 16000, 125)}, 16000)
    songs = data.discover(root)
    # remix: vocals of one song over the accompaniment of the other
    sampler = data.PatchSampler(songs, SPEC, MODEL, DataConfig(gain_db=0, remix_probability=1.0))
    pairs = set()
    for i in range(30):
        _, voc, acc = sampler.example(np.random.default_rng(i))
        pairs.add((int(voc.mean(1).argmax()), int(acc.mean(1).argmax())))
    assert len(pairs) == 4  # all four vocals/accompaniment combinations occur
    # remix across data sets: with a second data set, a remixed example never pairs songs of one data set
    other = tmp_path / "t"
    write_song(other, "c", {"vocals": tone(2, 16000, 3000), "accompaniment": tone(2, 16000, 500)}, 16000)
    songs2 = songs + data.discover(other)
    assert {s.dataset for s in songs2} == {str(root), str(other)}
    across = data.PatchSampler(songs2, SPEC, MODEL, DataConfig(gain_db=0, remix_probability=1.0, remix_across=True))
    bin_hz = SPEC.sample_rate / SPEC.n_fft
    first = {round(f / bin_hz) for f in (1000, 2000)}, {round(f / bin_hz) for f in (250, 125)}  # data set s
    seen = set()
    for i in range(30):
        _, voc, acc = across.example(np.random.default_rng(i))
        v, a = int(voc.mean(1).argmax()), int(acc.mean(1).argmax())
        assert (v in first[0]) != (a in first[1])  # vocals of one data set, accompaniment of the other
        seen.add((v, a))
    assert len(seen) == 4  # both directions: s's voices over t's accompaniment (2) and t's over s's (2)
    # silent vocals
    sampler = data.PatchSampler(songs, SPEC, MODEL, DataConfig(silent_vocals_probability=1.0, remix_probability=0))
    _, voc, acc = sampler.example(np.random.default_rng(0))
    assert voc.max() == 0 and acc.max() > 0.5
    # gain: the vocals/accompaniment ratio varies within +-gain_db per source
    sampler = data.PatchSampler(songs[:1], SPEC, MODEL, DataConfig(gain_db=6, remix_probability=0))
    ratios = [np.sqrt(np.sum(w[0] ** 2) / np.sum(w[1] ** 2)) for w in
              (sampler.waveforms(np.random.default_rng(i)) for i in range(20))]
    assert 1.2 < max(ratios) / min(ratios) < 10 ** (24 / 20)


def test_dataset_weights_set_each_data_sets_share_of_the_draws(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)  # as in the test above
    s_root, t_root = tmp_path / "s", tmp_path / "t"
    for i in range(3):
        write_song(s_root, f"s{i}", {"vocals": tone(1, 8192, 500), "accompaniment": tone(1, 8192, 100)}, 8192)
    write_song(t_root, "t0", {"vocals": tone(1, 8192, 500), "accompaniment": tone(1, 8192, 100)}, 8192)
    songs = data.discover(s_root) + data.discover(t_root)

    def shares(cfg, n=4000, other_than=None, dead=()):
        sampler = data.PatchSampler(songs, SPEC, MODEL, cfg)
        for name in dead:
            sampler.dead[[s.name for s in songs].index(name)] = 1
        rng = np.random.default_rng(0)
        names = [sampler._pick(rng, other_than)[0].name for _ in range(n)]
        return {name: names.count(name) / n for name in sorted(set(names))}

    # no weights: every song equally likely, so t (1 song of 4) gets a quarter
    plain = shares(DataConfig(datasets=[str(s_root), str(t_root)]))
    assert abs(plain["t0"] - 0.25) < 0.03 and all(abs(plain[f"s{i}"] - 0.25) < 0.03 for i in range(3))
    # weights 1 : 3: t gets three quarters, s's quarter split evenly among its three songs
    weighted = DataConfig(datasets=[str(s_root), str(t_root)], dataset_weights=[1, 3])
    got = shares(weighted)
    assert abs(got["t0"] - 0.75) < 0.03 and all(abs(got[f"s{i}"] - 0.25 / 3) < 0.02 for i in range(3))
    # a song left out passes its draws to its own data set's other songs, not to the other data set
    got = shares(weighted, dead=("s0",))
    assert "s0" not in got and abs(got["t0"] - 0.75) < 0.03 and abs(got["s1"] - 0.125) < 0.025
    # remixing across data sets still takes the other set, whatever its weight
    assert shares(DataConfig(datasets=[str(s_root), str(t_root)], dataset_weights=[3, 1]), 50,
                  other_than=str(t_root)).keys() == {"s0", "s1", "s2"}
    # a weighted data set without a training song (all held out): said, and its share goes to the others
    with caplog.at_level(logging.WARNING, logger="vocalsep.data"):
        only_s = data.PatchSampler(songs[:3], SPEC, MODEL, weighted)
    assert f"{t_root}: no training song" in caplog.text
    assert {only_s._pick(np.random.default_rng(i))[0].name for i in range(30)} == {"s0", "s1", "s2"}
    # a song of a data set the weights do not name
    with pytest.raises(VocalsepError, match="not one of data.datasets"):
        data.PatchSampler(songs, SPEC, MODEL, DataConfig(datasets=[str(s_root)], dataset_weights=[1]))


@pytest.mark.parametrize("weights, problem", [([1.0], "has 1 value for 2 data sets"),
                                              ([1.0, 0.0], "must be > 0"), ([1.0, float("nan")], "must be > 0"),
                                              ([float("inf"), 1.0], "must be > 0 and finite")])
def test_dataset_weights_are_checked_in_the_config(tmp_path, weights, problem):
    with pytest.raises(VocalsepError, match=problem):
        DataConfig(datasets=["a", "b"], dataset_weights=weights)
    cfg = tmp_path / "c.yaml"
    yaml_numbers = ", ".join(".nan" if w != w else ".inf" if w == float("inf") else str(w) for w in weights)
    cfg.write_text(f"data:\n  datasets: [a, b]\n  dataset_weights: [{yaml_numbers}]\n")
    with pytest.raises(VocalsepError, match=f"^{cfg}: .*{problem}"):
        load_config(cfg)


def test_circular_shift_pairs_a_songs_voice_with_another_point_of_its_own_band(tmp_path):
    # song a: both stems step through 8 tones (0.25 s each, the same tone index at the same time in both);
    # song b: constant tones far above a's, to catch an accompaniment taken from another song
    sr, seg = 8192, 2048
    steps = np.concatenate([tone(0.25, sr, 512 + 256 * k)[:, 0] for k in range(8)])[:, None]
    root = tmp_path / "s"
    write_song(root, "a", {"vocals": steps, "accompaniment": steps * 0.5}, sr)
    write_song(root, "b", {"vocals": tone(2, sr, 3584), "accompaniment": tone(2, sr, 3840)}, sr)
    songs = [s for s in data.discover(root) if s.name == "a"] + [s for s in data.discover(root) if s.name == "b"]
    bin_hz = SPEC.sample_rate / SPEC.n_fft

    def tones(cfg):
        sampler = data.PatchSampler(songs, SPEC, MODEL, cfg)
        out = []
        for i in range(60):
            _, voc, acc = sampler.example(np.random.default_rng(i))
            out.append((voc.mean(1).argmax() * bin_hz, acc.mean(1).argmax() * bin_hz))
        return np.array(out)

    plain = tones(DataConfig(gain_db=0, remix_probability=0, channel_swap=False))
    shifted = tones(DataConfig(gain_db=0, remix_probability=0, channel_swap=False, circular_shift=1.0))
    a_plain, a_shift = plain[plain[:, 0] < 3000], shifted[shifted[:, 0] < 3000]  # examples of song a
    assert len(a_plain) > 15 and len(a_shift) > 15
    assert np.all(np.abs(a_plain[:, 0] - a_plain[:, 1]) < 2 * bin_hz)  # without it, voice and band in step
    assert np.all(a_shift[:, 1] < 3000)  # the accompaniment is a's own (b's tones are above 3.5 kHz)
    apart = np.abs(a_shift[:, 0] - a_shift[:, 1]) > 128  # another tone index: another point of the song
    assert apart.mean() > 0.6, apart.mean()
    assert np.all(np.abs(shifted[shifted[:, 0] > 3000][:, 1] - 3840) < 2 * bin_hz)  # b keeps b's band


def test_batches_are_seeded_and_independent_of_workers(tmp_path):
    songs = data.discover(stems_folder(tmp_path / "s", n=4, channels=2))
    sampler = data.PatchSampler(songs, SPEC, MODEL, DataConfig())
    a = list(data.iter_batches(sampler, 3, seed=7, count=3))
    b = list(data.iter_batches(sampler, 3, seed=7, count=3))
    c = list(data.iter_batches(sampler, 3, seed=8, count=1))
    assert all(np.array_equal(x, y) for p, q in zip(a, b) for x, y in zip(p, q))
    assert not np.array_equal(a[0][0], c[0][0])
    with data.BatchStream(sampler, 3, seed=7, workers=0) as s0:
        t = [next(s0) for _ in range(3)]
    with data.BatchStream(sampler, 3, seed=7, workers=2, start=1) as s2:
        u = [next(s2) for _ in range(2)]
    assert all(np.array_equal(x, y) for p, q in zip(a, t) for x, y in zip(p, q))
    # a stream restarted at batch 1 (a resumed run), made by two processes, continues the same stream
    assert all(np.array_equal(x, y) for p, q in zip(a[1:], u) for x, y in zip(p, q))


def test_validation_patches_are_fixed(tmp_path):
    songs = data.discover(stems_folder(tmp_path / "s", n=2, seconds=2.0))
    m1, v1, a1 = data.validation_patches(songs, SPEC, MODEL, 10)
    m2, v2, a2 = data.validation_patches(songs, SPEC, MODEL, 10)
    assert m1.shape == v1.shape == a1.shape == (10, MODEL.freq_bins, MODEL.frames, 1)
    assert np.array_equal(m1, m2) and np.array_equal(v1, v2) and np.array_equal(a1, a2)
    assert np.allclose(m1.max(axis=(1, 2, 3)), 1.0, atol=1e-5)
    # the two sources' STFTs add up to the mixture's: both triangle inequalities hold in every bin
    assert np.all(v1 + a1 >= m1 - 1e-5) and np.all(np.abs(v1 - a1) <= m1 + 1e-5)
    # each target is its own stem's: the vocals' tones (440 to 490 Hz), the accompaniment's 110 Hz
    bin_hz = SPEC.sample_rate / SPEC.n_fft
    assert np.all(np.abs(v1.mean(axis=(2, 3)).argmax(axis=1) * bin_hz - 465) < 2 * bin_hz)
    assert np.all(np.abs(a1.mean(axis=(2, 3)).argmax(axis=1) * bin_hz - 110) < bin_hz)
    assert data.validation_patches([], SPEC, MODEL, 10)[0].shape == (0, MODEL.freq_bins, MODEL.frames, 1)


def test_validation_audio(tmp_path):
    root = tmp_path / "s"
    write_song(root, "a", {"vocals": tone(3, 16000, 1000, 2), "accompaniment": tone(3, 16000, 250, 2)}, 16000)
    write_song(root, "b", {"vocals": np.zeros((16000, 1), np.float32), "accompaniment": tone(1, 16000, 250)}, 16000)
    songs = data.discover(root)
    out = data.validation_audio(songs, 5, max_seconds=2.0)
    assert [n for n, _, _, _ in out] == ["a"]  # b has no vocals
    name, mix, voc, sr = out[0]
    assert sr == 16000 and len(mix) == len(voc) == 2 * sr  # the song's own rate: separation resamples
    assert mix.dtype == np.float32 and np.abs(mix - voc).max() > 0.1


def test_memory_is_not_the_data_set(tmp_path):
    """Songs are records of paths: discovering 100 songs loads no audio."""
    songs = data.discover(stems_folder(tmp_path / "s", n=100, seconds=0.2))
    assert len(songs) == 100 and all(isinstance(p, str) for s in songs for p in s.vocals)


def test_musdb_preview_through_the_decode_cache(tmp_path):
    root = musdb_preview(tmp_path, 2)  # two tracks keep the test fast
    cache = tmp_path / "cache"
    assert data.detect_kind(root) == "musdb"
    songs = data.discover(root, cache_dir=cache)
    assert len(songs) == 2 and songs[0].sample_rate == 44100 and songs[0].channels == 2
    assert all(Path(p).is_relative_to(cache) for s in songs for p in s.vocals + s.accompaniment)
    assert not list(cache.rglob("*.part"))
    # the cache holds vocals and drums + bass + other of the STEMS file
    import musdb

    track = musdb.DB(root=str(root), subsets="train")[0]
    stems = track.stems
    v, _ = sf.read(songs[0].vocals[0], dtype="float32")
    a, _ = sf.read(songs[0].accompaniment[0], dtype="float32")
    assert np.allclose(v, stems[4], atol=1e-6) and np.allclose(a, stems[1] + stems[2] + stems[3], atol=1e-5)
    mtime = Path(songs[0].vocals[0]).stat().st_mtime_ns
    assert data.discover(root, cache_dir=cache)[0] == songs[0]  # second time: from the cache
    assert Path(songs[0].vocals[0]).stat().st_mtime_ns == mtime
    mix, voc, acc = data.PatchSampler(songs, SPEC, MODEL, DataConfig()).example(np.random.default_rng(0))
    assert mix.shape == (MODEL.freq_bins, MODEL.frames)


# ------------------------------------------------------------------------------- faults while training


def cut_short(path: Path, keep: int = 200) -> None:
    """Keep the header and the first ``keep`` bytes of a wav file's data: a file cut short after discovery."""
    with sf.SoundFile(path) as f:
        header = path.stat().st_size - f.frames * f.channels * 2  # PCM_16
    with open(path, "r+b") as f:
        f.truncate(header + keep)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_song_cut_short_after_discovery_is_left_out(tmp_path, caplog, monkeypatch, workers):
    monkeypatch.setattr(logging.getLogger("vocalsep"), "propagate", True)
    songs = data.discover(stems_folder(tmp_path / "s", n=3))
    bad = Path(songs[0].vocals[0])
    cut_short(bad)
    sampler = data.PatchSampler(songs, SPEC, MODEL, DataConfig(remix_probability=0))
    with caplog.at_level(logging.WARNING, logger="vocalsep.data"):
        with data.BatchStream(sampler, 4, seed=1, workers=workers) as stream:
            batches = [next(stream) for _ in range(6)]  # 24 examples: the bad song is met
            assert list(stream.dead) == [1, 0, 0]
    assert all(b[0].shape == (4, MODEL.freq_bins, MODEL.frames, 1) and np.all(np.isfinite(b[0])) for b in batches)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(bad) in warnings[0] and "'singer_1_01' left out" in warnings[0]
    assert "2 of 3 songs left" in warnings[0]
    # once left out, never drawn again: with the stream's flags, only the good songs are read from now on
    sampler.dead = bytearray(stream.dead)
    read = []
    real = data.audio.read_excerpt
    monkeypatch.setattr(data.audio, "read_excerpt", lambda p, *a, **k: read.append(p) or real(p, *a, **k))
    sampler.batch(np.random.default_rng(0), 8)
    assert read and str(bad) not in read


@pytest.mark.parametrize("workers", [0, 1])
def test_no_song_left_is_one_error(tmp_path, workers):
    songs = data.discover(stems_folder(tmp_path / "s", n=2))
    for s in songs:
        cut_short(Path(s.accompaniment[0]), keep=0)
    sampler = data.PatchSampler(songs, SPEC, MODEL, DataConfig(remix_probability=0))
    with data.BatchStream(sampler, 2, seed=0, workers=workers) as stream:
        with pytest.raises(VocalsepError, match=r"^no training song is left: every one failed to read \(the last: .*"
                                                r"accompaniment\.wav"):
            next(stream)


def test_a_short_read_is_not_padded_with_silence(tmp_path):
    """A stem cut short reads as an error, not as silence, where its header promised samples."""
    root = stems_folder(tmp_path / "s", n=1)
    (song,) = data.discover(root)
    path = Path(song.vocals[0])
    cut_short(path, keep=2000)  # 1000 samples left of 16000
    x, _ = data.audio.read_excerpt(path, 0, 500, length=song.length)  # before the cut: fine
    assert np.abs(x).max() > 0.1
    with pytest.raises(VocalsepError, match=str(path)):
        data.audio.read_excerpt(path, 800, 500, length=song.length)
    with pytest.raises(VocalsepError, match=str(path)):
        data.audio.read_excerpt(path, 5000, 500, length=song.length)
    x, _ = data.audio.read_excerpt(path, 800, 500)  # without the length: padded, as before
    assert x.shape == (500, 1)
