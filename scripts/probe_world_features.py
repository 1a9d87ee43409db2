#!/usr/bin/env python3
"""What an image encoder's features know about a procedural-world dataset.

Reads a feature cache written by `sound2scene train-align` or `train-gan` (OUT/features:
index.json + shard-*.npy, one z^V row per image) and the dataset's ground_truth.json, and
prints, for the clips' stored frames:

  - background kind: leave-one-out 10-nearest-neighbour accuracy (cosine);
  - which sound classes are in the frame: a ridge-regression linear probe (first 75% of the
    clips to fit, the rest to test) and the same probe on an 8x8x8 colour histogram of the
    pixels, the baseline any encoder that sees the objects should reach;
  - neighbourhood class share: the fraction of each frame's 10 nearest neighbours (cosine)
    that share a sound class with it. IC-GAN trains G to draw a feature's neighbours, so this
    is about how often a perfect G, given a frame's own feature, would draw one of its classes;
  - oracle R@1 / R@10: a ridge regression from what a sound can know (background kind, each
    class's presence and radius, radius squared, background x class) to the feature, fitted on
    the first 75% and ranked against the true features in groups of 100 on the rest. It
    estimates the retrieval an audio encoder can reach against these features if it hears
    everything but cannot hear where an object is.
  - two-object neighbourhoods: for the stored frames that show two objects, the fraction of
    their 10 nearest neighbours that show both classes. IC-GAN can learn to draw a two-source
    mix only where such neighbourhoods hold both objects.

Usage: python3 scripts/probe_world_features.py DATASET_DIR FEATURE_DIR
Needs numpy and pillow (for the colour-histogram baseline). Not used by the tests.
"""

import json
import sys
from pathlib import Path

import numpy as np


def load_features(feature_dir):
    index = json.loads((feature_dir / "index.json").read_text())
    names, rows = [], []
    for shard in index["shards"]:
        rows.append(np.load(feature_dir / shard["file"]))
        names += [entry["name"] for entry in shard["entries"]]
    x = np.concatenate(rows).astype(np.float64)
    return names, x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def linear_probe(x, y, ridge):
    n = len(x)
    fit = np.arange(n) < int(0.75 * n)
    xa = np.hstack([x, np.ones((n, 1))])
    w = np.linalg.solve(
        xa[fit].T @ xa[fit] + ridge * np.eye(xa.shape[1]), xa[fit].T @ (2 * y[fit] - 1)
    )
    predicted = (xa[~fit] @ w) > 0
    truth = y[~fit] > 0.5
    recall = (predicted & truth).sum(0) / np.maximum(truth.sum(0), 1)
    return (predicted == truth).mean(), (predicted == truth).all(1).mean(), (~truth).mean(), recall


def nearest(x, k=10):
    """Indices of each row's k nearest other rows by cosine (rows of x are unit-norm)."""
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1)[:, :k]


def neighbour_class_share(neighbours, sets):
    """The fraction of each frame's neighbours (rows of `nearest`) that share a class with it."""
    return np.mean([[bool(sets[i] & sets[j]) for j in row] for i, row in enumerate(neighbours)])


def shown_classes(clip):
    """Classes drawn in the clip's stored frame when it was written with `--frame truth`: the
    frame with the most sources on screen, the one nearest the middle of those frames."""
    counts = [len(frame["objects"]) for frame in clip["frames"]]
    best = [i for i, n in enumerate(counts) if n == max(counts)]
    chosen = min(best, key=lambda f: (abs(2 * f - best[0] - best[-1]), f))
    return {o["class"] for o in clip["frames"][chosen]["objects"]}


def two_object_neighbourhoods(neighbours, shown):
    """Frames showing two objects, and the shares of their neighbours (rows of `nearest`) that
    show both of their classes and at least one of them."""
    two = [i for i, s in enumerate(shown) if len(s) == 2]
    if not two:
        return 0, float("nan"), float("nan")
    both = np.mean([[shown[i] <= shown[j] for j in neighbours[i]] for i in two])
    one = np.mean([[bool(shown[i] & shown[j]) for j in neighbours[i]] for i in two])
    return len(two), both, one


