#!/usr/bin/env python3
"""Time our networks and the PyTorch references side by side on this machine and print the
ratios (ours / PyTorch): f_A on [batch,1,257,1004] and G (G_ch 96, 128x128).

Ours: `cargo run --release --example time_models` (or a prebuilt binary of it, `--ours-bin`)
on `--device` (flex on the CPU, wgpu on a GPU). PyTorch: the two reference scripts beside this
one on `--torch-device`, with the same thread count. Run from the repository root:

    python scripts/compare_speed.py [--threads 2] [--runs 5]
    python scripts/compare_speed.py --device wgpu --torch-device cuda \
        --ours-bin PATH/time_models --official DIR --audio-batch 1 16 --generator-batch 1 8 64
"""

import argparse
import os
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
    ap.add_argument("--device", default="flex", help="our backend: flex, wgpu or cuda")
    ap.add_argument("--torch-device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--ours-bin", help="prebuilt time_models binary (default: cargo run)")
    ap.add_argument("--official", help="folder holding BigGAN_PyTorch/ for the G reference")
    ap.add_argument("--audio-batch", default=["1"], nargs="+")
    ap.add_argument("--generator-batch", default=["1", "8"], nargs="+")
    args = ap.parse_args()

    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours_cmd = (
        [args.ours_bin]
        if args.ours_bin
        else ["cargo", "run", "--release", "-q", "--example", "time_models", "--"]
    )
    ours_cmd += ["--runs", str(args.runs), "--device", args.device]
    ours_cmd += ["--audio-batch", *args.audio_batch, "--generator-batch", *args.generator_batch]
    ours = {}
    for line in run(ours_cmd, env).splitlines():
        name, ms = line.split()
        ours[name] = float(ms)

    common = ["--threads", str(args.threads), "--runs", str(args.runs)]
    common += ["--device", args.torch_device]
    theirs = {}
    enc = run([sys.executable, "scripts/bench_encoders_torch.py", *common,
               "--batch", *args.audio_batch])
    for batch, ms in re.findall(r"batch (\d+)\D.*?median ([0-9.]+) ms", enc):
        theirs[f"audio_encoder_b{batch}"] = float(ms)
    official = ["--official", args.official] if args.official else []
    gen = run([sys.executable, "scripts/bench_generator_torch.py", *common, *official,
               "--batch", *args.generator_batch])
    for batch, ms in re.findall(r"batch (\d+)\D.*?median ([0-9.]+) ms", gen):
        theirs[f"generator_b{batch}"] = float(ms)

    print(f"ours: {args.device}; PyTorch: {args.torch_device}, {args.threads} threads")
    print(f"{'network':<20}{'ours ms':>10}{'torch ms':>10}{'ours/torch':>12}")
    for name, ms in ours.items():
        ref = theirs.get(name)
        ratio = f"{ms / ref:.2f}" if ref else "n/a"
        print(f"{name:<20}{ms:>10.1f}{(ref or float('nan')):>10.1f}{ratio:>12}")


if __name__ == "__main__":
    main()
