#!/usr/bin/env python
"""roadfeat on a GPU: parity tests, then a folder of tiles predicted on the GPU and the CPU.

One command for a lent GPU machine (docs/GPU.md gives the wheels and the
``device`` call):

    python benchmarks/bench_gpu.py --model models/NAME --images DIR --out bench_out/gpu.json

It prints the device, runs ``tests/test_gpu.py``, then predicts every
``<id>_sat.*`` of ``--images`` (up to ``--limit``) on each backend, from
decoding the image to writing its mask, and reports tiles per second, the
seconds per stage and, per tile, the IoU between the GPU's and the CPU's
masks. The first tile of each backend is a warm-up (CUDA kernels compile
on first use) and is left out of the times. Where no GPU works it says so
in one line and exits 2.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from roadfeat.backend import get_backend, gpu_available  # noqa: E402
from roadfeat.io import find_images, read_image, write_json_atomic, write_mask  # noqa: E402
from roadfeat.metrics import iou  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.postprocess import postprocess  # noqa: E402

STAGES = ("decode", "features", "boosting", "post-processing", "write")


def run_backend(model: RoadModel, images: dict, device: str, out_dir: Path,
                probs: dict | None = None) -> dict:
    """Predict every image on one backend; times per stage, excluding the warm-up tile.

    ``probs``, if given, receives each image's road probability (for comparing
    the backends' masks at one fixed threshold).
    """
    backend = get_backend(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_stage = {s: 0.0 for s in STAGES}
    ids = sorted(images)
    t_start = None
    for n, k in enumerate(ids):
        if n == 1:  # after the warm-up tile
            per_stage = {s: 0.0 for s in STAGES}
            t_start = time.perf_counter()
        timings: dict = {}
        t = time.perf_counter()
        rgb = read_image(images[k])
        timings["decode"] = time.perf_counter() - t
        prob = model.probability(rgb, backend, timings=timings)
        t = time.perf_counter()
        mask = postprocess(prob, model.threshold_for(prob), model.post, model.train_gsd)
        timings["post-processing"] = time.perf_counter() - t
        if probs is not None:
            probs[k] = prob
        t = time.perf_counter()
        write_mask(out_dir / f"{k}_mask.png", mask)
        timings["write"] = time.perf_counter() - t
        for s in STAGES:
            per_stage[s] += timings.get(s, 0.0)
    timed = max(1, len(ids) - 1)
    wall = time.perf_counter() - t_start if t_start is not None else float("nan")
    return {"tiles_timed": timed, "wall_s": wall, "tiles_per_s": timed / wall,
            "s_per_tile_by_stage": {s: v / timed for s, v in per_stage.items()}}


def feature_kinds(spec: dict, rgb, device: str, repeat: int = 3) -> dict:
    """Seconds per image-feature entry of the spec (median of ``repeat``), on one backend.

    Each entry runs alone, so the shared sources it needs (colour
    conversions, ridge maps) are counted in its time.
    """
    from roadfeat.features import compute_features
    from roadfeat.model import _finish_device_work

    backend = get_backend(device)
    out = {}
    for entry in spec["features"]:
        one = {k: v for k, v in spec.items() if k not in ("context", "support")}
        one["features"] = [entry]
        times = []
        for _ in range(repeat + 1):  # the first run warms up
            t = time.perf_counter()
            compute_features(rgb, one, backend, 0.5)
            _finish_device_work()
            times.append(time.perf_counter() - t)
        out[f"{entry['kind']}({','.join(entry['sources'])})"] = float(np.median(times[1:]))
    return out


def throughput(model: RoadModel, images: dict, work: Path, copies: int,
               configs: list[str], reference: Path) -> dict:
    """Tiles per second of ``predict_folder`` on the GPU, decode to written mask, per config.

    Each config is ``threads=N`` (N images at once in this process) or
    ``dask=local:N`` (N worker processes). The folder holds ``copies`` of
    every tile under new ids. Each run's masks are compared with
    ``reference`` (the single-image GPU masks of :func:`run_backend`).
    Dask workers are warmed up on one copy before the timed run; this
    process is already warm.
    """
    from roadfeat.predict import predict_folder
    from roadfeat.runner import connect

    def linked(name: str, items, copies: int) -> Path:
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        for c in range(copies):
            for k, path in items:
                link = folder / f"{k}c{c}_sat{path.suffix}"
                if not link.exists():
                    link.symlink_to(path.resolve())
        return folder

    folder = linked("tiles", images.items(), copies)
    backend = get_backend("gpu")
    out = {}
    for config in configs:
        kind, n = config.split("=")
        client = connect(n) if kind == "dask" else None
        threads = int(n) if kind == "threads" else 1
        try:
            if client is not None:  # every worker compiles its kernels and parses the trees
                workers = len(client.scheduler_info()["workers"])
                warm = linked(f"warm{workers}", list(images.items())[:2 * workers], 1)
                predict_folder(model, warm, work / f"warm{workers}-out", backend, quiet=True,
                               client=client)
            dest = work / config.replace("=", "-").replace(":", "")
            t = time.perf_counter()
            report = predict_folder(model, folder, dest, backend, quiet=True, client=client,
                                    threads=threads)
            wall = time.perf_counter() - t
        finally:
            if client is not None:
                client.close()
        ious = [iou(read_image(dest / f"{k}c{c}_mask.png")[..., 0] > 127,
                    read_image(reference / f"{k}_mask.png")[..., 0] > 127)
                for k in images for c in range(copies)]
        out[config] = {"tiles": len(report.done), "failed": len(report.failed), "wall_s": wall,
                       "tiles_per_s": len(report.done) / wall,
                       "min_mask_iou_vs_single": float(min(ious))}
        print(f"throughput {config}: {out[config]}", flush=True)
    return out


def learners(rows: int = 1_000_000, features: int = 86, rounds: int = 50) -> dict:
    """LightGBM's CPU, OpenCL ``gpu`` and ``cuda`` learners on random rows of training size."""
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X = rng.random((rows, features), dtype=np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    out = {}
    for dev in ("cpu", "gpu", "cuda"):
        t = time.perf_counter()
        try:
            lgb.LGBMClassifier(n_estimators=rounds, device_type=dev, verbose=-1).fit(X, y)
            out[dev] = {"seconds": time.perf_counter() - t}
        except Exception as exc:
            out[dev] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        print(f"learner {dev}: {out[dev]}", flush=True)
    return {"rows": rows, "features": features, "rounds": rounds, **out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True, help="folder of 1024x1024 <id>_sat.* tiles")
    ap.add_argument("--limit", type=int, default=20, help="tiles per backend (default 20)")
    ap.add_argument("--out", default="bench_out/gpu.json")
    ap.add_argument("--masks", default="bench_out/gpu_masks", help="where both backends' masks go")
    ap.add_argument("--no-tests", action="store_true", help="skip tests/test_gpu.py")
    ap.add_argument("--kinds", action="store_true",
                    help="also time each image-feature entry of the spec on both backends")
    ap.add_argument("--learners", action="store_true",
                    help="also time LightGBM's cpu, gpu (OpenCL) and cuda learners")
    ap.add_argument("--throughput", nargs="*", default=None, metavar="CONFIG",
                    help="also time predict_folder on the GPU per config: threads=N and "
                         "dask=local:N (default: threads=1 threads=2 threads=4)")
    ap.add_argument("--copies", type=int, default=3,
                    help="copies of each tile in the throughput folder (default 3)")
    a = ap.parse_args(argv)

    ok, why = gpu_available()
    if not ok:
        print(f"bench_gpu: no working GPU here ({why})", file=sys.stderr)
        return 2
    import cupy

    dev = cupy.cuda.runtime.getDeviceProperties(0)
    device = {"name": dev["name"].decode(), "memory_gib": round(dev["totalGlobalMem"] / 2**30, 1),
              "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
              "driver": cupy.cuda.runtime.driverGetVersion(), "cupy": cupy.__version__,
              "cpu_cores": os.cpu_count(), "python": platform.python_version()}
    print("device:", json.dumps(device))
    result = {"date": datetime.date.today().isoformat(), "device": device,
              "model": str(Path(a.model).resolve()), "command": " ".join(sys.argv)}

    if not a.no_tests:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(ROOT / "tests" / "test_gpu.py")], cwd=ROOT,
                              capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-15:]
        print("\n".join(tail))
        result["tests"] = {"exit_code": proc.returncode, "summary": tail[-1] if tail else "",
                           "seconds": time.perf_counter() - t}

    model = RoadModel.load(a.model)
    images, _ = find_images(a.images)
    images = dict(sorted(images.items())[: a.limit])
    if a.kinds:
        rgb = read_image(next(iter(images.values())))
        result["feature_kinds_s"] = {d: feature_kinds(model.card["spec"], rgb, d)
                                     for d in ("gpu", "cpu")}
        for name in result["feature_kinds_s"]["gpu"]:
            print(f"features {name}: gpu {result['feature_kinds_s']['gpu'][name]:.4f} s, "
                  f"cpu {result['feature_kinds_s']['cpu'][name]:.4f} s", flush=True)
    if a.learners:
        result["learners"] = learners()
    masks = Path(a.masks)
    probs: dict = {"gpu": {}, "cpu": {}}
    for device_name in ("gpu", "cpu"):
        result[device_name] = run_backend(model, images, device_name, masks / device_name,
                                          probs[device_name])
    # The same maps at one fixed threshold: does the per-image threshold rule
    # amplify the backends' float differences?
    fixed = (model.card.get("validation") or {}).get("best_fixed_threshold", 0.5)
    at_fixed = {k: iou(postprocess(probs["gpu"][k], fixed, model.post, model.train_gsd),
                       postprocess(probs["cpu"][k], fixed, model.post, model.train_gsd))
                for k in sorted(images)}
    result["fixed_threshold"] = fixed
    result["gpu_cpu_mask_iou_at_fixed_threshold"] = at_fixed
    result["max_abs_probability_difference"] = {
        k: float(np.abs(probs["gpu"][k] - probs["cpu"][k]).max()) for k in sorted(images)}
    agreement = {}
    for k in sorted(images):
        g = read_image(masks / "gpu" / f"{k}_mask.png")[..., 0] > 127
        c = read_image(masks / "cpu" / f"{k}_mask.png")[..., 0] > 127
        agreement[k] = iou(g, c)
    result["gpu_cpu_mask_iou"] = agreement
    result["min_gpu_cpu_mask_iou"] = min(agreement.values())
    write_json_atomic(a.out, result)
    if a.throughput is not None:
        configs = a.throughput or ["threads=1", "threads=2", "threads=4"]
        result["throughput"] = throughput(model, images, masks / "throughput", a.copies,
                                          configs, masks / "gpu")
        write_json_atomic(a.out, result)

    print(f"\n| backend | tiles/s | " + " | ".join(f"{s} s" for s in STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    for name in ("gpu", "cpu"):
        r = result[name]
        print(f"| {name} | {r['tiles_per_s']:.2f} | "
              + " | ".join(f"{r['s_per_tile_by_stage'][s]:.3f}" for s in STAGES) + " |")
    print(f"GPU/CPU mask IoU: min {min(agreement.values()):.4f}, "
          f"mean {np.mean(list(agreement.values())):.4f} over {len(agreement)} tiles")
    print(f"at the fixed threshold {fixed}: min {min(at_fixed.values()):.4f}, "
          f"mean {np.mean(list(at_fixed.values())):.4f}; largest probability difference "
          f"{max(result['max_abs_probability_difference'].values()):.2e}")
    for config, r in result.get("throughput", {}).items():
        print(f"predict_folder on the GPU, {config}: {r['tiles_per_s']:.2f} tiles/s "
              f"({r['tiles']} tiles, {r['failed']} failed, masks vs single-image min IoU "
              f"{r['min_mask_iou_vs_single']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
