#!/usr/bin/env python3
"""Write an IC-GAN experiment folder at the released size (G_ch = D_ch = 96, 128x128) with
random weights, for whole-process speed and memory runs (`compare_speed.py --process`).

The configuration is the fixture's (`icgan_biggan_ch8_res128/state_dict_best0.pth`, the
released ImageNet IC-GAN configuration at width 8) with the widths set back to 96. G is the
official BigGAN-PyTorch `Generator`, built from that configuration and initialized as the
official code does (seeded), then saved as `G_ema_best0.pth` beside `state_dict_best0.pth`,
the files `sound2scene generate --generator DIR` and the official loader read.

Usage: python scripts/make_full_size_generator.py OUT_DIR --official DIR [--seed 0]
           [--fixtures ../shared/fixtures]
"""

import argparse
import os
import sys
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--official", required=True, help="folder holding BigGAN_PyTorch/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--fixtures", default=os.environ.get("SOUND2SCENE_FIXTURES", "../shared/fixtures")
    )
    args = ap.parse_args()
    sys.path.insert(0, args.official)
    import BigGAN_PyTorch.BigGAN as biggan

    source = Path(args.fixtures) / "models" / "icgan_biggan_ch8_res128" / "state_dict_best0.pth"
    state = torch.load(source, map_location="cpu", weights_only=False)
    config = dict(state["config"])
    config.update(G_ch=96, D_ch=96, skip_init=False, no_optim=True)
    torch.manual_seed(args.seed)
    generator = biggan.Generator(**config).eval()
    args.out.mkdir(parents=True, exist_ok=True)
    state["config"] = config
    torch.save(state, args.out / "state_dict_best0.pth")
    torch.save(generator.state_dict(), args.out / "G_ema_best0.pth")
    params = sum(p.numel() for p in generator.parameters())
    print(f"wrote {args.out} (G: {params / 1e6:.1f} M parameters)")


if __name__ == "__main__":
    main()
