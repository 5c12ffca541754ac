#!/usr/bin/env python
"""Learning curve on the validation split: train on N training tiles, score the 60.

    python benchmarks/bench_learning_curve.py --features features/train302 \\
        --sizes 10 30 100 --out bench_out/learning_curve.json

The N tiles are the first N of one seeded permutation of the training
split's ids (so each set holds the smaller ones). Each model is trained with
the defaults of :func:`roadfeat.train.train` and scored by
``bench_val.py`` on every validation tile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.io import read_json, write_json_atomic  # noqa: E402
from roadfeat.train import train  # noqa: E402

import bench_val  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="features/train302")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100])
    ap.add_argument("--val", default="bench_out/split/val")
    ap.add_argument("--models", default="models", help="models go to MODELS/lc<N>")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench_out/learning_curve.json")
    a = ap.parse_args(argv)

    ids = sorted(read_json(Path(a.features) / "manifest.json")["images"])
    order = [ids[i] for i in np.random.default_rng(a.seed).permutation(len(ids))]
    out = read_json(a.out) if Path(a.out).exists() else {}
    for n in a.sizes:
        model_dir = Path(a.models) / f"lc{n}"
        t = time.perf_counter()
        train(a.features, model_dir, get_backend("cpu"), image_ids=order[:n], seed=a.seed,
              quiet=True)
        train_s = time.perf_counter() - t
        val_json = Path(a.out).with_name(f"val_lc{n}.json")
        bench_val.main(["--model", str(model_dir), "--val", a.val, "--out", str(val_json),
                        "--quiet"])
        res = read_json(val_json)["variants"]
        out[str(n)] = {"train_s": train_s, "tiles": order[:n],
                       **{v: {k: r[k] for k in ("mean_iou", "pooled_iou", "precision", "recall")}
                          for v, r in res.items()}}
        write_json_atomic(a.out, out)
        print(f"{n} training tiles: {json.dumps(out[str(n)]['default'])} "
              f"(train {train_s:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
