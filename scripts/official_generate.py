#!/usr/bin/env python3
"""One sound in, one picture out, the way the official Sound2Scene code does it: the
reference of the whole-process run in `compare_speed.py --process`.

The flow of the official `test.py` for one clip and one image: read the wav with soundfile,
tile it to 10 s and clip it, `scipy.signal.spectrogram(nperseg=512, noverlap=353)`, log and
standardize; the official `AVENet` (ResNet-18, average pool, 2048) loaded from
`--audio-weights`; the feature L2-normalized; the official BigGAN `Generator` built from the
experiment folder's stored configuration and loaded from its `G_ema_best0.pth` (as the
official `load_model_inference` does); one image from `z ~ N(0, 1)`, clamped and written with
torchvision's `save_image(make_grid(..., normalize=True, scale_each=True))`. The official
modules are imported from `--official`, a folder holding `model.py`, `models/` and
`BigGAN_PyTorch/` extracted from the fetched repository; the official script's unused imports
(librosa, pydub) and its image encoder (not used to draw from a sound) are left out.

Usage: python scripts/official_generate.py --official DIR --wav WAV --audio-weights PTH
           --generator DIR --out PNG [--threads 2]
"""

import argparse
import sys
import types


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", required=True)
    ap.add_argument("--wav", required=True)
    ap.add_argument("--audio-weights", required=True)
    ap.add_argument("--generator", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import soundfile as sf
    import torch
    from scipy import signal
    from torchvision.utils import make_grid, save_image

    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    sys.path.insert(0, args.official)
    from model import AVENet
    import BigGAN_PyTorch.BigGAN as biggan

    options = types.SimpleNamespace(pool="avgpool", n_classes=2048, model_depth=18)
    encoder = AVENet(options)
    encoder.load_state_dict(torch.load(args.audio_weights, map_location="cpu"))
    encoder.eval()
    state = torch.load(f"{args.generator}/state_dict_best0.pth", map_location="cpu",
                       weights_only=False)
    generator = biggan.Generator(**{**state["config"], "skip_init": True, "no_optim": True})
    generator.load_state_dict(torch.load(f"{args.generator}/G_ema_best0.pth",
                                         map_location="cpu"))
    generator.eval()

    samples, rate = sf.read(args.wav)
    samples = np.tile(samples, 10)[:160000]
    samples = np.clip(samples, -1.0, 1.0)
    _, _, spec = signal.spectrogram(samples, rate, nperseg=512, noverlap=353)
    spec = np.log(spec + 1e-7)
    spec = (spec - spec.mean()) / (spec.std() + 1e-9)
    with torch.no_grad():
        spec = torch.from_numpy(spec).float()[None, None]
        _, feature = encoder(spec)
        feature = feature / torch.linalg.norm(feature, dim=-1, keepdim=True)
        z = torch.empty(1, generator.dim_z).normal_(mean=0, std=1.0)
        image = generator(z, None, feature).clamp(-1.0, 1.0)
    save_image(make_grid(image, normalize=True, scale_each=True, nrow=8), args.out)


if __name__ == "__main__":
    main()
