#!/usr/bin/env python
"""Test-time augmentation and the threshold, on the cross-validation folds.

Trains the same 5 fold models as ``bench_cv.py`` (defaults, same folds and
seed), then scores each held-out tile (a) as predicted, (b) with the
probabilities of the image, its two mirror images and its 180° turn
averaged, both at each fold model's own threshold; and, for comparison
only, (c) both at the single threshold that is best over all held-out
tiles at once and (d) with each tile at its own best threshold (both
chosen with hindsight, so not fair scores: (d) is the ceiling of any rule
that picks a threshold for these probability maps).

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
from roadfeat.extract import Sampling, extract  # noqa: E402
from roadfeat.features import default_spec  # noqa: E402
from roadfeat.io import find_images, mask_path_for, read_image, read_mask  # noqa: E402
from roadfeat.metrics import confusion  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.postprocess import postprocess  # noqa: E402
from roadfeat.train import train  # noqa: E402

FLIPS = [lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1]]


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
            held[k] = (probs[0], np.mean(probs, axis=0), truth, model)
            print(k, f"threshold {model.threshold:.2f}", flush=True)

    def mean_iou(j, threshold=None):
        return np.mean([confusion(postprocess(v[j], threshold or v[3].threshold, v[3].post, 0.5),
                                  v[2]).iou for v in held.values()])

    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    for name, j in (("as predicted", 0), ("4-flip average", 1)):
        best = max((mean_iou(j, t), t) for t in grid)
        # Ceiling of any threshold rule: each tile at its own best threshold.
        oracle = np.mean([max(confusion(postprocess(v[j], t, v[3].post, 0.5), v[2]).iou
                              for t in grid) for v in held.values()])
        print(f"{name}: mean IoU {mean_iou(j):.4f} at each fold's threshold; "
              f"{best[0]:.4f} at the hindsight-best single threshold {best[1]:.2f}; "
              f"{oracle:.4f} with each tile at its own best threshold")


if __name__ == "__main__":
    main()
