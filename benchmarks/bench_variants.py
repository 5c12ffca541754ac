#!/usr/bin/env python
"""Candidate changes scored on kept cross-validation fold models, several seeds at once.

``bench_cv.py`` retrains everything for each configuration and seed (about
12 minutes on 2 cores). This script trains the same 5 outer-fold models
once per seed (``train``), keeps them with each held-out tile's
intermediates (image features, context features of the first-stage map,
calibrated map before self-training), and then scores variants of the later steps on those maps
in seconds to minutes (``score``); a run keeps about 0.5 GB of maps.
Changes to the input, the training rows or the feature spec need their own
``train`` run (``--input``, ``--spec``).

    python benchmarks/bench_variants.py train --seed 0 --out bench_out/variants/s0
    python benchmarks/bench_variants.py train --seed 0 --input colour-jitter \\
        --out bench_out/variants/jitter-s0
    python benchmarks/bench_variants.py train --seed 0 --spec benchmarks/specs/disc-tophat.json \\
        --out bench_out/variants/tophat-s0
    python benchmarks/bench_variants.py train --seed 0 --pseudo bench_out/pseudo \\
        --out bench_out/variants/pseudo-s0
    python benchmarks/bench_variants.py train --seed 0 --train-tiles 4 \\
        --out bench_out/variants/tiles4-s0
    python benchmarks/bench_variants.py train --seed 0 --extra ../shared/data/massachusetts \\
        --extra-nodata 255 --out bench_out/variants/mass-s0
    python benchmarks/bench_variants.py score --runs bench_out/variants/s0,bench_out/variants/s1 \\
        --variants no-adapt,default,adapt-context,dilate+1

Every held-out tile is scored at its own expected-IoU threshold with the
default post-processing, as ``bench_cv.py`` does; ``default`` is the
pipeline of its roadfeat row and ``no-adapt`` that of its row without
self-training. Variants are experiments, not options of
roadfeat: the input variants patch the feature function of this process.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import roadfeat.extract  # noqa: E402
import roadfeat.features  # noqa: E402
import roadfeat.model  # noqa: E402
import roadfeat.train  # noqa: E402
from bench_cv import folds_of  # noqa: E402
from roadfeat.adapt import AdaptParams, adapt  # noqa: E402
from roadfeat.backend import get_backend, to_host  # noqa: E402
from roadfeat.calibration import expected_iou_threshold  # noqa: E402
from roadfeat.extract import Sampling, extract  # noqa: E402
from roadfeat.features import default_spec, validate_spec  # noqa: E402
from roadfeat.io import (InputError, find_images, mask_path_for, read_image,  # noqa: E402
                         read_mask)
from roadfeat.metrics import confusion  # noqa: E402
from roadfeat.model import (RoadModel, backend_resize_host, check_finite,  # noqa: E402
                            feature_matrix)
from roadfeat.postprocess import PostParams, postprocess  # noqa: E402
from roadfeat.sampling import downsample_labels, image_rng, sample_pixels  # noqa: E402

CPU = get_backend("cpu")
SPEC = default_spec()
HELD = "heldout.pkl"
_compute_features = roadfeat.features.compute_features


# ------------------------------------------------------------- input variants
def stretch(rgb: np.ndarray) -> np.ndarray:
    """Each channel stretched from its 1st-99th percentile to 0-255 (per image)."""
    x = rgb.astype(np.float32)
    lo, hi = np.percentile(x, 1, axis=(0, 1)), np.percentile(x, 99, axis=(0, 1))
    return np.clip(np.round((x - lo) / np.maximum(hi - lo, 1.0) * 255), 0, 255).astype(np.uint8)


def colour_jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random channel gains, contrast, brightness and gamma (one draw per image)."""
    x = rgb.astype(np.float32) / 255.0 * rng.uniform(0.85, 1.15, 3)
    m = x.mean()
    x = (x - m) * rng.uniform(0.8, 1.25) + m * rng.uniform(0.85, 1.15)
    x = np.clip(x, 0, 1) ** rng.uniform(0.8, 1.25)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def _stretched_features(rgb, spec, backend, input_gsd=0.5):
    return _compute_features(stretch(np.asarray(rgb)), spec, backend, input_gsd)


def _jittered_rows(image_path, mask_path, spec, backend, sampling, gsd, image_id):
    """The image's rows, half from the image and half from one colour-jittered copy."""
    rgb = read_image(image_path)
    mask = read_mask(mask_path, rgb.shape)
    Xs, ys, idxs = [], [], []
    jitter_rng = image_rng(image_id + "/aug", sampling.seed)
    for v in range(2):
        img = rgb if v == 0 else colour_jitter(rgb, jitter_rng)
        stack = to_host(_compute_features(img, spec, backend, gsd))
        labels = downsample_labels(mask, stack.shape[1:])
        idx = sample_pixels(labels, sampling.n_per_image // 2, sampling.pos_fraction,
                            image_rng(f"{image_id}/{v}", sampling.seed))
        Xs.append(np.ascontiguousarray(feature_matrix(stack)[idx]))
        ys.append(labels.ravel()[idx])
        idxs.append(idx)
    X = np.concatenate(Xs)
    check_finite(X, image_path)
    return {"X": X, "y": np.concatenate(ys).astype(np.uint8),
            "idx": np.concatenate(idxs).astype(np.int64), "shape": np.array(rgb.shape[:2])}


