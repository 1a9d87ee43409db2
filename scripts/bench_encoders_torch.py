#!/usr/bin/env python3
"""Time f_A, the Sound2Scene audio encoder, in PyTorch on the CPU or a CUDA GPU, for comparison
with `cargo run --release --example time_models` (Burn).

The network is written here from the published architecture, not copied: a torchvision-style
ResNet-18 (BasicBlock, [2, 2, 2, 2]) whose stem convolution takes one channel, global average
pooling, a 512 -> 2048 linear layer and a ReLU, in eval mode with random weights, on 10 s
spectrograms [batch, 1, 257, 1004]. On CUDA each timing ends with a device synchronize.

Usage: python scripts/bench_encoders_torch.py [--threads 2] [--runs 20] [--warmup 3]
           [--batch 1] [--device cpu|cuda]
"""

import argparse
import statistics
import time

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + shortcut)


class AudioEncoder(nn.Module):
    def __init__(self, blocks=(2, 2, 2, 2), out_dim=2048, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c_out = width << i
            layer = []
            for k in range(n):
                layer.append(BasicBlock(c_in, c_out, 2 if (k == 0 and i > 0) else 1))
                c_in = c_out
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(c_in, out_dim)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        pooled = x.mean(dim=(2, 3))
        return torch.relu(self.fc(pooled)), pooled


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    net = AudioEncoder().eval().to(device)
    with torch.inference_mode():
        for batch in args.batch:
            x = torch.randn(batch, 1, 257, 1004, device=device)
            for _ in range(args.warmup):
                net(x)
            sync()
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                net(x)[0].cpu()
                sync()
                times.append((time.perf_counter() - t0) * 1e3)
            print(
                f"torch {torch.__version__}, {args.device}, {args.threads} threads, "
                f"f_A batch {batch} [{batch},1,257,1004]: median {statistics.median(times):.1f} ms, "
                f"min {min(times):.1f} ms over {args.runs} runs"
            )


if __name__ == "__main__":
    main()
