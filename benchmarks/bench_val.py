#!/usr/bin/env python
"""A model scored on the fixed validation split of train_large (docs/RESULTS.md).

    python benchmarks/split.py                      # once: bench_out/split/{train,val}
    python benchmarks/bench_val.py --model models/NAME --out bench_out/val_NAME.json \\
        --overlays bench_out/val_NAME_overlays

Each validation tile's road probability is computed once, with and without
the model's per-image self-training; the variants below differ only in what
follows it, so they cost no retraining:

- ``default``: what ``roadfeat predict`` writes with this model;
- ``no self-training``: the calibrated map without the per-image booster;
- ``no calibration``: the map before Platt scaling, at its own expected-IoU
  threshold (models with a calibration and no self-training);
- ``plug-in threshold (no learned shift)``: each image's expected-IoU
  threshold without the card's learned ``threshold_rule`` (models with one);
- ``threshold rule of MODEL`` (``--rule-from MODEL``): the same maps at the
  threshold rule that another model's training learned, such as the shipped
  model's, to see how much the rule's fit varies from one training to another;
- ``fixed threshold``: the card's ``validation.best_fixed_threshold``
  (chosen on the training images' out-of-fold maps) instead of each image's
  own expected-IoU threshold, with and without self-training;
- ``no bridging`` and ``threshold only`` (no small-component removal, hole
  filling or bridging);
- ``threshold only, each tile's best threshold (hindsight)``: each tile
  thresholded at whichever of :data:`HINDSIGHT_GRID` scores it best against
  its own labels. Not a rule: the ceiling of any rule that picks one
  threshold per tile for these maps, beside ``threshold only``.

Prints the challenge's score (mean per-image IoU), pooled IoU, precision
and recall per variant, and writes per-tile IoU to JSON. ``--overlays``
writes one overlay per tile and a contact sheet of them all, and one of
``--sheet-tiles`` tiles evenly spread from the worst to the best (the page
in docs/RESULTS.md). ``--maps DIR`` keeps each tile's default map
and its threshold as ``DIR/<id>.npz``, so that what follows the map can be
measured again without computing it.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.io import find_images, mask_path_for, read_image, read_mask  # noqa: E402
from roadfeat.io import InputError, write_json_atomic  # noqa: E402
from roadfeat.metrics import confusion, summarise  # noqa: E402
from roadfeat.model import RoadModel, backend_resize_host  # noqa: E402
from roadfeat.calibration import ThresholdRule, expected_iou_threshold  # noqa: E402
from roadfeat.postprocess import PostParams, postprocess  # noqa: E402
from roadfeat.progress import progress  # noqa: E402

#: Thresholds on the calibrated map for the hindsight bound.
HINDSIGHT_GRID = np.round(np.arange(0.025, 0.951, 0.025), 3)
HINDSIGHT = "threshold only, each tile's best threshold (hindsight)"


#: The threshold of a variant: the model's own (None), a fixed number, or this.
PLUG_IN = "plug-in"


def variants(model: RoadModel, rule_from: RoadModel | None = None, rule_name: str = "") -> dict:
    """name -> (which map, threshold, post-processing); the threshold is None
    (the model's own), a number, PLUG_IN or a ThresholdRule (``rule_from``'s)."""
    post = model.post
    fixed = (model.card.get("validation") or {}).get("best_fixed_threshold")
    out = {"default": ("adapt" if model.adapt else "plain", None, post)}
    if model.adapt:
        out["no self-training"] = ("plain", None, post)
    if model.card.get("calibration") and not model.adapt:
        # The learned shift was fit on calibrated maps, so it is not applied here.
        out["no calibration"] = ("uncalibrated", PLUG_IN, post)
    if not model.threshold_rule.plain:
        out["plug-in threshold (no learned shift)"] = (out["default"][0], PLUG_IN, post)
    if rule_from is not None:
        out[f"threshold rule of {rule_name}"] = (out["default"][0], rule_from.threshold_rule, post)
    if fixed is not None:
        out[f"fixed threshold {fixed:g}"] = (out["default"][0], fixed, post)
        if model.adapt:
            out[f"fixed threshold {fixed:g}, no self-training"] = ("plain", fixed, post)
    out["no bridging"] = (out["default"][0], None, replace(post, bridge=False))
    out["threshold only"] = (out["default"][0], None,
                             replace(post, bridge=False, min_area_m2=0.0, max_hole_m2=0.0))
    return out


def hindsight(prob: np.ndarray, truth: np.ndarray, grid=HINDSIGHT_GRID):
    """The threshold of ``grid`` whose mask ``prob >= t`` has the best IoU, and its counts.

    Uses the labels, so it bounds threshold rules and is not one.
    """
    scored = [confusion(prob >= t, truth) for t in grid]
    best = int(np.argmax([c.iou for c in scored]))
    return float(grid[best]), scored[best]


def save_map(path: Path, prob: np.ndarray, threshold: float) -> None:
    """``prob`` and its ``threshold`` in one ``.npz``, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, prob=np.asarray(prob), threshold=threshold)
    tmp.replace(path)


