#!/usr/bin/env python
"""Profile of the feature stage: seconds per spec entry, at two image sizes.

Each entry of the default spec (image features, then context features of a
probability map) is computed alone, best of ``--repeats``, on a tile and on
a larger image mirror-tiled from it; the last column is the cost per pixel
of the large image over the tile's (1.00: flat in size). The ``base`` row is
the conversion and resampling that every entry pays (the ``r`` channel
alone); image rows include it.

    python benchmarks/bench_features.py --image ../shared/data/deepglobe/train/104_sat.jpg \\
        --sizes 1024,4096

With ``--model`` (and ``--tiles``), it times that model's feature stage
instead, per tile, with only the units its trees use (what predict does)
and with all of them, in alternation on the same tiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_scaling import mirror_tile  # noqa: E402

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.features.spec import DEFAULT_SPEC, compute_context, compute_features  # noqa: E402
from roadfeat.io import find_images, read_image  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402


def best(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="../shared/data/deepglobe/train/104_sat.jpg")
    ap.add_argument("--sizes", default="1024,4096")
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--config", help="JSON feature spec whose entries to time (default: built-in)")
    ap.add_argument("--model", help="also time this model's features, used units against all")
    ap.add_argument("--tiles", default="bench_out/split/val")
    ap.add_argument("--n", type=int, default=6)
    args = ap.parse_args(argv)
    bk = get_backend("cpu")
    if args.model:
        prune(RoadModel.load(args.model), args.tiles, args.n, args.repeats, bk)
        return
    spec_all = json.loads(Path(args.config).read_text()) if args.config else DEFAULT_SPEC
    base = read_image(args.image)
    sizes = [int(s) for s in args.sizes.split(",")]
    entries = ([("base", "image", {"kind": "colour", "sources": ["r"]})]
               + [(f"{e['kind']} {','.join(e['sources'])}", "image", e)
                  for e in spec_all["features"]]
               + [(f"context {e['kind']}", "context", e) for e in spec_all["context"]])
    secs = {}
    for size in sizes:
        rgb = mirror_tile(base, size)
        n = int(round(size * args.gsd / spec_all["working_gsd"]))
        prob = np.random.default_rng(0).random((n, n)).astype(np.float32)
        for name, where, e in entries:
            if where == "image":
                spec = {"version": 2, "working_gsd": spec_all["working_gsd"], "features": [e]}
                fn = lambda spec=spec: compute_features(rgb, spec, bk, args.gsd)  # noqa: E731
            else:
                spec = dict(spec_all, context=[e])
                fn = lambda spec=spec: compute_context(prob, spec)  # noqa: E731
            secs[name, size] = best(fn, args.repeats)
    small, large = sizes[0], sizes[-1]
    area = (large / small) ** 2
    print(f"| entry | {small}² s | {large}² s | per pixel, {large}² / {small}² |")
    print("|---|---|---|---|")
    for name, _, _ in entries:
        a, b = secs[name, small], secs[name, large]
        print(f"| {name} | {a:.3f} | {b:.3f} | {b / a / area:.2f} |")


def prune(model, tiles: str, n: int, repeats: int, bk) -> None:
    """Median feature-stage seconds per tile of ``model``: used units only, and all."""
    import statistics

    used = len(model.names) if model.needed is None else len(
        set(model.needed) & set(model.names))
    times = {"used units": [], "all": []}
    for _, path in list(find_images(tiles)[0].items())[:n]:
        rgb = read_image(path)
        for name, inter in (("used units", None), ("all", {})):
            def features(inter=inter):
                st = {}
                model.probability(rgb, bk, timings=st, intermediates=inter)
                return st["features"]
            times[name].append(min(features() for _ in range(repeats)))
    print(f"model: {used} of {len(model.names)} image features computed")
    for name, t in times.items():
        print(f"features, {name}: {statistics.median(t):.3f} s per tile")


if __name__ == "__main__":
    main()
