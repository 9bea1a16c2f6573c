"""vocalsep.batches: data worker processes end with the process that started them (kill -9 of a training run
leaves no worker, nor multiprocessing's resource tracker, holding its stdout and stderr)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]

# a training run's data side: a stream of two worker processes, blocked on full queues (prefetch 1) once
# the first batches are taken; prints the workers' pids and the resource tracker's, then waits
RUN = """
import sys, time
from multiprocessing import resource_tracker
from vocalsep import data
from vocalsep.config import DataConfig, ModelConfig, SpectralConfig
spec = SpectralConfig(sample_rate=8192, n_fft=128, hop_length=32)
model = ModelConfig(freq_bins=64, frames=16, channels=(4, 8), dropout_layers=1)
sampler = data.PatchSampler(data.discover(sys.argv[1]), spec, model, DataConfig())
stream = data.BatchStream(sampler, 2, seed=0, workers=2, prefetch=1)
next(stream), next(stream)
print(*[p.pid for p in stream._procs], resource_tracker._resource_tracker._pid, flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (an orphan's zombie may wait for a reaper in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_end_when_the_training_process_is_killed(tmp_path):
    t = np.arange(8000) / 8000
    for i in range(2):
        (tmp_path / f"s{i}").mkdir()
        sf.write(tmp_path / f"s{i}" / "vocals.wav", 0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t), 8000)
        sf.write(tmp_path / f"s{i}" / "accompaniment.wav", 0.3 * np.sin(2 * np.pi * 110 * t), 8000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    pids: list[int] = []
    try:
        pids = [int(x) for x in run.stdout.readline().split()]
        assert len(pids) == 3, "the run did not start"
        time.sleep(0.5)  # the workers are now blocked putting into full queues
        assert all(alive(p) for p in pids)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.time() + 5
        while time.time() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
        assert [p for p in pids if alive(p)] == [], "processes outlived the killed run"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for p in pids:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        run.stdout.close()
