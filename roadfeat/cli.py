"""The ``roadfeat`` command: extract | train | predict | evaluate | synth | demo.

Exit codes: 0 success; 1 some inputs in a folder failed (the others were
processed; a summary is printed); 2 the command could not run at all.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .io import InputError, read_json

log = logging.getLogger("roadfeat")


def _common(p: argparse.ArgumentParser, device=True, seed=True, dask=False):
    if dask:
        p.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="run on a Dask cluster: a scheduler address, or local / local:N "
                            "for a LocalCluster here (needs the [dask] extra)")
    if device:
        p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                       help="array backend: GPU when one works (auto), or force one")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or info logs")


def build_parser() -> argparse.ArgumentParser:
    from .train import (DEFAULT_FOLDS, FOLDS_WHEN_MANY, MANY_IMAGES, MAPS_PER_FOLD,
                        ROW_BUDGET, GBMParams)

    ap = argparse.ArgumentParser(prog="roadfeat", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("extract", help="labelled images -> sampled feature rows")
    p.add_argument("--images", required=True, help="folder of <id>_sat.* and <id>_mask.png")
    p.add_argument("--masks", default=None, help="folder of masks, if not beside the images")
    p.add_argument("--out", required=True, help="features folder, e.g. features/NAME")
    p.add_argument("--config", default=None, help="JSON feature spec (default: built-in spec)")
    p.add_argument("--gsd", type=float, default=0.5, help="metres per pixel of the images (0.5)")
    p.add_argument("--pixels-per-image", type=int, default=20000,
                   help="training pixels sampled per image (default 20000)")
    p.add_argument("--pos-fraction", type=float, default=0.5,
                   help="share of road pixels in the sample (default 0.5)")
    p.add_argument("--nodata", type=int, default=None, metavar="V",
                   help="never sample pixels whose every channel is V: the fill around a "
                        "scene (e.g. 255 for the Massachusetts Roads tiles; default: none)")
    _common(p, dask=True)

    p = sub.add_parser("train", help="feature rows -> LightGBM model + model card")
    p.add_argument("--features", required=True, help="features folder made by extract")
    p.add_argument("--out", required=True, help="model folder, e.g. models/NAME")
    p.add_argument("--folds", type=int, default=None,
                   help="image folds that choose the rounds, train the context stage and "
                        f"fit the calibration (default {DEFAULT_FOLDS}, or {FOLDS_WHEN_MANY} "
                        f"above {MANY_IMAGES} images; at most one per image)")
    p.add_argument("--max-rows", type=int, default=ROW_BUDGET,
                   help="training rows in all, an equal share of each image's sampled rows "
                        f"(default {ROW_BUDGET}; 0: every extracted row)")
    p.add_argument("--map-images", type=int, default=MAPS_PER_FOLD, metavar="N",
                   help="images per fold whose out-of-fold maps train the context stage "
                        f"and fit the calibration (default {MAPS_PER_FOLD})")
    p.add_argument("--threads", type=int, default=None, help="LightGBM threads (default: all)")
    p.add_argument("--n-estimators", type=int, default=None,
                   help=f"most boosting rounds (default {GBMParams.n_estimators})")
    p.add_argument("--num-leaves", type=int, default=None,
                   help=f"leaves per tree (default {GBMParams.num_leaves})")
    p.add_argument("--learning-rate", type=float, default=None,
                   help=f"boosting learning rate (default {GBMParams.learning_rate})")
    p.add_argument("--adapt", action="store_true",
                   help="per-image self-training at prediction (off by default: +0.002 "
                        "+- 0.005 mean IoU on the validation split, 1.4 s more per tile; "
                        "docs/RESULTS.md)")
    p.add_argument("--no-adapt", action="store_true",
                   help="no per-image self-training (the default; kept for old scripts)")
    p.add_argument("--extra-features", default=None, metavar="DIR",
                   help="features folder (same --config, any --gsd) of images whose masks "
                        "are not this task's ground truth (a model's own masks of unlabelled "
                        "tiles, or another dataset's roads): their rows join the first "
                        "stage's fits, but they are never scored, calibrated on or used by "
                        "the context stage")
    _common(p, dask=True)

    p = sub.add_parser("predict", help="model + images -> <id>_mask.png per image")
    p.add_argument("--model", default=None,
                   help="model folder made by train (default: the model shipped with "
                        "roadfeat, trained on 362 labelled DeepGlobe tiles)")
    p.add_argument("--images", required=True,
                   help="one image, or a folder of <id>_sat.* images and GeoTIFFs of any name")
    p.add_argument("--out", required=True,
                   help="folder for <id>_mask.png (<stem>_mask.tif for GeoTIFF inputs)")
    p.add_argument("--submission", default=None, help="also write a submission zip here")
    p.add_argument("--gsd", type=float, default=None,
                   help="metres per pixel of images without georeferencing (default: the "
                        "model's training gsd); GeoTIFFs take theirs from their transform")
    p.add_argument("--window", type=int, default=2048,
                   help="predict in windows of this many pixels a side, plus halos; bounds "
                        "memory on large scenes (default 2048)")
    p.add_argument("--nodata", type=int, default=None, metavar="V",
                   help="pixels whose every channel is V (the fill around a scene) are never "
                        "road, in images without georeferencing; GeoTIFFs use their own "
                        "no-data mask (default: none)")
    p.add_argument("--vector", action="store_true",
                   help="also write road centre lines as <id>_roads.geojson (needs [geo])")
    p.add_argument("--overlays", default=None, help="also write overlay PNGs to this folder")
    p.add_argument("--threshold", type=float, default=None,
                   help="one fixed threshold on the calibrated road probability, in (0, 1) "
                        "(default: each image's own, maximising its expected IoU; the card's "
                        "validation.best_fixed_threshold is the best fixed one in validation)")
    p.add_argument("--threads", type=int, default=None,
                   help="images predicted at once in this process, without --dask; each "
                        "holds its own window's memory (default: 2 on the CPU, 1 on a GPU)")
    _common(p, seed=False, dask=True)

    p = sub.add_parser("evaluate", help="score predicted masks against truth masks")
    p.add_argument("--pred", required=True, help="folder of predicted <id>_mask.png")
    p.add_argument("--truth", required=True, help="folder of truth <id>_mask.png")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--apls", action="store_true",
                   help="also score road graphs with APLS (needs the [geo] extra)")
    p.add_argument("--gsd", type=float, default=0.5,
                   help="metres per pixel, for APLS lengths (default 0.5, DeepGlobe)")
    p.add_argument("--images", default=None,
                   help="folder of the <id>_sat.* images, with --nodata")
    p.add_argument("--nodata", type=int, default=None,
                   help="leave out of the scores the pixels whose every channel in the "
                        "image (--images) is this value: the padding around a scene "
                        "(e.g. 255 for Massachusetts Roads)")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)

    p = sub.add_parser("synth", help="write synthetic DeepGlobe-format scenes")
    p.add_argument("--out", required=True, help="folder for <id>_sat.jpg / <id>_mask.png")
    p.add_argument("--n", type=int, default=10, help="number of scenes (default 10)")
    p.add_argument("--size", type=int, default=512, help="side in pixels (default 512)")
    _common(p, device=False)

    p = sub.add_parser("demo", help="train on synthetic scenes, predict held-out ones, score")
    p.add_argument("--out", default="demo_out", help="working folder (default demo_out)")
    p.add_argument("--n-train", type=int, default=16, help="training scenes (default 16)")
    p.add_argument("--n-test", type=int, default=6, help="held-out scenes (default 6)")
    _common(p)
    return ap


# Smallest --window: below it the halos dwarf the core and a scene takes hours.
MIN_WINDOW = 64
#: Plausible metres per pixel of imagery a road model can use (NaN and inf fail too).
GSD_RANGE = (0.05, 10.0)


def _writable_place(path: Path, flag: str, folder: bool) -> None:
    """Refuse an output path that cannot be made, before any work starts."""
    if path.exists() and path.is_dir() != folder:
        raise InputError(path, f"{flag} names an existing "
                               f"{'file' if folder else 'folder'}; it must be a "
                               f"{'folder' if folder else 'file'}")
    parent = path if path.exists() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(path, f"{flag}: {parent} is a file, so nothing can be made under it")
    if not os.access(parent, os.W_OK):
        raise InputError(path, f"{flag}: {parent} is not writable")


def _check_outputs(a) -> None:
    """Every output path of the verb, checked before its work (issue #28)."""
    if a.verb in ("extract", "train", "predict", "synth") and getattr(a, "out", None):
        _writable_place(Path(a.out), "--out", folder=True)
    if getattr(a, "submission", None):
        _writable_place(Path(a.submission), "--submission", folder=False)
    if getattr(a, "overlays", None):
        _writable_place(Path(a.overlays), "--overlays", folder=True)


def _check_sizes(a) -> None:
    """Refuse sizes that would divide by zero or crawl, before any work starts."""
    gsd = getattr(a, "gsd", None)
    if gsd is not None and not GSD_RANGE[0] <= gsd <= GSD_RANGE[1]:
        # Outside it the working grid is absurd: thousands of times the pixels, or none.
        raise InputError("--gsd", f"must be {GSD_RANGE[0]} to {GSD_RANGE[1]} metres per pixel, "
                                  f"not {gsd}")
    window = getattr(a, "window", None)
    if window is not None and window < MIN_WINDOW:
        raise InputError("--window", f"must be at least {MIN_WINDOW} pixels, not {window}")
    nodata = getattr(a, "nodata", None)
    if nodata is not None and not 0 <= nodata <= 255:
        raise InputError("--nodata", f"must be an 8-bit channel value, 0 to 255, not {nodata}")
    folds = getattr(a, "folds", None)
    if folds is not None and folds < 0:
        raise InputError("--folds", f"must be 0 (no validation) or more, not {folds}")
    max_rows = getattr(a, "max_rows", None)
    if max_rows is not None and max_rows < 0:
        raise InputError("--max-rows", f"must be 0 (every row) or more, not {max_rows}")
    map_images = getattr(a, "map_images", None)
    if map_images is not None and map_images < 1:
        raise InputError("--map-images", f"must be 1 or more, not {map_images}")
    lr = getattr(a, "learning_rate", None)
    if lr is not None and not 0 < lr <= 1:
        raise InputError("--learning-rate", f"must be in (0, 1], not {lr}")
    threshold = getattr(a, "threshold", None)
    if threshold is not None and not 0 < threshold < 1:
        raise InputError("--threshold", f"must be a probability in (0, 1), not {threshold}")


def _need_geo(flag: str) -> None:
    """Refuse a flag whose optional packages are missing, in one line."""
    import importlib.util

    missing = [m for m in ("skan", "networkx") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(flag, f"needs the geo extra ({', '.join(missing)} missing): "
                               "pip install 'roadfeat[geo]'")


def _finish(report, what: str) -> int:
    n_ok = len(report.done) + len(report.reused)
    msg = f"{what}: {len(report.done)} done, {len(report.reused)} reused, {len(report.failed)} failed"
    print(msg, file=sys.stderr)
    for k, err in sorted(report.failed.items()):
        print(f"  failed {k}: {err}", file=sys.stderr)
    if report.failed:
        return 1
    if n_ok == 0:
        print(f"{what}: nothing processed", file=sys.stderr)
        return 1
    return 0


def cmd_extract(a) -> int:
    from .backend import get_backend
    from .extract import Sampling, extract
    from .features import default_spec

    spec = read_json(a.config) if a.config else default_spec()
    sampling = Sampling(a.pixels_per_image, a.pos_fraction, a.seed, a.nodata)
    report = extract(a.images, a.out, spec, get_backend(a.device), sampling, a.gsd, a.masks,
                     a.quiet, client=a.client)
    return _finish(report, "extract")


def cmd_train(a) -> int:
    from dataclasses import replace

    from .adapt import AdaptParams
    from .backend import get_backend
    from .train import GBMParams, train

    params = GBMParams()
    if a.n_estimators:
        params = replace(params, n_estimators=a.n_estimators)
    if a.num_leaves:
        params = replace(params, num_leaves=a.num_leaves)
    if a.learning_rate is not None:
        params = replace(params, learning_rate=a.learning_rate)
    model = train(a.features, a.out, get_backend(a.device), params, seed=a.seed,
                  folds=a.folds, threads=a.threads, quiet=a.quiet, client=a.client,
                  adapt=AdaptParams() if a.adapt and not a.no_adapt else None,
                  extra_features=a.extra_features,
                  row_budget=a.max_rows or None, maps_per_fold=a.map_images)
    card, val = model.card, model.card["validation"]
    rounds = f"{card['n_rounds']}" + (f" + {card['context_rounds']} context"
                                      if "context_rounds" in card else "")
    t = model.threshold
    rule = model.threshold_rule
    thr = (f"per image (expected IoU{'' if rule.plain else f', learned {rule}'})"
           if isinstance(t, str) else f"{t:.2f}")
    extra = f", validation mean IoU {val['mean_iou']:.4f}" if val else ""
    if "caveat" in val:
        extra += (", optimistic if the --extra-features masks are pseudo-labels of these "
                  "images: see the card's validation.caveat")
    print(f"train: model written to {a.out} ({rounds} rounds, threshold {thr}{extra})",
          file=sys.stderr)
    return 0


def cmd_predict(a) -> int:
    from .backend import get_backend
    from .model import DEFAULT_MODEL, RoadModel
    from .predict import predict_folder, write_submission

    if a.vector:
        _need_geo("--vector")
    model = RoadModel.load(a.model or DEFAULT_MODEL)
    if a.model is None:
        print(f"predict: using the shipped model {DEFAULT_MODEL} (trained on "
              f"{model.card['training_data']['images']} DeepGlobe tiles; "
              f"README.md there gives its validation score)", file=sys.stderr)
    if a.threshold is not None:
        model = model.with_threshold(a.threshold)
    report = predict_folder(model, a.images, a.out, get_backend(a.device), a.gsd, a.quiet,
                            client=a.client, window=a.window, vector=a.vector, nodata=a.nodata,
                            threads=a.threads)
    if a.submission:
        ids = report.done + report.reused
        write_submission(a.out, ids, a.submission)
        print(f"predict: submission zip {a.submission} ({len(ids)} masks)", file=sys.stderr)
    if a.overlays:
        _overlays(a.images, a.out, a.overlays, report.done + report.reused)
    return _finish(report, "predict")


def _overlays(images_dir, masks_dir, out_dir, ids) -> None:
    from .io import mask_path_for, read_image, read_mask
    from .predict import find_inputs
    from .report import write_overlay

    images, _ = find_inputs(images_dir)
    for k in ids:
        rgb = read_image(images[k])
        pred = read_mask(Path(masks_dir) / f"{k}_mask.png", rgb.shape)
        tpath = mask_path_for(images[k])
        truth = read_mask(tpath, rgb.shape) if tpath.exists() else None
        write_overlay(Path(out_dir) / f"{k}_overlay.png", rgb, pred, truth)


def cmd_evaluate(a) -> int:
    from .evaluate import evaluate, format_table

    if a.apls:
        _need_geo("--apls")
    if (a.images is None) != (a.nodata is None):
        given, other = ("--nodata", "--images") if a.images is None else ("--images", "--nodata")
        raise InputError(given, f"needs {other}: the fill is found in the images")
    result = evaluate(a.pred, a.truth, apls_gsd=a.gsd if a.apls else None,
                      images_dir=a.images, nodata=a.nodata)
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    for k, err in sorted(result["failed"].items()):
        print(f"  failed {k}: {err}", file=sys.stderr)
    return 1 if result["failed"] else 0


def cmd_synth(a) -> int:
    from .synth import write_scenes

    ids = write_scenes(a.out, a.n, a.seed, a.size)
    print(f"synth: wrote {len(ids)} scenes to {a.out}", file=sys.stderr)
    return 0


def cmd_demo(a) -> int:
    from .demo import run_demo

    result = run_demo(Path(a.out), a.n_train, a.n_test, a.seed, a.device, a.quiet)
    s = result["summary"]
    print(f"demo: held-out synthetic scenes, mean per-image IoU {s['mean_iou']:.4f} "
          f"(pooled {s['pooled_iou']:.4f}, precision {s['precision']:.4f}, "
          f"recall {s['recall']:.4f}); overlays in {Path(a.out) / 'overlays'}")
    return 0


COMMANDS = {"extract": cmd_extract, "train": cmd_train, "predict": cmd_predict,
            "evaluate": cmd_evaluate, "synth": cmd_synth, "demo": cmd_demo}


def main(argv=None, verb: str | None = None) -> int:
    """Entry point. ``verb`` fixes the sub-command (used by scripts/*.py)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if verb is not None:
        argv = [verb] + argv
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if a.quiet else logging.INFO,
                        format="roadfeat: %(message)s", stream=sys.stderr)
    from .features import SpecError

    a.client = None
    try:
        _check_sizes(a)
        _check_outputs(a)
        if getattr(a, "dask", None):
            from .runner import connect

            a.client = connect(a.dask)
        return COMMANDS[a.verb](a)
    except (InputError, SpecError) as exc:
        print(f"roadfeat {a.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"roadfeat {a.verb}: interrupted", file=sys.stderr)
        return 130
    finally:
        if a.client is not None:
            cluster = a.client.cluster
            a.client.close()
            if cluster is not None:
                cluster.close()


if __name__ == "__main__":
    sys.exit(main())
