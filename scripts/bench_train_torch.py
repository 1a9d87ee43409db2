#!/usr/bin/env python3
"""Time one training step in PyTorch on the CPU, for comparison with our training loops
(`scripts/compare_speed.py --train` runs both and prints the ratios).

- `align`: the audio encoder (ResNet-18 of `bench_encoders_torch.py`, base width `--width`) on
  random `[batch, 1, 257, 1004]` spectrograms, the symmetric InfoNCE loss over L2 distances of
  L2-normalized features (as `sound2scene-train/src/loss.rs`), backward and Adam, BatchNorm
  in training mode. Our side: `cargo run --release -p sound2scene-train --example
  align_throughput -- WIDTH BATCH STEPS`.
- `gan`: one IC-GAN step as BigGAN-PyTorch trains it (the flow of `BigGAN.G_D`, hinge loss,
  the G and D embedded Adam optimizers): a D step on `[fake, real]` concatenated, then a G
  step, with the
  configuration of `scripts/tiny_gan.json` (32x32, G_ch = D_ch = 16, no attention, 128-d
  instance features; the official G's first layer takes 2048-d features, so G gets those, a
  difference of under 0.1 % of the step's arithmetic). G and D are the official definitions, imported from the fetched
  Sound2Scene mirror as in `bench_generator_torch.py`. Our side: `cargo run --release -p
  sound2scene-train --example gan_throughput`.

Prints one line per step kind: `align_step MS` and `gan_step MS` (the median over `--runs`
steps after `--warmup`).

Usage: python scripts/bench_train_torch.py [--threads 2] [--runs 5] [--warmup 2]
           [--width 8] [--batch 64] [--gan-batch 32] [--steps align gan]
           [--mirror /work/.mirror/postech-ami+Sound2Scene/repo | --official DIR]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encoders_torch import AudioEncoder  # noqa: E402
from bench_generator_torch import fetch_official  # noqa: E402


def info_nce_l2(audio, image):
    audio = F.normalize(audio, dim=1, eps=1e-12)
    image = F.normalize(image, dim=1, eps=1e-12)
    logits = -torch.cdist(image, audio)
    target = torch.arange(audio.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def median_ms(step, runs, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def align_step_ms(args):
    net = AudioEncoder(width=args.width).train()
    optim = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, 1, 257, 1004)
    target = torch.randn(args.batch, 2048)

    def step():
        optim.zero_grad(set_to_none=True)
        feature, _ = net(x)
        info_nce_l2(feature, target).backward()
        optim.step()

    return median_ms(step, args.runs, args.warmup)


def gan_step_ms(args, biggan):
    common = dict(resolution=32, SN_eps=1e-6, class_cond=False, instance_cond=True)
    G = biggan.Generator(G_ch=16, dim_z=120, bottom_width=4, G_attn="0", hier=True,
                         shared_dim_feat=512, G_shared=True, G_shared_feat=True,
                         G_lr=4e-4, G_B1=0.0, G_B2=0.999, adam_eps=1e-6, **common)
    D = biggan.Discriminator(D_ch=16, D_wide=True, D_attn="0", D_lr=2e-4, D_B1=0.0,
                             D_B2=0.999, adam_eps=1e-6, instance_sz=128, **common)
    G.train()
    D.train()
    b = args.gan_batch
    real = torch.rand(b, 3, 32, 32) * 2 - 1
    feats_g = torch.randn(b, 2048)
    feats = torch.randn(b, 128)

    def toggle(net, on):
        for p in net.parameters():
            p.requires_grad = on

    def step():
        toggle(D, True)
        toggle(G, False)
        D.optim.zero_grad()
        z = torch.randn(b, 120)
        with torch.no_grad():
            fake = G(z, None, feats_g)
        d_out = D(torch.cat([fake, real]), None, torch.cat([feats, feats]))
        d_fake, d_real = torch.split(d_out, [b, b])
        loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        loss.backward()
        D.optim.step()
        toggle(D, False)
        toggle(G, True)
        G.optim.zero_grad()
        z = torch.randn(b, 120)
        d_fake = D(G(z, None, feats_g), None, feats)
        (-d_fake.mean()).backward()
        G.optim.step()

    return median_ms(step, args.runs, args.warmup)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--gan-batch", type=int, default=32)
    ap.add_argument("--steps", nargs="+", default=["align", "gan"], choices=["align", "gan"])
    ap.add_argument("--mirror", default="/work/.mirror/postech-ami+Sound2Scene/repo")
    ap.add_argument("--official", help="folder holding BigGAN_PyTorch/ (skips the mirror)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if "align" in args.steps:
        print(f"align_step {align_step_ms(args):.1f}")
    if "gan" in args.steps:
        with tempfile.TemporaryDirectory(prefix="s2s_ref_") as dest:
            if args.official:
                sys.path.insert(0, args.official)
            else:
                fetch_official(args.mirror, dest)
            import BigGAN_PyTorch.BigGAN as biggan

            print(f"gan_step {gan_step_ms(args, biggan):.1f}")


if __name__ == "__main__":
    main()
