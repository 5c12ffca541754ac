#!/usr/bin/env python
"""Cross-validated quality and speed of roadfeat beside the classical peer.

The peer is scikit-image's trainable segmentation as its gallery shows it:
``feature.multiscale_basic_features`` on RGB with sigma 1 to 16 and a
``RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05,
class_weight="balanced")`` trained on every pixel of the training images.

Cross-validation is by image: the images are split into K folds; each fold is
predicted by models trained on the other folds, so every image is scored once
while held out. Both methods run in the same process, on the same folds, so
their time ratio is fair on a noisy machine.

    python benchmarks/bench_cv.py --data ../shared/data/deepglobe/train --folds 5 \\
        --ablation --massachusetts ../shared/data/massachusetts

``--ablation`` adds feature-family, post-processing and self-training
ablations (``--ablation post``: only the steps after the default model's
support opening, which need no extra training);
``--overlays DIR`` writes a picture per held-out tile; ``--massachusetts
DIR`` trains on all of ``--data`` and scores the 1 m/pixel Massachusetts
pairs (features are computed at the model's working
resolution, so no other change is needed). Prints Markdown tables and writes
JSON (per-image IoU, per-stage times) to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.adapt import AdaptParams  # noqa: E402
from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.extract import Sampling, extract  # noqa: E402
from roadfeat.features import default_spec  # noqa: E402
from roadfeat.io import (find_images, mask_path_for, read_image, read_mask,  # noqa: E402
                         write_json_atomic, write_mask)
from roadfeat.metrics import confusion, summarise  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.postprocess import PostParams, postprocess  # noqa: E402
from roadfeat.report import write_overlay  # noqa: E402
from roadfeat.train import DEFAULT_FOLDS, GBMParams, train  # noqa: E402

STAGES = ("decode", "features", "boosting", "post-processing", "write")

# Ablation: which image-feature kinds each step keeps, and whether it has the
# context stage and the support opening. The default spec is the last step.
_LOCAL = {"colour", "gaussian", "local_std", "gradient"}
FEATURE_STEPS = {
    "colour + local statistics": (_LOCAL, False, False),
    "+ Hessian ridges + Gabor bank": (_LOCAL | {"hessian", "gabor"}, False, False),
    "+ long oriented line integrals": (_LOCAL | {"hessian", "gabor", "line"}, False, False),
    "+ line openings and closings": (None, False, False),
    "+ auto-context stage": (None, True, False),
}
# Post-processing ablation, scored on the default model's held-out probabilities
# without per-image self-training, at their own per-image thresholds; the last
# step adds the self-training.
POST_STEPS = {
    "threshold only": PostParams(min_area_m2=0, max_hole_m2=0, bridge=False),
    "+ small components / holes": PostParams(bridge=False),
    "+ bridging": PostParams(),
}


def folds_of(ids, k, seed=0):
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    return [sorted(order[i::k]) for i in range(k)]


def spec_with(kinds, context: bool, support: bool):
    """The default spec cut down to ``kinds`` (None: all), with or without the later stages."""
    spec = copy.deepcopy(default_spec())
    if kinds is not None:
        spec["features"] = [e for e in spec["features"] if e["kind"] in kinds]
    if not context:
        spec.pop("context")
    if not support:
        spec.pop("support")
    return spec


def gbm_params(args) -> GBMParams:
    return GBMParams(extra_trees=not args.plain_trees)


def sampling(args) -> Sampling:
    return Sampling(args.pixels_per_image, args.pos_fraction, args.seed)


def adapt_params(args, label="roadfeat") -> AdaptParams | None:
    """Self-training with --adapt (the CLI's train --adapt), except in the feature ablation steps."""
    return AdaptParams() if args.adapt and label not in FEATURE_STEPS else None


# ---------------------------------------------------------------- roadfeat
def run_roadfeat(data, images, folds, args, work: Path, spec=None, label="roadfeat",
                 post_steps=None):
    """CV of roadfeat; returns a result row (and post-ablation rows if asked)."""
    backend = get_backend("cpu")
    spec = spec or default_spec()
    feat_dir = work / f"features-{label}"
    t = time.perf_counter()
    extract(data, feat_dir, spec, backend, sampling(args), args.gsd, quiet=True)
    extract_s = (time.perf_counter() - t) / len(images)
    per_image, train_secs, stage_secs, plain_secs = {}, [], [], []
    post_counts = {name: {} for name in (post_steps or {})}
    for i, test_ids in enumerate(folds):
        train_ids = sorted(set(images) - set(test_ids))
        t = time.perf_counter()
        train(feat_dir, work / f"model-{label}-{i}", backend, seed=args.seed, quiet=True,
              image_ids=train_ids, threads=args.threads, folds=args.train_folds,
              params=gbm_params(args), adapt=adapt_params(args, label))
        train_secs.append(time.perf_counter() - t + extract_s * len(train_ids))
        model = RoadModel.load(work / f"model-{label}-{i}")
        for k in test_ids:
            st = {}
            t = time.perf_counter()
            rgb = read_image(images[k])
            st["decode"] = time.perf_counter() - t
            prob = model.probability(rgb, backend, args.gsd, timings=st)
            t = time.perf_counter()
            threshold = model.threshold_for(prob)
            mask = postprocess(prob, threshold, model.post, args.gsd)
            st["post-processing"] = time.perf_counter() - t
            t = time.perf_counter()
            write_mask(work / "pred" / label / f"{k}_mask.png", mask)
            st["write"] = time.perf_counter() - t
            stage_secs.append(st)
            truth = read_mask(mask_path_for(images[k]), rgb.shape)
            per_image[k] = confusion(mask, truth)
            if args.overlays and label == "roadfeat":
                write_overlay(Path(args.overlays) / f"{k}_overlay.png", rgb, mask, truth,
                              max_side=1024)
            if post_steps:
                sp = {"decode": st["decode"]}
                plain = model.without_adapt().probability(rgb, backend, args.gsd, timings=sp)
                t = time.perf_counter()
                t_plain = model.threshold_for(plain)
                postprocess(plain, t_plain, model.post, args.gsd)
                sp["post-processing"], sp["write"] = time.perf_counter() - t, st["write"]
                plain_secs.append(sp)
            for name, pp in (post_steps or {}).items():
                post_counts[name][k] = confusion(postprocess(plain, t_plain, pp, args.gsd),
                                                 truth)
    row = summary_row(label, per_image, train_secs, stage_secs)
    # Post-processing rows: the default model's times without the self-training.
    post_rows = [summary_row(name, c, train_secs, plain_secs) for name, c in post_counts.items()]
    return row, post_rows


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
    per_image, train_secs, stage_secs = {}, [], []
    for test_ids in folds:
        train_ids = sorted(set(images) - set(test_ids))
        t = time.perf_counter()
        X = np.concatenate([feats[k] for k in train_ids])
        y = np.concatenate([labels[k] for k in train_ids])
        clf = RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05,
                                     class_weight="balanced", n_jobs=args.threads,
                                     random_state=args.seed)
        clf.fit(X, y)
        del X, y
        train_secs.append(time.perf_counter() - t + sum(feat_secs[k] for k in train_ids))
        for k in test_ids:
            st = {}
            t = time.perf_counter()
            rgb = read_image(images[k])
            st["decode"] = time.perf_counter() - t
            t = time.perf_counter()
            f = peer_features(rgb)
            st["features"] = time.perf_counter() - t
            t = time.perf_counter()
            pred = clf.predict(f.reshape(-1, f.shape[-1])).reshape(rgb.shape[:2]).astype(bool)
            st["boosting"] = time.perf_counter() - t  # random forest here
            t = time.perf_counter()
            write_mask(Path(args.tmp) / "pred-peer" / f"{k}_mask.png", pred)
            st["write"] = time.perf_counter() - t
            stage_secs.append(st)
            per_image[k] = confusion(pred, labels[k].reshape(rgb.shape[:2]))
    return summary_row("skimage peer", per_image, train_secs, stage_secs)