def use_input(name: str) -> None:
    """Patch this process for an input variant (``default`` changes nothing)."""
    if name == "stretch":
        for m in (roadfeat.features, roadfeat.extract, roadfeat.train, roadfeat.model):
            m.compute_features = _stretched_features
    elif name == "colour-jitter":
        roadfeat.extract.extract_image = _jittered_rows
    elif name != "default":
        raise SystemExit(f"unknown input variant {name!r}")


# ---------------------------------------------------------------------- train
def heldout_maps(work: Path, images: dict, folds) -> dict:
    """id -> the held-out intermediates of the fold model that did not see it."""
    out = {}
    for i, test in enumerate(folds):
        model = RoadModel.load(work / f"model-{i}").without_adapt()
        for k in test:
            rgb = read_image(images[k])
            got: dict = {}
            model.probability(rgb, CPU, 0.5, intermediates=got)
            out[k] = {"stack": got["stack"].astype(np.float16),
                      "ctx": got["context"].astype(np.float16), "cal": got["calibrated"],
                      "truth": read_mask(mask_path_for(images[k]), rgb.shape),
                      "seed": int(model.card["seed"]), "spec": model.card["spec"]}
    return out


def load_spec(path: str | None) -> dict:
    """The feature spec in JSON file ``path``, or the default spec."""
    if path is None:
        return SPEC
    try:
        spec = json.loads(Path(path).read_text())
        validate_spec(spec)
    except (OSError, ValueError) as exc:  # SpecError and JSONDecodeError are ValueErrors
        raise SystemExit(f"{path}: not a usable feature spec: {exc}") from None
    return spec


def cmd_train(args) -> None:
    spec = load_spec(args.spec)
    use_input(args.input)
    work = Path(args.out)
    images, _ = find_images(args.data)
    images = {k: p for k, p in images.items() if mask_path_for(p).exists()}
    folds = folds_of(sorted(images), args.folds, 0)
    most = len(images) - max(len(t) for t in folds)
    if args.train_tiles is not None and not 1 <= args.train_tiles <= most:
        raise SystemExit(f"--train-tiles {args.train_tiles}: each fold has {most} or more "
                         f"training tiles in {args.data}; give 1 to {most}")
    if args.pseudo and args.extra:
        raise SystemExit("give --pseudo or --extra, not both")
    extract(args.data, work / "features", spec, CPU, Sampling(20000, 0.5, args.seed), 0.5,
            quiet=True)
    shared_extra = None
    if args.extra:
        # Independent labels: the same rows join every fold.
        shared_extra = work / "extra"
        extract(args.extra, shared_extra, spec, CPU,
                Sampling(args.extra_rows, 0.5, args.seed, args.extra_nodata), args.extra_gsd,
                quiet=True)
    for i, test in enumerate(folds):
        extra = shared_extra
        if args.pseudo:
            # Fold i's pseudo-labels come from a model that never saw its held-out tiles.
            extra = work / f"pseudo-{i}"
            extract(args.unlabelled, extra, spec, CPU,
                    Sampling(args.pseudo_rows, 0.5, args.seed), 0.5,
                    mask_dir=Path(args.pseudo) / f"fold-{i}", quiet=True)
        ids = sorted(set(images) - set(test))
        if args.train_tiles is not None:
            # A learning curve: a seeded subset of the fold's training tiles.
            pick = np.random.default_rng([args.seed, i]).permutation(len(ids))[:args.train_tiles]
            ids = sorted(ids[j] for j in pick)
        if not (work / f"model-{i}" / "card.json").exists():
            roadfeat.train.train(work / "features", work / f"model-{i}", CPU, seed=args.seed,
                                 quiet=True, image_ids=ids, threads=args.threads,
                                 extra_features=extra)
        print(f"fold {i + 1}/{len(folds)} trained", flush=True)
    part = work / (HELD + ".part")  # about 0.5 GB per run: renamed only when whole
    with open(part, "wb") as f:
        pickle.dump(heldout_maps(work, images, folds), f, protocol=5)
    part.replace(work / HELD)


# ---------------------------------------------------------------------- score
def _spec_of(d):
    # Runs kept before train --spec existed hold no spec: they used the default.
    return d.get("spec", SPEC)


def _default(d):
    return adapt(d["stack"].astype(np.float32), d["cal"], AdaptParams(), _spec_of(d), CPU,
                 d["seed"])


def _adapt_context(d):
    """Self-training on the image features plus the second stage's context features."""
    stack = np.concatenate([d["stack"], d["ctx"]]).astype(np.float32)
    return adapt(stack, d["cal"], AdaptParams(), _spec_of(d), CPU, d["seed"])


