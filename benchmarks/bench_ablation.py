#!/usr/bin/env python
"""Which feature families, scales and model sizes the validation split supports.

    python benchmarks/split.py        # once: bench_out/split/{train,val}
    roadfeat extract --images bench_out/split/train --out features/train302
    python benchmarks/bench_ablation.py --features features/train302 \\
        --val bench_out/split/val --out bench_out/ablation.json [--variants base no-gabor ...]

(The sixteenth session's table in docs/RESULTS.md was measured against the
defaults of the day: ``--rounds 400 --num-leaves 31 --learning-rate 0.05``,
on features extracted with the spec now kept as
``benchmarks/specs/base/default-86.json``; the nineteenth session's
``no-KIND<scale>`` and later ``add-`` variants against the defaults of its
start (``benchmarks/candidates/lines81-tophat.json``), on
``features/train302v3``; the twentieth session's against the 119-feature
default, on ``features/train302v4``. The base spec is always the features folder's
own; an added entry that it already holds is refused.)

A first-stage proxy, so that one variant costs about two minutes instead of
a 20-minute retraining: each variant is **one** LightGBM fit of the first
stage (the default parameters unless ``--num-leaves``, ``--learning-rate``
or the variant changes them, a fixed number of rounds, no folds, no
context stage, no calibration, no post-processing) on the training rows
that ``train`` would use (the same row budget and seed; some variants
change the budget or the share of road rows), scored on every
second working pixel of every validation tile in both directions (65,536
pixels per 1024² tile, labels as ``extract`` makes them).

A variant is the default spec with feature entries removed or added, one
scale of an entry removed, or the default LightGBM parameters changed. Columns that the features folder
lacks (added entries) are computed from the training images at the
sampled pixels. Prints, per variant, pooled average precision, the mean
per-image IoU at the variant's best single threshold (the same rule for
every variant, chosen on these tiles, so optimistic in level but fair
between variants), the paired per-tile difference from ``base`` (mean ±
standard error, wins/losses) and the compiled trees' (lleaves) predict time
per pixel, measured in the same run. Decisions from it are confirmed by a full
``train`` + ``bench_val.py`` before they become a default.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import get_backend, to_host  # noqa: E402
from roadfeat.compiled_trees import engine_predictor  # noqa: E402
from roadfeat.extract import kept_rows, load_rows  # noqa: E402
from roadfeat.features.spec import KINDS, SpecError, compute_features  # noqa: E402
from roadfeat.features.spec import feature_names  # noqa: E402
from roadfeat.io import find_images, mask_path_for, read_image, read_json, read_mask  # noqa: E402
from roadfeat.io import write_json_atomic  # noqa: E402
from roadfeat.progress import progress  # noqa: E402
from roadfeat.sampling import downsample_labels, image_rng  # noqa: E402
from roadfeat.train import ROW_BUDGET, GBMParams, fit, rows_per_image  # noqa: E402

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


def _drop(kind):
    return {"drop": [kind]}


def _trim(kind, scale):
    return {"trim": {kind: [scale]}}


#: The smallest scale of each family of the 101-feature default (lines81-tophat.json).
SMALLEST = {"gaussian": 2, "local_std": 2, "gradient": 1, "hessian": 1, "gabor": 4,
            "line": 21, "line_morph": 21, "disc_tophat": 5}

#: name -> {"drop": kinds to remove, "trim": {kind: scales to remove from its entries},
#: "add": entries to append, "gbm": parameter changes,
#: "rounds": boosting rounds instead of --rounds, "row_budget": rows in all instead of
#: train's, "pos_fraction": share of road rows per image instead of extract's}
VARIANTS: dict[str, dict] = {
    "base": {},
    **{f"no-{k}": _drop(k) for k in ("colour", "gaussian", "local_std", "gradient", "hessian",
                                   "gabor", "line", "line_morph")},
    "add-gaussian32-std16": {"add": [
        {"kind": "gaussian", "sources": ["lum", "sat", "exg", "lab_b"], "sigmas": [32]},
        {"kind": "local_std", "sources": ["lum"], "sigmas": [16]}]},
    "add-hessian8-gabor32": {"add": [
        {"kind": "hessian", "sources": ["lum"], "sigmas": [8]},
        {"kind": "gabor", "sources": ["lum"], "wavelengths": [32], "n_orient": 8}]},
    "add-tophat5-9-15": {"add": [
        {"kind": "disc_tophat", "sources": ["lum"], "diameters": [5, 9, 15]}]},
    "add-line81": {"add": [
        {"kind": "line", "sources": ["lum", "sat", "ridge_bright"], "lengths": [81],
         "n_orient": 12}]},
    "rounds400": {"rounds": 400},
    "rounds800": {"rounds": 800},
    "lr0.1": {"gbm": {"learning_rate": 0.1}},
    "leaves63": {"gbm": {"num_leaves": 63}},
    "leaves127": {"gbm": {"num_leaves": 127}},
    "leaves63-lr0.1": {"gbm": {"num_leaves": 63, "learning_rate": 0.1}},
    "leaves127-lr0.1": {"gbm": {"num_leaves": 127, "learning_rate": 0.1}},
    "leaves127-lr0.1-r250": {"gbm": {"num_leaves": 127, "learning_rate": 0.1}, "rounds": 250},
    "leaves255-lr0.1-r200": {"gbm": {"num_leaves": 255, "learning_rate": 0.1}, "rounds": 200},
    "rows4M": {"row_budget": 4_000_000},
    "pos0.3": {"pos_fraction": 0.3},
    "pos0.6": {"pos_fraction": 0.6},
    "pos0.7": {"pos_fraction": 0.7},
    **{f"no-{k}{s:g}": _trim(k, s) for k, s in SMALLEST.items()},
    "no-smallest": {"trim": {k: [s] for k, s in SMALLEST.items()}},
    "add-pantex4-16": {"add": [{"kind": "pantex", "sources": ["lum"], "sigmas": [4, 16]}]},
    "add-line_morph81": {"add": [
        {"kind": "line_morph", "sources": ["lum"], "lengths": [81], "n_orient": 16}]},
    "add-line_morph-sat": {"add": [
        {"kind": "line_morph", "sources": ["sat"], "lengths": [21, 41], "n_orient": 16}]},
    "add-tophat21-31": {"add": [
        {"kind": "disc_tophat", "sources": ["lum"], "diameters": [21, 31]}]},
    "add-line_morph-exg": {"add": [
        {"kind": "line_morph", "sources": ["exg"], "lengths": [21, 41], "n_orient": 16}]},
    "add-line_morph-labb": {"add": [
        {"kind": "line_morph", "sources": ["lab_b"], "lengths": [21, 41], "n_orient": 16}]},
    "add-line-exg": {"add": [
        {"kind": "line", "sources": ["exg"], "lengths": [21, 41], "n_orient": 12}]},
    "add-gabor-sat": {"add": [
        {"kind": "gabor", "sources": ["sat"], "wavelengths": [8, 16], "n_orient": 8}]},
    # The regularisers chosen on 8 to 10 training tiles, measured again with many.
    "plain-trees": {"gbm": {"extra_trees": False}},
    "colsample0.8": {"gbm": {"colsample_bytree": 0.8}},
    "minchild20": {"gbm": {"min_child_samples": 20}},
    "minchild400": {"gbm": {"min_child_samples": 400}},
}


def variant_spec(base: dict, v: dict) -> dict:
    spec = copy.deepcopy(base)
    for e in spec["features"]:
        gone = v.get("trim", {}).get(e["kind"], ())
        if gone:
            key = KINDS[e["kind"]].scale
            e[key] = [s for s in e[key] if s not in gone]
    spec["features"] = [e for e in spec["features"] if e["kind"] not in v.get("drop", ())
                        and e.get(KINDS[e["kind"]].scale, True)]
    spec["features"] += copy.deepcopy(v.get("add", []))
    spec.pop("context", None)
    spec.pop("support", None)
    return spec


def added_spec(base: dict, entries) -> dict:
    return {"version": base["version"], "working_gsd": base["working_gsd"],
            "features": list(entries)}


def training_matrix(features_dir, manifest, extra_entries, backend):
    """Every extracted row, with the added entries' columns, and each row's image."""
    ids = sorted(manifest["images"])
    X, y, groups, idx = load_rows(features_dir, ids)
    names = list(manifest["feature_names"])
    if extra_entries:
        extra = added_spec(manifest["spec"], extra_entries)
        cols = np.empty((len(y), len(feature_names(extra))), np.float32)
        for g, k in enumerate(progress(ids, "added features of the training images")):
            stack = to_host(compute_features(read_image(manifest["images"][k]["image"]), extra,
                                             backend, float(manifest["gsd"])))
            sel = groups == g
            cols[sel] = stack.reshape(stack.shape[0], -1)[:, idx[sel]].T
        X = np.hstack([X, cols])
        names += feature_names(extra)
    return X, y, groups, ids, names


def training_rows(y, groups, ids, seed, budget=ROW_BUDGET, pos_fraction=None) -> np.ndarray:
    """Indices of the rows a variant trains on.

    With the default budget and no ``pos_fraction``, the rows ``train``
    keeps (the same seeded subset of each image, as in ``load_rows``). With
    ``pos_fraction``, each image's share holds that fraction of road rows
    where it has them, the rest background.
    """
    per_image = rows_per_image(len(ids), budget)
    bounds = np.searchsorted(groups, np.arange(len(ids) + 1))
    out = []
    for g, k in enumerate(ids):
        rows = np.arange(bounds[g], bounds[g + 1])
        if pos_fraction is None:
            keep = kept_rows(k, len(rows), per_image, seed)
            rows = rows if keep is None else rows[keep]
        else:
            rng = image_rng(k, seed)
            pos, neg = rows[y[rows] == 1], rows[y[rows] == 0]
            n_pos = min(len(pos), round(per_image * pos_fraction))
            n_neg = min(len(neg), per_image - n_pos)
            rows = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False),
                                           rng.choice(neg, n_neg, replace=False)]))
        out.append(rows)
    return np.concatenate(out)


def validation_matrix(val_dir, spec, backend, gsd):
    """Every second working pixel of each validation tile: (F, n), labels, tile of each."""
    images, _ = find_images(val_dir)
    cols, labels, tiles = [], [], []
    for t, (k, path) in enumerate(progress(sorted(images.items()), "validation features")):
        rgb = read_image(path)
        stack = to_host(compute_features(rgb, spec, backend, gsd))[:, ::2, ::2]
        truth = downsample_labels(read_mask(mask_path_for(path), rgb.shape),
                                  (stack.shape[1] * 2, stack.shape[2] * 2))[::2, ::2]
        cols.append(stack.reshape(stack.shape[0], -1))
        labels.append(truth.ravel())
        tiles.append(np.full(truth.size, t, np.int32))
    return (np.ascontiguousarray(np.concatenate(cols, axis=1)), np.concatenate(labels),
            np.concatenate(tiles), sorted(images))


def scores(prob, truth, tiles, n_tiles) -> dict:
    from sklearn.metrics import average_precision_score

    per_t = []
    for t in THRESHOLDS:
        pred = prob >= t
        inter = np.bincount(tiles, pred & truth, n_tiles)
        union = np.bincount(tiles, pred | truth, n_tiles)
        per_t.append(np.where(union > 0, inter / np.maximum(union, 1), 1.0))
    means = [p.mean() for p in per_t]
    best = int(np.argmax(means))
    return {"average_precision": float(average_precision_score(truth, prob)),
            "best_threshold": float(THRESHOLDS[best]), "mean_iou": float(means[best]),
            "per_tile": per_t[best].tolist()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", required=True, help="features folder of the training tiles")
    ap.add_argument("--val", required=True, help="folder of validation <id>_sat.jpg/_mask.png")
    ap.add_argument("--out", required=True, help="JSON of the results")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS),
                    help=f"which (default all): {', '.join(VARIANTS)}")
    ap.add_argument("--rounds", type=int, default=GBMParams.n_estimators,
                    help="boosting rounds of every variant that does not set its own")
    ap.add_argument("--num-leaves", type=int, default=GBMParams.num_leaves,
                    help="leaves per tree of the base (variants may change it)")
    ap.add_argument("--learning-rate", type=float, default=GBMParams.learning_rate,
                    help="learning rate of the base (variants may change it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true",
                    help="keep the variants already in --out (same features, split, rounds "
                         "and seed) instead of fitting them again")
    a = ap.parse_args(argv)
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}")
    backend = get_backend("cpu")
    features_dir = Path(a.features)
    manifest = read_json(features_dir / "manifest.json")
    base_spec = manifest["spec"]
    for v in a.variants:
        try:
            feature_names(variant_spec(base_spec, VARIANTS[v]))
        except SpecError as exc:
            ap.error(f"variant {v} does not fit the spec of {features_dir}: {exc}")
    extra_entries = [e for v in a.variants for e in VARIANTS[v].get("add", [])]
    X, y, groups, ids, names = training_matrix(features_dir, manifest, extra_entries, backend)
    union = variant_spec(base_spec, {"add": extra_entries})
    V, truth, tiles, val_ids = validation_matrix(a.val, union, backend, float(manifest["gsd"]))
    assert feature_names(union) == names, "validation and training columns differ"
    col = {n: i for i, n in enumerate(names)}
    print(f"{len(y)} extracted rows, {len(names)} columns; {truth.size} validation pixels of "
          f"{len(val_ids)} tiles", file=sys.stderr)

    out = {"date": datetime.date.today().isoformat(), "rounds": a.rounds, "seed": a.seed,
           "num_leaves": a.num_leaves, "learning_rate": a.learning_rate,
           "features": str(features_dir), "val": str(a.val), "val_ids": val_ids, "variants": {}}
    if a.resume and Path(a.out).exists():
        old = read_json(a.out)
        same = all(old.get(k, out[k]) == out[k] for k in ("rounds", "seed", "num_leaves",
                                                            "learning_rate", "features", "val",
                                                            "val_ids"))
        if not same:
            ap.error(f"{a.out} was made with other features, split, base parameters or seed")
        out["variants"] = old["variants"]
    for name in a.variants:
        if name in out["variants"]:
            continue
        v = VARIANTS[name]
        cols = [col[n] for n in feature_names(variant_spec(base_spec, v))]
        params = replace(GBMParams(), num_leaves=a.num_leaves, learning_rate=a.learning_rate,
                         **v.get("gbm", {}))
        t0 = time.perf_counter()
        rounds = v.get("rounds", a.rounds)
        rows = training_rows(y, groups, ids, a.seed, v.get("row_budget", ROW_BUDGET),
                             v.get("pos_fraction"))
        booster, _ = fit(X[np.ix_(rows, cols)], y[rows], params, a.seed, "cpu",
                         n_estimators=rounds, desc=name, quiet=False)
        t_fit = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            predict = engine_predictor("lleaves", booster, tmp)
            Vc = np.ascontiguousarray(V[cols])
            t0 = time.perf_counter()
            prob = predict(Vc)
            t_predict = time.perf_counter() - t0
        r = scores(prob, truth, tiles, len(val_ids))
        r.update(n_features=len(cols), rounds=rounds, rows=len(rows), fit_s=round(t_fit, 1),
                 predict_us_per_pixel=round(t_predict / len(prob) * 1e6, 3),
                 gbm=v.get("gbm", {}))
        if name != "base" and "base" in out["variants"]:
            d = np.array(r["per_tile"]) - np.array(out["variants"]["base"]["per_tile"])
            r["vs_base"] = {"mean": float(d.mean()),
                            "se": float(d.std(ddof=1) / np.sqrt(len(d))),
                            "wins": int((d > 0).sum()), "losses": int((d < 0).sum())}
        out["variants"][name] = r
        vs = r.get("vs_base")
        print(f"{name:26s} F={len(cols):3d} AP {r['average_precision']:.4f}  mean IoU "
              f"{r['mean_iou']:.4f} @ {r['best_threshold']:.2f}"
              + (f"  vs base {vs['mean']:+.4f} ± {vs['se']:.4f} ({vs['wins']}/{vs['losses']})"
                 if vs else "") + f"  fit {t_fit:.0f} s, predict {t_predict / len(prob) * 1e6:.2f} µs/px",
              flush=True)
        write_json_atomic(a.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
