#!/usr/bin/env python3
"""Time our networks, training steps and whole process against the PyTorch references side by
side on this machine and print the ratios (ours / PyTorch).

Three parts (`--parts`, all by default):
- `networks`: f_A on `[batch, 1, 257, 1004]` and G (G_ch 96, 128x128) at inference, random
  weights: our `time_models` example against `bench_encoders_torch.py` and
  `bench_generator_torch.py` (the official BigGAN definitions);
- `train`: one alignment step (audio ResNet-18 width 8, batch 64, InfoNCE-L2, Adam) and one
  IC-GAN D + G step (`scripts/tiny_gan.json`, batch 32): our `align_throughput` and
  `gan_throughput` examples against `bench_train_torch.py`;
- `process`: one 10 s wav to one 128x128 PNG at the released sizes (the full-size f_A of the
  fixtures and a random G_ch 96 IC-GAN folder made by `make_full_size_generator.py`), a fresh
  process each time: `sound2scene generate` against `official_generate.py`, wall time and peak
  resident memory (the kernel's `ru_maxrss` of the child), in interleaved rounds.

Ours are the release binaries of `cargo build --release --workspace --all-targets` (in
`--bin-dir`, default `target/release`). Every timing uses `--threads` threads on both sides.
Run from the repository root:

    cargo build --release --workspace --all-targets
    python scripts/compare_speed.py [--threads 2] [--runs 5] [--parts networks train process]
    python scripts/compare_speed.py --parts networks --device wgpu --torch-device cuda \
        --ours-bin PATH/time_models --official DIR --audio-batch 1 16 --generator-batch 1 8 64
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFFICIAL_FILES = [
    "BigGAN_PyTorch/BigGAN.py",
    "BigGAN_PyTorch/layers.py",
    "BigGAN_PyTorch/diffaugment_utils.py",
    "BigGAN_PyTorch/sync_batchnorm",
    "model.py",
    "models/resnet.py",
]


def run(cmd, env=None):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout


def extract_official(mirror, dest):
    """The official files the references import, from the fetched bare repository."""
    archive = subprocess.run(["git", "--git-dir", mirror, "archive", "HEAD", *OFFICIAL_FILES],
                             check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, check=True)
    return dest


def table(title, header, rows):
    print(f"\n{title}")
    print("".join(f"{h:>14}" if i else f"{h:<22}" for i, h in enumerate(header)))
    for row in rows:
        print("".join(
            f"{v:>14}" if i and isinstance(v, str) else (f"{v:>14.1f}" if i else f"{v:<22}")
            for i, v in enumerate(row)))


def ratio(ours, theirs):
    return f"{ours / theirs:.2f}" if ours and theirs else "n/a"


def networks(args, env, official):
    ours_cmd = [args.ours_bin or str(args.bin_dir / "examples" / "time_models")]
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
    gen = run([sys.executable, "scripts/bench_generator_torch.py", *common,
               "--official", official, "--batch", *args.generator_batch])
    for batch, ms in re.findall(r"batch (\d+)\D.*?median ([0-9.]+) ms", gen):
        theirs[f"generator_b{batch}"] = float(ms)
    table(f"networks (ours: {args.device}; PyTorch: {args.torch_device}, {args.threads} threads)",
          ["network", "ours ms", "torch ms", "ours/torch"],
          [[name, ms, theirs.get(name) or float("nan"), ratio(ms, theirs.get(name))]
           for name, ms in ours.items()])


def train(args, env, official):
    examples = args.bin_dir / "examples"
    steps = str(args.runs + 1)
    ours = {}
    out = run([str(examples / "align_throughput"), "8", "64", steps], env)
    ours["align_step"] = float(re.search(r"align_step_ms ([0-9.]+)", out).group(1))
    out = run([str(examples / "gan_throughput"), "scripts/tiny_gan.json", steps], env)
    ours["gan_step"] = float(re.search(r"gan_step_ms ([0-9.]+)", out).group(1))
    out = run([sys.executable, "scripts/bench_train_torch.py", "--threads", str(args.threads),
               "--runs", str(args.runs), "--official", official])
    theirs = {name: float(ms) for name, ms in re.findall(r"(\w+_step) ([0-9.]+)", out)}
    table(f"training steps (flex; PyTorch CPU; {args.threads} threads; median of {args.runs})",
          ["step", "ours ms", "torch ms", "ours/torch"],
          [[name, ms, theirs.get(name) or float("nan"), ratio(ms, theirs.get(name))]
           for name, ms in ours.items()])


def timed_process(cmd, env):
    """Wall seconds and peak resident MiB of one fresh process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed ({status}): {child.stderr.read().decode()}")
    child.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def process(args, env, official):
    assets = ROOT / "target" / "speed-assets"
    generator = assets / "icgan_biggan_ch96_res128"
    if not (generator / "G_ema_best0.pth").is_file():
        run([sys.executable, "scripts/make_full_size_generator.py", str(generator),
             "--official", official, "--fixtures", args.fixtures])
    weights = Path(args.fixtures) / "models" / "sound2scene_audio_resnet18.pth"
    out = assets / "out"
    out.mkdir(parents=True, exist_ok=True)
    ours_cmd = [str(args.bin_dir / "sound2scene"), "generate", "--generator", str(generator),
                "--audio", args.wav, "--audio-weights", str(weights),
                "--out", str(out / "ours.png")]
    theirs_cmd = [sys.executable, "scripts/official_generate.py", "--official", official,
                  "--wav", args.wav, "--audio-weights", str(weights),
                  "--generator", str(generator), "--out", str(out / "theirs.png"),
                  "--threads", str(args.threads)]
    results = {"ours": [], "torch": []}
    timed_process(ours_cmd, env)
    timed_process(theirs_cmd, env)
    for _ in range(args.runs):
        results["ours"].append(timed_process(ours_cmd, env))
        results["torch"].append(timed_process(theirs_cmd, env))
    med = {k: [statistics.median(v[i] for v in runs) for i in (0, 1)]
           for k, runs in results.items()}
    table(f"whole process: {Path(args.wav).name} -> one 128x128 PNG, released sizes, "
          f"{args.threads} threads, median of {args.runs} fresh processes",
          ["measure", "ours", "torch", "ours/torch"],
          [["wall s", med["ours"][0], med["torch"][0], ratio(med["ours"][0], med["torch"][0])],
           ["peak RSS MiB", med["ours"][1], med["torch"][1],
            ratio(med["ours"][1], med["torch"][1])]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--parts", nargs="+", default=["networks", "train", "process"],
                    choices=["networks", "train", "process"])
    ap.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release")
    ap.add_argument("--device", default="flex", help="our backend: flex, wgpu or cuda")
    ap.add_argument("--torch-device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--ours-bin", help="a time_models binary elsewhere than --bin-dir")
    ap.add_argument("--official", help="folder holding the official files (else --mirror)")
    ap.add_argument("--mirror", default="/work/.mirror/postech-ami+Sound2Scene/repo")
    ap.add_argument("--fixtures",
                    default=os.environ.get("SOUND2SCENE_FIXTURES", "../shared/fixtures"))
    ap.add_argument("--wav", default="../shared/samples/inference/cow.wav")
    ap.add_argument("--audio-batch", default=["1"], nargs="+")
    ap.add_argument("--generator-batch", default=["1", "8"], nargs="+")
    args = ap.parse_args()

    threads = str(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    with tempfile.TemporaryDirectory(prefix="s2s_official_") as dest:
        official = args.official or extract_official(args.mirror, dest)
        for part in args.parts:
            {"networks": networks, "train": train, "process": process}[part](args, env, official)


if __name__ == "__main__":
    main()