def _morph(r: int):
    """Grow (r > 0) or shrink the final mask by a disc of radius |r| input pixels."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(r) + 1, 2 * abs(r) + 1))
    op = cv2.dilate if r > 0 else cv2.erode
    return lambda m: op(m.astype(np.uint8), disc).astype(bool)


# name -> (probability of a held-out tile, transform of its final mask)
VARIANTS = {
    "no-adapt": (lambda d: d["cal"], None),
    "default": (_default, None),
    "adapt-context": (_adapt_context, None),
    **{f"dilate{r:+d}": (_default, _morph(r)) for r in (-2, -1, 1, 2)},
}


def score(held: dict, variant: str, masks: dict, run: str) -> dict:
    """Per-tile IoU of ``variant`` on ``run``; ``masks`` caches masks by run and probability."""
    prob_of, mask_op = VARIANTS[variant]
    ious = {}
    for k, d in sorted(held.items()):
        key = (run, prob_of, k)
        if key not in masks:
            prob = backend_resize_host(prob_of(d), d["truth"].shape)
            masks[key] = postprocess(prob, expected_iou_threshold(prob), PostParams(), 0.5)
        mask = masks[key]
        ious[k] = confusion(mask_op(mask) if mask_op else mask, d["truth"]).iou
    return ious


def bagged(runs: list) -> dict:
    """Held-out maps whose calibrated map is the mean over the runs' (seeds') models."""
    out = {}
    for k, d in runs[0].items():
        out[k] = dict(d, cal=np.mean([r[k]["cal"] for r in runs], axis=0).astype(np.float32))
    return out


def mean_width(mask: np.ndarray) -> float:
    """Mean width of a mask's roads in pixels: area over skeleton length."""
    from skimage.morphology import skeletonize

    return float(mask.sum() / max(1, skeletonize(mask).sum()))


def cmd_score(args) -> None:
    names, variants = args.runs.split(","), args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS and v != "bag"]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}, bag")
    runs = []
    for n in names:
        if not (Path(n) / HELD).exists():
            raise SystemExit(f"{Path(n) / HELD}: not found; run 'train --out {n}' first")
        with open(Path(n) / HELD, "rb") as f:
            runs.append(pickle.load(f))
    masks: dict = {}
    for v in variants:
        if v == "bag":
            per = [score(bagged(runs), "default", masks, "bag")]
            label = f"bag of {len(runs)} runs"
        else:
            per = [score(r, v, masks, n) for r, n in zip(runs, names)]
            label = v
        means = [np.mean(list(p.values())) for p in per]
        print(f"{label}: " + "  ".join(f"{m:.4f}" for m in means)
              + f"  (mean {np.mean(means):.4f})")
        for k in sorted(per[0]):
            print(f"    {k:18s} " + " ".join(f"{p[k]:.3f}" for p in per))
    if args.widths:
        score(runs[0], "default", masks, names[0])  # fills the cache if not yet scored
        print(f"mean road width in pixels, truth and default mask ({names[0]}):")
        for k, d in sorted(runs[0].items()):
            mask = masks[(names[0], _default, k)]
            print(f"    {k:18s} {mean_width(d['truth']):5.1f} {mean_width(mask):5.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train and keep the outer-fold models of one seed")
    t.add_argument("--data", default="../shared/data/deepglobe/train")
    t.add_argument("--folds", type=int, default=5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--input", default="default", choices=("default", "colour-jitter", "stretch"))
    t.add_argument("--spec", default=None, help="feature spec JSON (default: roadfeat's)")
    t.add_argument("--pseudo", default=None,
                   help="folder of fold-I/<id>_mask.png: masks of --unlabelled predicted by "
                        "fold I's model of an earlier run; their rows join each fold's first "
                        "stage as extra features (train --extra-features)")
    t.add_argument("--unlabelled", default="../shared/data/deepglobe/unlabelled")
    t.add_argument("--pseudo-rows", type=int, default=5000,
                   help="rows sampled per pseudo-labelled tile (default 5000)")
    t.add_argument("--extra", default=None, metavar="DIR",
                   help="labelled images of another source (e.g. ../shared/data/massachusetts) "
                        "whose rows join every fold's first stage (train --extra-features)")
    t.add_argument("--extra-gsd", type=float, default=1.0,
                   help="metres per pixel of --extra (default 1.0)")
    t.add_argument("--extra-rows", type=int, default=20000,
                   help="rows sampled per --extra image (default 20000)")
    t.add_argument("--extra-nodata", type=int, default=None,
                   help="fill value of --extra, never sampled (255 for Massachusetts)")
    t.add_argument("--train-tiles", type=int, default=None,
                   help="train each fold on this many of its training tiles, drawn with the "
                        "seed (a learning curve; default: all of them)")
    t.add_argument("--out", required=True)
    s = sub.add_parser("score", help="score variants on the kept held-out maps")
    s.add_argument("--runs", required=True, help="comma list of train --out folders")
    s.add_argument("--variants", default="no-adapt,default",
                   help="comma list of: " + ", ".join(VARIANTS) + ", bag (the runs' mean map)")
    s.add_argument("--widths", action="store_true",
                   help="also the mean road width of the truth and of the default mask per tile "
                        "of the first run")
    args = ap.parse_args(argv)
    try:
        (cmd_train if args.cmd == "train" else cmd_score)(args)
    except InputError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
