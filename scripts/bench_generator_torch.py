#!/usr/bin/env python3
"""Time the IC-GAN generator G in PyTorch on the CPU or a CUDA GPU, for comparison with
`cargo run --release --example time_models` (Burn).

G is built from the official BigGAN-PyTorch definitions (BigGAN.py `Generator`), which are
not part of this repository: the script extracts them from the fetched Sound2Scene mirror
into a temporary folder and imports them from there (or imports them from `--official DIR`, a
folder that already holds `BigGAN_PyTorch/`, on a machine without the mirror). The configuration is the released
ImageNet IC-GAN at 128x128 (G_ch 96, dim_z 120 hierarchical, attention at 64, instance
conditioning through a 2048 -> 512 SN linear layer), with random weights, in eval mode. On
CUDA each timing ends with a device synchronize.

Usage: python scripts/bench_generator_torch.py [--threads 2] [--runs 10] [--warmup 2]
           [--batch 1 8] [--device cpu|cuda]
           [--mirror /work/.mirror/postech-ami+Sound2Scene/repo | --official DIR]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import torch

OFFICIAL_FILES = [
    "BigGAN_PyTorch/BigGAN.py",
    "BigGAN_PyTorch/layers.py",
    "BigGAN_PyTorch/diffaugment_utils.py",
    "BigGAN_PyTorch/sync_batchnorm",
]


def fetch_official(mirror, dest):
    """Extract BigGAN-PyTorch from the bare git mirror into `dest` (git archive | tar)."""
    archive = subprocess.run(
        ["git", "--git-dir", mirror, "archive", "HEAD", *OFFICIAL_FILES],
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, check=True)
    sys.path.insert(0, dest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--mirror", default="/work/.mirror/postech-ami+Sound2Scene/repo")
    parser.add_argument("--official", help="folder holding BigGAN_PyTorch/ (skips the mirror)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    with tempfile.TemporaryDirectory(prefix="s2s_ref_") as dest:
        if args.official:
            sys.path.insert(0, args.official)
        else:
            fetch_official(args.mirror, dest)
        import BigGAN_PyTorch.BigGAN as biggan

        generator = biggan.Generator(
            G_ch=96,
            dim_z=120,
            resolution=128,
            G_attn="64",
            hier=True,
            shared_dim=128,
            shared_dim_feat=512,
            G_shared=True,
            G_shared_feat=True,
            class_cond=False,
            instance_cond=True,
            SN_eps=1e-6,
            no_optim=True,
        ).eval().to(device)

        with torch.no_grad():
            for batch in args.batch:
                z = torch.randn(batch, generator.dim_z, device=device)
                feat = torch.rand(batch, 2048, device=device)
                for _ in range(args.warmup):
                    generator(z, None, feat)
                sync()
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    generator(z, None, feat).cpu()
                    sync()
                    times.append(time.perf_counter() - start)
                print(
                    f"G ch96 128x128 batch {batch}: median {1e3 * statistics.median(times):.1f} ms, "
                    f"min {1e3 * min(times):.1f} ms over {args.runs} runs "
                    f"({args.device}, {args.threads} threads, torch {torch.__version__})"
                )


if __name__ == "__main__":
    main()
