#!/usr/bin/env python3
"""Time the official spectrogram front end in scipy against sound2scene-audio's.

scipy: np.tile + clip + scipy.signal.spectrogram(nperseg=512, noverlap=353) + log + standardize,
exactly as the official Sound2Scene code (file reading excluded). Ours: the example binary
`time_spectrogram` (decoding excluded), multi-threaded and with RAYON_NUM_THREADS=1.

Usage: python scripts/bench_spectrogram_scipy.py [WAV] [--runs N]
Needs numpy, scipy, soundfile; builds the example with `cargo build --release`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
from scipy import signal

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAV = ROOT.parent / "shared" / "samples" / "inference" / "cow.wav"


def official(samples, sr):
    resamples = np.tile(samples, 10)[:160000]
    resamples[resamples > 1.0] = 1.0
    resamples[resamples < -1.0] = -1.0
    _, _, spec = signal.spectrogram(resamples, sr, nperseg=512, noverlap=353)
    spec = np.log(spec + 1e-7)
    mean = np.mean(spec)
    std = np.std(spec)
    return (spec - mean) / (std + 1e-9)


def time_scipy(wav, runs):
    samples, sr = soundfile.read(str(wav))
    official(samples, sr)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        official(samples, sr)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times)


def time_ours(wav, runs, threads=None):
    env = dict(os.environ)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = str(threads)
    cmd = ["cargo", "run", "--quiet", "--release", "-p", "sound2scene-audio",
           "--example", "time_spectrogram", "--", str(wav), str(runs)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    median = minimum = None
    for line in out.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == "median_ms":
            median = float(fields[1])
        if "min_ms" in fields:
            minimum = float(fields[fields.index("min_ms") + 1])
    if median is not None and minimum is not None:
        return median, minimum
    sys.exit(f"no median_ms line in output of {' '.join(cmd)}:\n{out.stdout}\n{out.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wav", nargs="?", default=str(DEFAULT_WAV))
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    if not Path(args.wav).is_file():
        sys.exit(f"{args.wav} not found; pass a 16 kHz mono WAV file")

    scipy = time_scipy(args.wav, args.runs)
    ours = time_ours(args.wav, args.runs)
    ours_1t = time_ours(args.wav, args.runs, threads=1)
    print(f"clip: {args.wav}  runs: {args.runs}  cpus: {os.cpu_count()}")
    print(f"{'':47s} {'median':>9s} {'min':>9s}   speed-up (median, min)")
    rows = [
        ("scipy (tile+clip+spectrogram+log+standardize)", scipy),
        ("ours, rayon default threads", ours),
        ("ours, RAYON_NUM_THREADS=1", ours_1t),
    ]
    for name, (med, low) in rows:
        ratio = f"{scipy[0] / med:5.1f}x {scipy[1] / low:5.1f}x" if name.startswith("ours") else ""
        print(f"{name:47s} {med:7.3f}ms {low:7.3f}ms   {ratio}")


if __name__ == "__main__":
    main()