def attributes(clip, classes, backgrounds):
    a = np.zeros(len(backgrounds) + 3 * len(classes))
    a[backgrounds.index(clip["background"])] = 1
    for source in clip["sources"]:
        k, r = classes.index(source["class"]), source["radius_px"] / 10
        a[len(backgrounds) + k] = 1
        a[len(backgrounds) + len(classes) + k] += r
        a[len(backgrounds) + 2 * len(classes) + k] += r * r
    crossed = np.outer(a[: len(backgrounds)], a[len(backgrounds): len(backgrounds) + len(classes)])
    return np.concatenate([a, crossed.ravel(), [1.0]])


def oracle_recall(x, a, ridge=0.1, group=100):
    n = len(x)
    fit = np.arange(n) < int(0.75 * n)
    w = np.linalg.solve(a[fit].T @ a[fit] + ridge * np.eye(a.shape[1]), a[fit].T @ x[fit])
    predicted = a[~fit] @ w
    predicted /= np.maximum(np.linalg.norm(predicted, axis=1, keepdims=True), 1e-12)
    truth = x[~fit]
    ranks = []
    for start in range(0, len(truth) - group + 1, group):
        s = predicted[start: start + group] @ truth[start: start + group].T
        ranks.extend((s > np.diag(s)[:, None]).sum(1))
    ranks = np.array(ranks)
    return (ranks < 1).mean(), (ranks < 10).mean()


def colour_histogram(path):
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int64).reshape(-1, 3) // 32
    counts = np.bincount(pixels[:, 0] * 64 + pixels[:, 1] * 8 + pixels[:, 2], minlength=512)
    return np.sqrt(counts / counts.sum())


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    dataset, feature_dir = Path(sys.argv[1]), Path(sys.argv[2])
    truth = json.loads((dataset / "ground_truth.json").read_text())
    clips = {clip["name"]: clip for clip in truth["clips"]}
    names, x = load_features(feature_dir)
    classes = sorted({s["class"] for c in clips.values() for s in c["sources"]})
    backgrounds = sorted({c["background"] for c in clips.values()})
    y = np.array(
        [[any(s["class"] == k for s in clips[n]["sources"]) for k in classes] for n in names],
        dtype=np.float64,
    )
    kind = np.array([backgrounds.index(clips[n]["background"]) for n in names])

    neighbours = nearest(x)
    votes = [np.bincount(kind[row], minlength=len(backgrounds)).argmax() for row in neighbours]
    majority = np.bincount(kind).max() / len(kind)
    print(f"{len(names)} frames, {x.shape[1]}-wide features from {feature_dir}")
    print(f"background 10-NN accuracy {np.mean(votes == kind):.3f} (majority {majority:.3f})")

    acc, exact, absent, recall = linear_probe(x, y, 1e-3)
    print(f"sound classes, linear probe on the features: per-label accuracy {acc:.3f} "
          f"(all-absent {absent:.3f}), exact match {exact:.3f}")
    print("  recall per class: " + ", ".join(f"{k} {r:.2f}" for k, r in zip(classes, recall)))

    sets = [{s["class"] for s in clips[n]["sources"]} for n in names]
    a = np.stack([attributes(clips[n], classes, backgrounds) for n in names])
    r1, r10 = oracle_recall(x, a)
    print(f"10-NN class share {neighbour_class_share(neighbours, sets):.3f}, "
          f"oracle R@1 {r1:.3f}, R@10 {r10:.3f}")
    shown = [shown_classes(clips[n]) for n in names]
    count, both, one = two_object_neighbourhoods(neighbours, shown)
    print(f"{count} frames show two objects; of their 10-NN, {both:.3f} show both classes, "
          f"{one:.3f} at least one")

    images = {p.stem: p for p in (dataset / "images").iterdir()}
    h = np.stack([colour_histogram(images[n]) for n in names])
    acc, exact, absent, recall = linear_probe(h, y, 1.0)
    print(f"sound classes, linear probe on colour histograms: per-label accuracy {acc:.3f} "
          f"(all-absent {absent:.3f}), exact match {exact:.3f}")
    print("  recall per class: " + ", ".join(f"{k} {r:.2f}" for k, r in zip(classes, recall)))
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    r1, r10 = oracle_recall(h, a)
    h_neighbours = nearest(h)
    print(f"colour histograms: 10-NN class share {neighbour_class_share(h_neighbours, sets):.3f}, "
          f"oracle R@1 {r1:.3f}, R@10 {r10:.3f}")
    count, both, one = two_object_neighbourhoods(h_neighbours, shown)
    print(f"colour histograms: of the two-object frames' 10-NN, {both:.3f} show both classes, "
          f"{one:.3f} at least one")


if __name__ == "__main__":
    main()