def contact_sheet(paths: list[Path], out: Path, cols: int = 4, width: int = 1536) -> None:
    """One JPEG of overlay images in a grid, for docs."""
    from PIL import Image

    ims = [Image.open(p).convert("RGB") for p in paths]
    w = width // cols
    ims = [im.resize((w, int(im.height * w / im.width))) for im in ims]
    h = max(im.height for im in ims)
    rows = (len(ims) + cols - 1) // cols
    sheet = Image.new("RGB", (w * cols, h * rows), "white")
    for i, im in enumerate(ims):
        sheet.paste(im, ((i % cols) * w, (i // cols) * h))
    sheet.save(out, quality=80)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--val", default="bench_out/split/val", help="validation folder (split.py)")
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--limit", type=int, default=None, help="first N tiles only (smoke runs)")
    ap.add_argument("--out", default=None, help="JSON of every figure")
    ap.add_argument("--overlays", default=None, help="folder for overlays and a contact sheet")
    ap.add_argument("--sheet-tiles", type=int, default=12,
                    help="tiles on the worst-to-best contact sheet (with --overlays)")
    ap.add_argument("--rule-from", default=None,
                    help="also score the maps at this model's learned threshold rule")
    ap.add_argument("--maps", default=None,
                    help="folder for each tile's default map and threshold (<id>.npz)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.sheet_tiles < 1:
        ap.error(f"--sheet-tiles must be at least 1, not {a.sheet_tiles}")

    try:
        model = RoadModel.load(a.model)
        rule_model = RoadModel.load(a.rule_from) if a.rule_from else None
    except InputError as exc:
        print(f"bench_val: {exc}", file=sys.stderr)
        return 2
    if a.maps:
        try:  # before an hour of maps, not after
            Path(a.maps).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"bench_val: {a.maps}: cannot write maps there ({exc.strerror})", file=sys.stderr)
            return 2
    cpu = get_backend("cpu")
    images, errors = find_images(a.val)
    if errors or not images:
        print(f"bench_val: {a.val}: {len(images)} images, {len(errors)} unreadable", file=sys.stderr)
        return 2
    ids = sorted(images)[: a.limit]
    table = variants(model, rule_model, a.rule_from)
    counts = {name: {} for name in [*table, HINDSIGHT]}
    seconds = []
    overlay_paths = {}
    thresholds = {}
    for k in progress(ids, "validation tiles", a.quiet):
        rgb = read_image(images[k])
        truth = read_mask(mask_path_for(images[k]), rgb.shape)
        t = time.perf_counter()
        inter: dict = {}
        maps = {"adapt" if model.adapt else "plain":
                model.probability(rgb, cpu, a.gsd, images[k], intermediates=inter)}
        seconds.append(time.perf_counter() - t)
        if model.adapt:
            maps["plain"] = backend_resize_host(inter["calibrated"], rgb.shape[:2])
        if "no calibration" in table:
            maps["uncalibrated"] = backend_resize_host(inter["uncalibrated"], rgb.shape[:2])
        # The model's own threshold, for the maps that variants score at it.
        rules = {m: model.threshold_for(maps[m]) for m in {w for w, t, _ in table.values()
                                                           if t is None}}
        for name, (which, thr, post) in table.items():
            if thr is None:
                thr = rules[which]
            elif isinstance(thr, ThresholdRule):
                thr = thr.threshold(maps[which])
            elif thr == PLUG_IN:
                thr = expected_iou_threshold(maps[which])
            mask = postprocess(maps[which], thr, post, a.gsd)
            counts[name][k] = confusion(mask, truth)
            if name == "default" and a.overlays:
                from roadfeat.report import write_overlay

                p = Path(a.overlays) / f"{k}_overlay.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                write_overlay(p, rgb, mask, truth, max_side=384)
                overlay_paths[k] = p
        shown = table["default"][0]
        t, counts[HINDSIGHT][k] = hindsight(maps[shown], truth)
        thresholds[k] = {"rule": rules[shown], "hindsight": t}
        if a.maps:
            save_map(Path(a.maps) / f"{k}.npz", maps[shown], rules[shown])

    result = {"date": datetime.date.today().isoformat(), "model": str(Path(a.model).resolve()),
              "validation_folder": str(Path(a.val)), "tiles": ids,
              "model_validation_mean_iou": (model.card.get("validation") or {}).get("mean_iou"),
              "seconds_per_tile_probability": float(np.mean(seconds)),
              "default_map_thresholds": thresholds, "variants": {}}
    print(f"\n{len(ids)} validation tiles, model {a.model}\n")
    print("| variant | mean per-image IoU | pooled IoU | precision | recall |")
    print("|---|---|---|---|---|")
    for name in counts:
        s = summarise([counts[name][k] for k in ids])
        s["per_image_iou"] = {k: counts[name][k].iou for k in ids}
        result["variants"][name] = s
        print(f"| {name} | {s['mean_iou']:.4f} | {s['pooled_iou']:.4f} | "
              f"{s['precision']:.4f} | {s['recall']:.4f} |")
    if a.overlays and overlay_paths:
        contact_sheet(list(overlay_paths.values()), Path(a.overlays) / "contact_sheet.jpg")
        ranked = sorted(ids, key=lambda k: counts["default"][k].iou)
        picks = np.unique(np.linspace(0, len(ranked) - 1, min(a.sheet_tiles, len(ranked)))
                          .round().astype(int))
        contact_sheet([overlay_paths[ranked[i]] for i in picks],
                      Path(a.overlays) / "worst_to_best.jpg", cols=2)
    if a.out:
        write_json_atomic(a.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
