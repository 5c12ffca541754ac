#!/usr/bin/env python
"""Cross-validated quality and speed of roadfeat beside the classical peer.

The peer is scikit-image's trainable segmentation as its gallery shows it:
``feature.multiscale_basic_features`` on RGB with sigma 1 to 16 and a
``RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05,
class_weight="balanced")`` trained on every pixel of the training images.

Cross-validation is by image: the images are split into K folds; each fold is
predicted by models trained on the other folds, so every image is scored once
while held out. Both methods run in the same process, on the same folds.

    python benchmarks/bench_cv.py --data ../shared/data/deepglobe/train --folds 5

Prints a Markdown table and writes JSON (per-image IoU, times) to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.extract import Sampling, extract_image, spec_key  # noqa: E402
from roadfeat.features import default_spec, validate_spec  # noqa: E402
from roadfeat.io import (find_images, mask_path_for, read_image, read_mask,  # noqa: E402
                         write_json_atomic, write_mask, write_npz_atomic)
from roadfeat.metrics import confusion, summarise  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.postprocess import PostParams  # noqa: E402
from roadfeat.train import GBMParams, train  # noqa: E402


def folds_of(ids, k, seed=0):
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    return [sorted(order[i::k]) for i in range(k)]


# ---------------------------------------------------------------- roadfeat
def roadfeat_extract(images, spec, backend, sampling, gsd, work: Path):
    """Extract every image once into a features folder; return per-image seconds."""
    names = validate_spec(spec)
    key = spec_key(spec, sampling, gsd)
    entries, secs = {}, {}
    for k, path in images.items():
        t = time.perf_counter()
        rows = extract_image(path, mask_path_for(path), spec, backend, sampling, gsd, k)
        write_npz_atomic(work / "shards" / f"{k}.npz", key=np.array(key), **rows)
        secs[k] = time.perf_counter() - t
        entries[k] = {"image": str(path), "mask": str(mask_path_for(path)),
                      "shape": [int(s) for s in rows["shape"]], "n": int(len(rows["y"])),
                      "n_road": int(rows["y"].sum())}
    write_json_atomic(work / "manifest.json", {
        "key": key, "spec": spec, "feature_names": names, "gsd": gsd,
        "sampling": sampling.__dict__, "images": entries, "failed": {},
        "n_rows": sum(e["n"] for e in entries.values())})
    return secs


def run_roadfeat(images, folds, args, work: Path, spec=None, post=None, gbm=None, label="roadfeat"):
    backend = get_backend("cpu")
    spec = spec or default_spec()
    sampling = Sampling(args.pixels_per_image, 0.5, args.seed)
    feat_dir = work / f"features-{label}"
    ext_secs = roadfeat_extract(images, spec, backend, sampling, args.gsd, feat_dir)
    per_image, train_secs, pred_secs = {}, [], []
    for i, test_ids in enumerate(folds):
        train_ids = sorted(set(images) - set(test_ids))
        t = time.perf_counter()
        model = train(feat_dir, work / f"model-{label}-{i}", backend,
                      params=gbm or GBMParams(), post=post or PostParams(), seed=args.seed,
                      quiet=True, image_ids=train_ids)
        train_secs.append(time.perf_counter() - t + sum(ext_secs[k] for k in train_ids))
        model = RoadModel.load(work / f"model-{label}-{i}")
        for k in test_ids:
            t = time.perf_counter()
            rgb = read_image(images[k])
            mask = model.predict(rgb, backend, args.gsd)
            write_mask(work / "pred" / label / f"{k}_mask.png", mask)
            pred_secs.append(time.perf_counter() - t)
            per_image[k] = confusion(mask, read_mask(mask_path_for(images[k]), rgb.shape))
    return per_image, train_secs, pred_secs


# -------------------------------------------------------------------- peer
def peer_features(rgb):
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(rgb, channel_axis=-1, sigma_min=1, sigma_max=16)


def run_peer(images, folds, args):
    from sklearn.ensemble import RandomForestClassifier

    feats, feat_secs, labels = {}, {}, {}
    for k, path in images.items():
        t = time.perf_counter()
        rgb = read_image(path)
        f = peer_features(rgb)
        feat_secs[k] = time.perf_counter() - t
        feats[k] = f.reshape(-1, f.shape[-1])
        labels[k] = read_mask(mask_path_for(path), rgb.shape).ravel()
    per_image, train_secs, pred_secs = {}, [], []
    for test_ids in folds:
        train_ids = sorted(set(images) - set(test_ids))
        t = time.perf_counter()
        X = np.concatenate([feats[k] for k in train_ids])
        y = np.concatenate([labels[k] for k in train_ids])
        clf = RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05,
                                     class_weight="balanced", n_jobs=-1, random_state=args.seed)
        clf.fit(X, y)
        del X, y
        train_secs.append(time.perf_counter() - t + sum(feat_secs[k] for k in train_ids))
        for k in test_ids:
            t = time.perf_counter()
            rgb = read_image(images[k])
            f = peer_features(rgb)
            pred = clf.predict(f.reshape(-1, f.shape[-1])).reshape(rgb.shape[:2]).astype(bool)
            pred_secs.append(time.perf_counter() - t)
            per_image[k] = confusion(pred, labels[k].reshape(rgb.shape[:2]))
    return per_image, train_secs, pred_secs


def summary_row(name, per_image, train_secs, pred_secs):
    s = summarise(list(per_image.values()))
    return {"method": name, **s, "train_s_per_fold": float(np.mean(train_secs)),
            "predict_s_per_tile": float(np.median(pred_secs)),
            "per_image_iou": {k: c.iou for k, c in sorted(per_image.items())}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/deepglobe/train")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pixels-per-image", type=int, default=20000)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--out", default="bench_out/cv.json")
    args = ap.parse_args(argv)

    images, errors = find_images(args.data)
    images = {k: p for k, p in images.items() if mask_path_for(p).exists()}
    folds = folds_of(sorted(images), args.folds, args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(summary_row("roadfeat", *run_roadfeat(images, folds, args, work)))
        if not args.skip_peer:
            rows.append(summary_row("skimage peer", *run_peer(images, folds, args)))
    result = {"data": str(args.data), "folds": folds, "threads": os.cpu_count(),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "rows": rows}
    write_json_atomic(args.out, result)
    print(f"\n{len(images)} images, {args.folds}-fold CV by image, {os.cpu_count()} cores\n")
    print("| method | mean IoU | pooled IoU | precision | recall | train s/fold | predict s/tile |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['mean_iou']:.4f} | {r['pooled_iou']:.4f} | {r['precision']:.4f} "
              f"| {r['recall']:.4f} | {r['train_s_per_fold']:.1f} | {r['predict_s_per_tile']:.2f} |")
    if len(rows) == 2:
        a, b = rows
        print(f"\nratio roadfeat/peer: mean IoU {a['mean_iou'] / b['mean_iou']:.2f}x, "
              f"predict time {a['predict_s_per_tile'] / b['predict_s_per_tile']:.2f}x, "
              f"train time {a['train_s_per_fold'] / b['train_s_per_fold']:.2f}x")
    print("\nper-image IoU:")
    for k in sorted(images):
        print("  " + k.ljust(22) + "  ".join(f"{r['method']}={r['per_image_iou'][k]:.3f}" for r in rows))


if __name__ == "__main__":
    main()
