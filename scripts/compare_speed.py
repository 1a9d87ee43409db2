#!/usr/bin/env python3
"""Time our networks and the PyTorch references side by side on this machine and print the
ratios (ours / PyTorch): f_A on [1,1,257,1004] and G (G_ch 96, 128x128) at batch 1 and 8.

Ours: `cargo run --release --example time_models` (Burn flex). PyTorch: the two reference
scripts beside this one, with the same thread count. Run from the repository root:

    python scripts/compare_speed.py [--threads 2] [--runs 5]
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, env=None):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    import os

    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours = {}
    out = run(["cargo", "run", "--release", "-q", "--example", "time_models", "--", str(args.runs)], env)
    for line in out.splitlines():
        name, ms = line.split()
        ours[name] = float(ms)

    theirs = {}
    enc = run([sys.executable, "scripts/bench_encoders_torch.py", "--threads", str(args.threads), "--runs", str(args.runs)])
    theirs["audio_encoder_b1"] = float(re.search(r"median ([0-9.]+) ms", enc).group(1))
    gen = run([sys.executable, "scripts/bench_generator_torch.py", "--threads", str(args.threads), "--runs", str(args.runs)])
    for batch, ms in re.findall(r"batch (\d+)\D.*?median ([0-9.]+) ms", gen):
        theirs[f"generator_b{batch}"] = float(ms)

    print(f"{'network':<20}{'ours ms':>10}{'torch ms':>10}{'ours/torch':>12}")
    for name, ms in ours.items():
        ref = theirs.get(name)
        ratio = f"{ms / ref:.2f}" if ref else "n/a"
        print(f"{name:<20}{ms:>10.1f}{(ref or float('nan')):>10.1f}{ratio:>12}")


if __name__ == "__main__":
    main()
