#!/usr/bin/env python
"""Test-time augmentation and the threshold rule, on the cross-validation folds.

Trains the same 5 fold models as ``bench_cv.py`` (defaults, same folds and
seed), then scores each held-out tile (a) as predicted, (b) with the
probabilities of the image, its two mirror images and its 180° turn
averaged, both at each image's own expected-IoU threshold (the default
rule); and, for comparison only, (c) both at the single threshold on the
calibrated probability that is best over all held-out tiles at once and (d)
with each tile at its own best threshold (both chosen with hindsight, so not
fair scores: (c) is the ceiling of any fixed threshold, (d) the ceiling of
any rule that picks a threshold for these probability maps).

    python benchmarks/bench_tta.py --data ../shared/data/deepglobe/train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_cv import folds_of  # noqa: E402
from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.calibration import expected_iou_threshold  # noqa: E402
from roadfeat.extract import Sampling, extract  # noqa: E402
from roadfeat.features import default_spec  # noqa: E402
from roadfeat.io import find_images, mask_path_for, read_image, read_mask  # noqa: E402
from roadfeat.metrics import confusion  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.postprocess import postprocess  # noqa: E402
from roadfeat.train import train  # noqa: E402

FLIPS = [lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1]]
# Thresholds on the calibrated probability for the hindsight comparisons.
GRID = np.round(np.arange(0.02, 0.61, 0.02), 2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/deepglobe/train")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--work", default="bench_out/tta")
    args = ap.parse_args(argv)

    bk, work = get_backend("cpu"), Path(args.work)
    images, _ = find_images(args.data)
    extract(args.data, work / "feat", default_spec(), bk, Sampling(20000, 0.5, 0), 0.5, quiet=True)
    held = {}
    for i, test in enumerate(folds_of(sorted(images), args.folds, 0)):
        md = work / f"model-{i}"
        if not (md / "card.json").exists():
            train(work / "feat", md, bk, seed=0, quiet=True,
                  image_ids=sorted(set(images) - set(test)), threads=2)
        model = RoadModel.load(md)
        for k in test:
            rgb = read_image(images[k])
            truth = read_mask(mask_path_for(images[k]), rgb.shape)
            probs = [f(model.probability(np.ascontiguousarray(f(rgb)), bk, 0.5)) for f in FLIPS]
            held[k] = (probs[0], np.mean(probs, axis=0), truth, model.post)
            print(k, flush=True)

    def iou(v, j, t):
        return confusion(postprocess(v[j], t, v[3], 0.5), v[2]).iou

    for name, j in (("as predicted", 0), ("4-flip average", 1)):
        own = np.mean([iou(v, j, expected_iou_threshold(v[j])) for v in held.values()])
        table = np.array([[iou(v, j, t) for t in GRID] for v in held.values()])
        best = table.mean(axis=0)
        print(f"{name}: mean IoU {own:.4f} at each image's expected-IoU threshold; "
              f"{best.max():.4f} at the hindsight-best single threshold "
              f"{GRID[int(best.argmax())]:.2f}; {table.max(axis=1).mean():.4f} with each tile "
              "at its own best threshold")


if __name__ == "__main__":
    main()
