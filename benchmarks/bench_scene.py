#!/usr/bin/env python
"""Peak memory and time of windowed prediction against scene size.

Scenes are GeoTIFFs (0.5 m, UTM) made by mirror-tiling one real tile, written
window by window so that making them needs no more memory than reading them.
Each scene is predicted by ``roadfeat predict`` in a fresh process, which
reports its own peak resident memory; the peak should not grow with the
scene, and must stay under :func:`roadfeat.scene.memory_bound` for the model
and the window (the run exits 1 if one does not).

    python benchmarks/bench_scene.py --model roadfeat/data/default_model \\
        --image ../shared/data/deepglobe/train/104_sat.jpg --sizes 6144,20000 --windows 1024,2048
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.io import read_image  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.predict import DEFAULT_THREADS  # noqa: E402
from roadfeat.scene import memory_bound  # noqa: E402

RUN = ("import resource, sys\nfrom roadfeat.cli import main\nrc = main(sys.argv[1:])\n"
       "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
       "sys.exit(rc)\n")


def write_scene(path: Path, tile: np.ndarray, size: int, block: int = 1024) -> None:
    """A ``size``² GeoTIFF of ``tile`` mirrored in both directions, written block by block."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    flips = {(i, j): tile[:: (-1) ** i, :: (-1) ** j] for i in (0, 1) for j in (0, 1)}
    th, tw = tile.shape[:2]
    prof = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint8", tiled=True,
                blockxsize=256, blockysize=256, compress="deflate", crs="EPSG:32633",
                transform=from_origin(500000, 4500000, 0.5, 0.5), BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **prof) as ds:
        for r0 in range(0, size, block):
            for c0 in range(0, size, block):
                h, w = min(block, size - r0), min(block, size - c0)
                rows, cols = np.arange(r0, r0 + h), np.arange(c0, c0 + w)
                # Mirror tiling: tile index parity picks the flip.
                part = np.empty((h, w, 3), np.uint8)
                for (i, j), t in flips.items():
                    rm = (rows // th) % 2 == i
                    cm = (cols // tw) % 2 == j
                    if rm.any() and cm.any():
                        part[np.ix_(rm, cm)] = t[np.ix_(rows[rm] % th, cols[cm] % tw)]
                ds.write(np.moveaxis(part, -1, 0), window=Window(c0, r0, w, h))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True, help="a real tile to mirror into scenes")
    ap.add_argument("--sizes", default="2048,5000,20000")
    ap.add_argument("--windows", default="2048", help="--window values, each run on each size")
    ap.add_argument("--scenes", type=int, default=1,
                    help="copies of each scene in the folder, predicted with predict's default "
                         "images at once; the bound counts one window per image in flight")
    ap.add_argument("--work", default="bench_out/scene")
    ap.add_argument("--out", default="bench_out/scene.json")
    args = ap.parse_args(argv)

    tile = read_image(args.image)
    model = RoadModel.load(args.model)
    rows = []
    for size in map(int, args.sizes.split(",")):
        d = Path(args.work) / str(size)
        (d / "in").mkdir(parents=True, exist_ok=True)
        scene = d / "in" / "scene_sat.tif"
        if not scene.exists():
            write_scene(scene, tile, size)
        for i in range(1, args.scenes):
            copy = d / "in" / f"scene{i}_sat.tif"
            if not copy.exists():
                copy.symlink_to(scene.name)
        for copy in (d / "in").glob("scene[0-9]*_sat.tif"):  # copies of an earlier run
            if int(copy.name[5:-8]) >= args.scenes:
                copy.unlink()
        in_flight = min(args.scenes, DEFAULT_THREADS["cpu"])
        for window in map(int, args.windows.split(",")):
            out = d / f"out-{time.time_ns()}"
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", RUN, "predict", "--model", args.model,
                                   "--images", str(d / "in"), "--out", str(out),
                                   "--device", "cpu", "--window", str(window), "--quiet"],
                                  capture_output=True, text=True)
            secs = time.perf_counter() - t
            if proc.returncode != 0:
                sys.exit(f"predict failed on {scene}: {proc.stderr.strip()[-500:]}")
            shutil.rmtree(out)
            peak = int(proc.stderr.split("PEAK_RSS_KB")[1].split()[0]) / 1024 ** 2
            bound = memory_bound(model, 0.5, window, in_flight) / 2**30
            row = {"size": size, "scenes": args.scenes, "in_flight": in_flight,
                   "mpx": size * size / 1e6, "window": window, "seconds": secs,
                   "s_per_mpx": secs / (args.scenes * size * size / 1e6), "peak_rss_gib": peak,
                   "bound_gib": bound}
            rows.append(row)
            print(f"{args.scenes} × {size}², window {window}: {secs:.1f} s, "
                  f"{row['s_per_mpx']:.2f} s/Mpx, "
                  f"peak RSS {peak:.2f} GiB (bound {bound:.2f})", flush=True)
            os.makedirs(Path(args.out).parent, exist_ok=True)
            Path(args.out).write_text(json.dumps({"rows": rows, "cpus": os.cpu_count()}, indent=2))
    print("\n| scenes | scene | Mpx | --window | seconds | s per Mpx | peak RSS GiB | bound GiB |\n"
          "|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenes']} | {r['size']}² | {r['mpx']:.0f} | {r['window']} | {r['seconds']:.0f} | "
              f"{r['s_per_mpx']:.2f} | {r['peak_rss_gib']:.2f} | {r['bound_gib']:.2f} |")
    over = [r for r in rows if r["peak_rss_gib"] > r["bound_gib"]]
    if over:
        sys.exit(f"bench_scene: peak memory over the bound for {len(over)} run(s)")


if __name__ == "__main__":
    main()
