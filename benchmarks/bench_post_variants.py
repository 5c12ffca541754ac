#!/usr/bin/env python
"""Post-processing variants on saved validation maps (``bench_val.py --maps``).

    python benchmarks/bench_val.py --model models/NAME --maps bench_out/maps_NAME
    python benchmarks/bench_post_variants.py --maps bench_out/maps_NAME

Each variant starts from the default mask (:func:`roadfeat.postprocess.postprocess`
with the default :class:`~roadfeat.postprocess.PostParams`, at the map's own
threshold) and changes it; the table gives mean per-image
IoU, pooled IoU, precision and recall, and each variant's per-tile
difference from the default (mean ± standard error, tiles up / down). No
map is computed again, so a variant costs seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage.morphology import skeletonize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.io import InputError, read_mask  # noqa: E402
from roadfeat.metrics import confusion, summarise  # noqa: E402
from roadfeat.postprocess import PostParams, postprocess  # noqa: E402


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def skeleton_and_median_width(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The mask's skeleton and the median road width along it, in pixels."""
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    skel = skeletonize(mask)
    # A centre pixel ``d`` from the nearest background pixel has d - 1 road pixels on each side.
    return skel, float(np.median(2 * dist[skel] - 1)) if skel.any() else 0.0


def redraw_at_median_width(mask: np.ndarray) -> np.ndarray:
    """The skeleton drawn at the mask's median road width."""
    if not mask.any():
        return mask
    skel, width = skeleton_and_median_width(mask)
    return cv2.dilate(skel.astype(np.uint8), _disc(max(1, round(width / 2)))).astype(bool)


def cap_width(mask: np.ndarray, factor: float) -> np.ndarray:
    """The mask within ``factor`` × its median road width of its skeleton."""
    if not mask.any():
        return mask
    skel, width = skeleton_and_median_width(mask)
    near = cv2.dilate(skel.astype(np.uint8), _disc(max(1, round(factor * width / 2))))
    return mask & near.astype(bool)


def drop_faint_components(mask: np.ndarray, prob: np.ndarray, level: float) -> np.ndarray:
    """The mask without its 8-connected pieces whose mean probability is under ``level``."""
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    mean = (np.bincount(lab.ravel(), weights=prob.ravel(), minlength=n)
            / np.maximum(np.bincount(lab.ravel(), minlength=n), 1))
    keep = mean >= level
    keep[0] = False
    return keep[lab]


#: name -> (default mask, map, threshold) -> mask
VARIANTS = {
    "the default": lambda m, p, t: m,
    "skeleton redrawn at the median width": lambda m, p, t: redraw_at_median_width(m),
    "cut to 2 x the median width": lambda m, p, t: cap_width(m, 2.0),
    "cut to 1.5 x the median width": lambda m, p, t: cap_width(m, 1.5),
    "pieces of mean probability < threshold + 0.1 dropped":
        lambda m, p, t: drop_faint_components(m, p, t + 0.1),
    "pieces of mean probability < threshold + 0.2 dropped":
        lambda m, p, t: drop_faint_components(m, p, t + 0.2),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", required=True, help="folder of <id>.npz from bench_val.py --maps")
    ap.add_argument("--val", default="bench_out/split/val", help="folder of the <id>_mask.png")
    ap.add_argument("--gsd", type=float, default=0.5)
    a = ap.parse_args(argv)
    paths = sorted(Path(a.maps).glob("*.npz"))
    if not paths:
        print(f"bench_post_variants: {a.maps}: no <id>.npz maps", file=sys.stderr)
        return 2
    counts = {name: [] for name in VARIANTS}
    for path in paths:
        try:
            with np.load(path) as saved:
                prob, t = saved["prob"], float(saved["threshold"])
            truth = read_mask(Path(a.val) / f"{path.stem}_mask.png", prob.shape)
        except InputError as exc:
            print(f"bench_post_variants: {exc}", file=sys.stderr)
            return 2
        except (OSError, ValueError, KeyError) as exc:
            print(f"bench_post_variants: {path}: not a saved map ({exc})", file=sys.stderr)
            return 2
        mask = postprocess(prob, t, PostParams(), a.gsd)
        for name, variant in VARIANTS.items():
            counts[name].append(confusion(variant(mask, prob, t), truth))
    base = np.array([c.iou for c in counts["the default"]])
    print(f"{len(paths)} maps in {a.maps}\n")
    print("| variant | mean per-image IoU | pooled IoU | precision | recall | difference |")
    print("|---|---|---|---|---|---|")
    for name, cs in counts.items():
        s = summarise(cs)
        d = np.array([c.iou for c in cs]) - base
        diff = (f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(len(d)):.4f} "
                f"({(d > 0).sum()} / {(d < 0).sum()})" if len(d) > 1 else "")
        print(f"| {name} | {s['mean_iou']:.4f} | {s['pooled_iou']:.4f} | {s['precision']:.4f} "
              f"| {s['recall']:.4f} | {diff} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