# ------------------------------------------------------------ cross-domain
def run_transfer(data, images, target, args, work: Path):
    """Train on every image of ``data``; score the pairs in ``target`` at 1 m/pixel."""
    backend = get_backend("cpu")
    extract(data, work / "features-all", default_spec(), backend, sampling(args), args.gsd,
            quiet=True)
    model = train(work / "features-all", work / "model-all", backend, seed=args.seed,
                  quiet=True, threads=args.threads, folds=args.train_folds,
                  params=gbm_params(args), adapt=adapt_params(args))
    targets, _ = find_images(target)
    counts, secs = {}, []
    for k, path in sorted(targets.items()):
        rgb = read_image(path)
        t = time.perf_counter()
        mask = model.predict(rgb, backend, gsd=1.0)
        secs.append(time.perf_counter() - t)
        counts[k] = confusion(mask, read_mask(mask_path_for(path), rgb.shape))
    return summary_row("roadfeat, trained on DeepGlobe", counts, [0.0],
                       [{"features": s} for s in secs])


# ------------------------------------------------------------------ output
def contact_sheet(folder: Path, out: Path, width: int = 900) -> None:
    """All overlays of ``folder``, captioned, one under another, as one JPEG page."""
    from PIL import Image, ImageDraw

    rows = []
    for p in sorted(folder.glob("*_overlay.png")):
        im = Image.open(p).convert("RGB")
        im = im.resize((width, round(im.height * width / im.width)), Image.BILINEAR)
        cap = Image.new("RGB", (width, 22), "white")
        ImageDraw.Draw(cap).text((6, 5), p.name.replace("_overlay.png", "") + "   image | truth "
                                 "| prediction (green hit, red false alarm, blue miss)", fill="black")
        rows += [cap, im]
    page = Image.new("RGB", (width, sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        page.paste(r, (0, y))
        y += r.height
    out.parent.mkdir(parents=True, exist_ok=True)
    page.save(out, quality=80)


def summary_row(name, per_image, train_secs, stage_secs):
    s = summarise(list(per_image.values()))
    stages = {st: float(np.median([d.get(st, 0.0) for d in stage_secs])) for st in STAGES}
    return {"method": name, **s, "train_s_per_fold": float(np.mean(train_secs)),
            "predict_s_per_tile": float(np.median([sum(d.values()) for d in stage_secs])),
            "stage_s_per_tile": stages,
            "per_image_iou": {k: c.iou for k, c in sorted(per_image.items())}}


def quality_table(rows):
    out = ["| method | mean IoU | pooled IoU | precision | recall | train s/fold | predict s/tile |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['method']} | {r['mean_iou']:.4f} | {r['pooled_iou']:.4f} "
                   f"| {r['precision']:.4f} | {r['recall']:.4f} | {r['train_s_per_fold']:.1f} "
                   f"| {r['predict_s_per_tile']:.2f} |")
    return "\n".join(out)


def stage_table(rows):
    out = ["| method | " + " | ".join(STAGES) + " | total |", "|---" * (len(STAGES) + 2) + "|"]
    for r in rows:
        st = r["stage_s_per_tile"]
        out.append(f"| {r['method']} | " + " | ".join(f"{st[s]:.3f}" for s in STAGES)
                   + f" | {r['predict_s_per_tile']:.3f} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/deepglobe/train")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0, help="seed of sampling, boosting and the peer")
    ap.add_argument("--fold-seed", type=int, default=0,
                    help="seed of the split into folds (kept apart from --seed so that a seed "
                         "study keeps the same folds)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--pixels-per-image", type=int, default=20000)
    ap.add_argument("--pos-fraction", type=float, default=0.5,
                    help="share of road among the sampled pixels (the CLI's default)")
    ap.add_argument("--train-folds", type=int, default=DEFAULT_FOLDS,
                    help="inner image folds of roadfeat's training (the CLI's default)")
    ap.add_argument("--adapt", action="store_true",
                    help="per-image self-training (the CLI's train --adapt)")
    ap.add_argument("--plain-trees", action="store_true",
                    help="LightGBM's usual split search instead of the default extra-trees")
    ap.add_argument("--methods", default="roadfeat,peer", help="comma list: roadfeat, peer")
    ap.add_argument("--ablation", nargs="?", const="all", choices=("all", "post"), default=None,
                    help="feature, post-processing and self-training steps; 'post': only the "
                         "steps after the default model's support opening")
    ap.add_argument("--massachusetts", default=None, help="folder of 1 m/pixel pairs to score")
    ap.add_argument("--overlays", default=None,
                    help="folder for overlays of the held-out predictions (image | truth | "
                         "prediction: green hit, red false alarm, blue miss)")
    ap.add_argument("--out", default="bench_out/cv.json")
    args = ap.parse_args(argv)
    methods = args.methods.split(",")

    images, _ = find_images(args.data)
    images = {k: p for k, p in images.items() if mask_path_for(p).exists()}
    folds = folds_of(sorted(images), args.folds, args.fold_seed)
    rows, ablation, transfer = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        work = args.tmp = Path(tmp)
        if "roadfeat" in methods:
            if args.ablation == "all":
                for name, step in FEATURE_STEPS.items():
                    r, _ = run_roadfeat(args.data, images, folds, args, work, spec_with(*step),
                                        label=name)
                    ablation.append(r)
            row, post_rows = run_roadfeat(args.data, images, folds, args, work,
                                          post_steps=POST_STEPS if args.ablation else None)
            rows.append(row)
            if args.ablation:
                ablation += [{**r, "method": "+ support opening (default model), " + r["method"]}
                             for r in post_rows]
                if args.adapt:
                    ablation.append({**row, "method": "+ per-image self-training (default)"})
        if "peer" in methods:
            rows.append(run_peer(images, folds, args))
        if args.overlays:
            contact_sheet(Path(args.overlays), Path(args.overlays) / "contact_sheet.jpg")
        if args.massachusetts:
            transfer = run_transfer(args.data, images, args.massachusetts, args, work)

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    write_json_atomic(args.out, {"data": str(args.data), "folds": folds, "machine": machine,
                                 "date": datetime.date.today().isoformat(),
                                 "threads": args.threads, "seed": args.seed,
                                 "fold_seed": args.fold_seed, "train_folds": args.train_folds,
                                 "plain_trees": args.plain_trees, "adapt": args.adapt,
                                 "pixels_per_image": args.pixels_per_image,
                                 "pos_fraction": args.pos_fraction, "rows": rows,
                                 "ablation": ablation, "massachusetts": transfer})
    print(f"\n{len(images)} images, {args.folds}-fold CV by image, {machine}, "
          f"{args.threads} threads, seed {args.seed}, fold seed {args.fold_seed}, "
          f"{args.train_folds} inner folds, {'plain' if args.plain_trees else 'extra'} trees, "
          f"{datetime.date.today()}\n")
    print(quality_table(rows))
    print("\nMedian seconds per tile by stage:\n")
    print(stage_table(rows))
    if len(rows) == 2:
        a, b = rows
        print(f"\nratio roadfeat/peer: mean IoU {a['mean_iou'] / b['mean_iou']:.2f}x, "
              f"predict time {a['predict_s_per_tile'] / b['predict_s_per_tile']:.2f}x, "
              f"train time {a['train_s_per_fold'] / b['train_s_per_fold']:.2f}x")
    if ablation:
        print("\nAblation (same folds):\n")
        print(quality_table(ablation))
    if transfer:
        print(f"\nMassachusetts (1 m/pixel, {transfer['n_images']} pairs), model trained on all "
              f"of {args.data}:\n")
        print(quality_table([transfer]))
    print("\nper-image IoU:")
    for k in sorted(images):
        print("  " + k.ljust(22) + "  ".join(f"{r['method']}={r['per_image_iou'][k]:.3f}"
                                             for r in rows))


if __name__ == "__main__":
    main()
