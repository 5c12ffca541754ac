#!/usr/bin/env python
"""Predict time per 1024² tile, roadfeat beside the scikit-image peer, in one run.

Each tile is predicted from decoding to the written mask by roadfeat's real
per-image path (``predict_one``), once with compiled trees and once with
LightGBM's own predict, and by the peer of ``bench_cv.py`` (scikit-image's
``multiscale_basic_features`` and a random forest trained on ``--peer-train``
tiles), one after another on the same tile, so that the ratios share the
machine's noise. A second pass times roadfeat's stages. A third predicts the
whole folder with one and with two images at once, for both methods.

    python benchmarks/bench_speed.py --tiles bench_out/split/val --n 8 \\
        --out bench_out/speed.json

The model is the shipped default unless ``--model`` names another. Prints
Markdown tables and writes one JSON.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_cv import peer_features  # noqa: E402
from bench_scaling import STAGES, time_one  # noqa: E402

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.compiled_trees import ENGINES, attach, engine_of, engine_predictor  # noqa: E402
from roadfeat.features import compute_context, compute_features  # noqa: E402
from roadfeat.io import find_images, mask_path_for, read_image, read_mask, write_mask  # noqa: E402
from roadfeat.io import write_json_atomic  # noqa: E402
from roadfeat.model import DEFAULT_MODEL, RoadModel  # noqa: E402
from roadfeat.predict import predict_one  # noqa: E402


def train_peer(paths, threads: int, seed: int = 0):
    from sklearn.ensemble import RandomForestClassifier

    X, y = [], []
    for p in paths:
        rgb = read_image(p)
        f = peer_features(rgb)
        X.append(f.reshape(-1, f.shape[-1]))
        y.append(read_mask(mask_path_for(p), rgb.shape).ravel())
    clf = RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05,
                                 class_weight="balanced", n_jobs=threads, random_state=seed)
    return clf.fit(np.concatenate(X), np.concatenate(y))


def peer_predict(clf, path, out: Path) -> None:
    rgb = read_image(path)
    f = peer_features(rgb)
    pred = clf.predict(f.reshape(-1, f.shape[-1])).reshape(rgb.shape[:2]).astype(bool)
    write_mask(out, pred)


def bench_engines(model, paths, backend, repeats: int = 3):
    """Each tree engine on the real feature matrices of ``paths``: seconds per megapixel."""
    spec = model.card["spec"]
    stage1, stage2 = [], []
    for p in paths:
        stack = compute_features(read_image(p), spec, backend, model.train_gsd)
        S = stack.reshape(stack.shape[0], -1)
        prob = model.booster.predict(S.T).astype(np.float32).reshape(stack.shape[1:])
        stage1.append(S)
        if model.context_booster is not None:
            both = np.concatenate([stack, compute_context(prob, spec)])
            stage2.append(both.reshape(both.shape[0], -1))
    rows = []
    stages = [("stage 1", model.booster, stage1), ("stage 2", model.context_booster, stage2)]
    for name in [e.name for e in ENGINES] + ["lightgbm"]:
        for stage, booster, mats in stages:
            if booster is None:
                continue
            t = time.perf_counter()
            try:
                # A fresh folder, so that the build time is a compile, not a cache hit.
                with tempfile.TemporaryDirectory() as tmp:
                    predict = engine_predictor(name, booster, Path(tmp))
                predict(mats[0][:, :64])
            except Exception as exc:  # an engine that does not run here is reported, not fatal
                rows.append({"engine": name, "stage": stage, "error": f"{type(exc).__name__}: {exc}"[:200],
                             "build_s": float("nan"), "s_per_mpx": float("nan"), "max_diff": float("nan")})
                continue
            build = time.perf_counter() - t
            secs, diff = [], 0.0
            for S in mats:
                ref = booster.predict(S.T)
                best = min(timed(predict, S) for _ in range(repeats))
                secs.append(best / (S.shape[1] / 1e6))
                diff = max(diff, float(np.max(np.abs(predict(S) - ref))))
            rows.append({"engine": name, "stage": stage, "build_s": build,
                         "s_per_mpx": statistics.median(secs), "max_diff": diff})
            print(f"{name} {stage}: {rows[-1]['s_per_mpx']:.3f} s/Mpx", flush=True)
    return rows


def bench_folder(model, clf, tiles, reps: int, threads=(1, 2)) -> dict:
    """Seconds per tile over a whole folder, with 1 and 2 images at once, for both methods.

    roadfeat runs ``predict_folder`` (decode to written mask); the peer runs
    ``peer_predict`` over the same tiles through the same thread pool. The
    configurations alternate within each repetition, in reverse order every
    other repetition, so they share the noise and neither always goes first.
    """
    from roadfeat.predict import predict_folder
    from roadfeat.runner import map_images

    out = {f"{name} threads={n}": [] for name in ("roadfeat", "peer") for n in threads}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for k, path in tiles:
            (folder / path.name).symlink_to(path.resolve())
        for rep in range(reps):
            for n in (threads if rep % 2 == 0 else threads[::-1]):
                dest = Path(tmp) / f"roadfeat-{rep}-{n}"
                t = timed(predict_folder, model, folder, dest, get_backend("cpu"), None, True,
                          None, threads=n)
                out[f"roadfeat threads={n}"].append(t / len(tiles))
                jobs = {k: (clf, path, Path(tmp) / f"{k}_peer{n}.png") for k, path in tiles}
                t = timed(map_images, peer_predict, jobs, None, "peer", True, n)
                out[f"peer threads={n}"].append(t / len(tiles))
                print(f"folder rep {rep}, threads={n}: roadfeat "
                      f"{out[f'roadfeat threads={n}'][-1]:.2f} s/tile, peer "
                      f"{out[f'peer threads={n}'][-1]:.2f} s/tile", flush=True)
    return {"median": {k: statistics.median(v) for k, v in out.items()}, "per_rep": out}


def timed(fn, *args, **kw) -> float:
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--tiles", default="bench_out/split/val", help="folder of 1024² <id>_sat.jpg")
    ap.add_argument("--n", type=int, default=8, help="tiles to time")
    ap.add_argument("--peer-train", default="../shared/data/deepglobe/train")
    ap.add_argument("--peer-tiles", type=int, default=4, help="tiles the peer trains on")
    ap.add_argument("--folder-reps", type=int, default=2,
                    help="repetitions of the whole-folder comparison (0: skip it)")
    ap.add_argument("--out", default="bench_out/speed.json")
    args = ap.parse_args(argv)
    threads = os.cpu_count() or 1
    backend = get_backend("cpu")

    compiled = RoadModel.load(args.model)
    plain = RoadModel.load(args.model)
    for b in (plain.booster, plain.context_booster):
        if b is not None:
            attach(b, None)  # LightGBM's own predict
    tiles = list(find_images(args.tiles)[0].items())[: args.n]
    peer_paths = [p for k, p in find_images(args.peer_train)[0].items()
                  if k not in dict(tiles)][: args.peer_tiles]
    t = time.perf_counter()
    clf = train_peer(peer_paths, threads)
    print(f"peer trained on {len(peer_paths)} tiles in {time.perf_counter() - t:.1f} s", flush=True)

    # First use compiles the trees (or loads them from the cache): timed apart.
    warm = read_image(tiles[0][1])[:256, :256]
    first = {"compiled": timed(compiled.probability, warm, backend),
             "lightgbm": timed(plain.probability, warm, backend)}
    engines = {"compiled": engine_of(compiled.booster), "lightgbm": engine_of(plain.booster)}
    print(f"first use: compiled {first['compiled']:.1f} s, lightgbm {first['lightgbm']:.1f} s; "
          f"engines {engines}",
          flush=True)

    runs = {"roadfeat compiled": [], "roadfeat lightgbm": [], "peer": []}
    stages = {"roadfeat compiled": [], "roadfeat lightgbm": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for k, path in tiles:
            target = {"mask": out / f"{k}_mask.png"}
            runs["roadfeat compiled"].append(timed(predict_one, compiled, path, target, "cpu", None))
            runs["roadfeat lightgbm"].append(timed(predict_one, plain, path, target, "cpu", None))
            runs["peer"].append(timed(peer_predict, clf, path, out / f"{k}_peer.png"))
            rgb = read_image(path)
            stages["roadfeat compiled"].append(time_one(compiled, rgb, backend, compiled.train_gsd))
            stages["roadfeat lightgbm"].append(time_one(plain, rgb, backend, plain.train_gsd))
            print(f"{k}: " + ", ".join(f"{n} {r[-1]:.2f} s" for n, r in runs.items()), flush=True)

    folder = bench_folder(compiled, clf, tiles, args.folder_reps) if args.folder_reps else {}
    engine_rows = bench_engines(compiled, [p for _, p in tiles[:3]], backend)
    med = {n: statistics.median(r) for n, r in runs.items()}
    print(f"\n{threads} cores, {len(tiles)} tiles of {args.tiles}, model {args.model}\n")
    print("| method | median s per tile | / peer (same run) |")
    print("|---|---|---|")
    for n, m in med.items():
        print(f"| {n} | {m:.2f} | {m / med['peer']:.2f} |")
    if folder:
        best_peer = min(v for k, v in folder["median"].items() if k.startswith("peer"))
        print(f"\n| whole folder ({args.folder_reps} reps, median) | s per tile | / peer's best |")
        print("|---|---|---|")
        for n, m in folder["median"].items():
            print(f"| {n} | {m:.2f} | {m / best_peer:.2f} |")
    per_stage = {n: {s: statistics.median(st[s] for st in v) for s in STAGES}
                 for n, v in stages.items()}
    print("\n| roadfeat | " + " | ".join(STAGES) + " |")
    print("|---" * (len(STAGES) + 1) + "|")
    for n, st in per_stage.items():
        print(f"| {n} | " + " | ".join(f"{st[s]:.3f}" for s in STAGES) + " |")
    print("\n| trees | stage | compile or load s | s per Mpx | max abs diff to LightGBM |")
    print("|---|---|---|---|---|")
    for r in engine_rows:
        print(f"| {r['engine']} | {r['stage']} | {r['build_s']:.1f} | {r['s_per_mpx']:.3f} | "
              f"{r['max_diff']:.1e} |")
    write_json_atomic(Path(args.out), {
        "date": datetime.date.today().isoformat(), "cores": threads,
        "machine": platform.processor() or platform.machine(), "model": args.model,
        "tiles": [k for k, _ in tiles], "peer_train": [str(p) for p in peer_paths],
        "first_use_s": first, "engines": engines, "per_tile_s": runs, "median_s": med,
        "ratio_to_peer": {n: m / med["peer"] for n, m in med.items()},
        "stage_median_s": per_stage, "engines_per_mpx": engine_rows,
        "folder_s_per_tile": folder})


if __name__ == "__main__":
    main()
