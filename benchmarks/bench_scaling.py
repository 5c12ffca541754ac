#!/usr/bin/env python
"""Predict time per stage against input size: does cost grow linearly with pixels?

Inputs of 512², 1024², 2048² and 4096² are made by mirror-tiling one real
tile (so the content stays realistic), then predicted with a trained model,
in ``--repeats`` rounds over all sizes (best of the rounds per stage); the
time per megapixel should stay flat.

    python benchmarks/bench_scaling.py --model models/dg \\
        --image ../shared/data/deepglobe/train/104_sat.jpg
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.io import encode_png, read_image  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.postprocess import postprocess  # noqa: E402

STAGES = ("features", "boosting", "post-processing", "encode")


def mirror_tile(rgb: np.ndarray, size: int) -> np.ndarray:
    reps = -(-size // rgb.shape[0]) + 1
    return np.pad(rgb, ((0, reps * rgb.shape[0]), (0, reps * rgb.shape[1]), (0, 0)),
                  mode="symmetric")[:size, :size]


def time_one(model, rgb, backend, gsd):
    st = {}
    prob = model.probability(rgb, backend, gsd, timings=st)
    t = time.perf_counter()
    mask = postprocess(prob, model.threshold_for(prob), model.post, gsd)
    st["post-processing"] = time.perf_counter() - t
    t = time.perf_counter()
    encode_png(np.where(mask, 255, 0).astype(np.uint8))
    st["encode"] = time.perf_counter() - t
    return st


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", default="../shared/data/deepglobe/train/104_sat.jpg")
    ap.add_argument("--sizes", default="512,1024,2048,4096")
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    backend = get_backend("cpu")
    model = RoadModel.load(args.model)
    base = read_image(args.image)
    time_one(model, base[:256, :256], backend, args.gsd)  # warm caches
    print(f"{os.cpu_count()} cores, model {args.model} ({model.booster.num_trees()} trees)\n")
    print("| size | " + " | ".join(STAGES) + " | total s | s per Mpx | vs 1024² per Mpx |")
    print("|---" * (len(STAGES) + 4) + "|")
    per_mpx = {}
    sizes = [int(x) for x in args.sizes.split(",")]
    images = {size: mirror_tile(base, size) for size in sizes}
    # Rounds over all sizes, so that the machine's slow spells fall on every size alike.
    runs = {size: [] for size in sizes}
    for _ in range(args.repeats):
        for size in sizes:
            runs[size].append(time_one(model, images[size], backend, args.gsd))
    for size in sizes:
        st = {s: min(r[s] for r in runs[size]) for s in STAGES}
        total = sum(st.values())
        per_mpx[size] = total / (size * size / 1e6)
        ref = per_mpx.get(1024)
        print(f"| {size}² | " + " | ".join(f"{st[s]:.2f}" for s in STAGES)
              + f" | {total:.2f} | {per_mpx[size]:.2f} | "
              + (f"{per_mpx[size] / ref:.2f}" if ref else "–") + " |", flush=True)

if __name__ == "__main__":
    main()
