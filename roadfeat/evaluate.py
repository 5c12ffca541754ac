"""Evaluation stage: predicted masks against truth masks, by image id."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .apls import apls
from .io import InputError, fill_pixels, find_images, read_image, read_mask
from .metrics import Counts, confusion, summarise
from .vectorize import mask_to_graph

_MASK_RE = re.compile(r"^(?P<id>.+)_mask\.(png|tif)$")


def find_masks(folder) -> dict[str, Path]:
    """Map image id -> ``<id>_mask.png`` or ``<id>_mask.tif`` in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        m = _MASK_RE.match(p.name)
        if not (m and p.is_file()):
            continue
        if m.group("id") in found:
            # Scoring one of them silently would make the score depend on file order.
            raise InputError(p, f"two masks for image {m.group('id')!r} "
                                f"(also {found[m.group('id')].name}); keep one")
        found[m.group("id")] = p
    if not found:
        raise InputError(folder, "no masks named <id>_mask.png (or .tif)")
    return found


def _fill(images: dict, image_id: str, nodata: int, shape) -> np.ndarray:
    """Pixels of the image ``image_id`` whose every channel is ``nodata``."""
    path = images.get(image_id)
    if path is None:
        raise InputError(f"{image_id}_sat.*", "no image to find the no-data fill in")
    rgb = read_image(path)
    if rgb.shape[:2] != tuple(shape):
        raise InputError(path, f"image is {rgb.shape[1]}x{rgb.shape[0]}, "
                               f"its truth mask {shape[1]}x{shape[0]}")
    return fill_pixels(rgb, nodata)


def evaluate(pred_dir, truth_dir, apls_gsd: float | None = None, images_dir=None,
             nodata: int | None = None) -> dict:
    """Score every truth mask against its prediction.

    A truth mask without a prediction is scored as an empty prediction and
    listed under ``failed``; so is a prediction that cannot be read.

    With ``images_dir`` and ``nodata``, pixels whose every channel in the
    image ``<id>_sat.*`` equals ``nodata`` (the padding around a scene) are
    left out of every count: neither truth nor prediction there is scored.
    An image that cannot be read, or whose size differs from its truth
    mask, is listed under ``failed`` and not scored.

    Returns
    -------
    dict with ``summary`` (see :func:`roadfeat.metrics.summarise`; with
    ``apls_gsd``, also ``mean_apls`` of the road graphs at that many metres
    per pixel),
    ``images`` (per-image rows) and ``failed`` (id -> message).
    """
    if (images_dir is None) != (nodata is None):
        raise ValueError("images_dir and nodata go together")
    truths = find_masks(truth_dir)
    preds = find_masks(pred_dir)
    images = {} if images_dir is None else find_images(images_dir)[0]
    rows, counts, failed = [], [], {}
    for image_id, tpath in truths.items():
        try:
            truth = read_mask(tpath)
            scored = None if nodata is None else ~_fill(images, image_id, nodata, truth.shape)
        except InputError as exc:
            failed[image_id] = str(exc)
            continue
        ppath = preds.get(image_id)
        try:
            if ppath is None:
                raise InputError(Path(pred_dir) / f"{image_id}_mask.png",
                                 "prediction missing (scored as empty)")
            pred = read_mask(ppath, truth.shape)
        except InputError as exc:
            failed[image_id] = str(exc)
            pred = truth & False
        if scored is not None:
            truth, pred = truth & scored, pred & scored
        c = confusion(pred, truth)
        counts.append(c)
        n = truth.size if scored is None else int(scored.sum())
        rows.append({"id": image_id, "iou": c.iou, "precision": c.precision,
                     "recall": c.recall, "road_fraction": (c.tp + c.fn) / max(n, 1),
                     "tp": c.tp, "fp": c.fp, "fn": c.fn})
        if scored is not None:
            rows[-1]["ignored_fraction"] = 1 - n / truth.size
        if apls_gsd is not None:
            rows[-1]["apls"] = apls(mask_to_graph(truth, apls_gsd), mask_to_graph(pred, apls_gsd),
                                    apls_gsd)
    extra = sorted(set(preds) - set(truths))
    summary = summarise(counts)
    if apls_gsd is not None:
        summary["mean_apls"] = float(np.mean([r["apls"] for r in rows])) if rows else 0.0
    return {"summary": summary, "images": rows, "failed": failed,
            "predictions_without_truth": extra}


def format_table(result: dict) -> str:
    """Per-image table and summary as plain text."""
    has_apls = "mean_apls" in result["summary"]
    has_fill = any("ignored_fraction" in r for r in result["images"])
    lines = [f"{'id':<24} {'IoU':>7} {'prec':>7} {'recall':>7} {'road%':>7}"
             + (f" {'APLS':>7}" if has_apls else "") + (f" {'fill%':>7}" if has_fill else "")]
    for r in result["images"]:
        lines.append(f"{r['id']:<24} {r['iou']:7.4f} {r['precision']:7.4f} {r['recall']:7.4f} "
                     f"{100 * r['road_fraction']:7.2f}" + (f" {r['apls']:7.4f}" if has_apls else "")
                     + (f" {100 * r['ignored_fraction']:7.2f}" if has_fill else ""))
    s = result["summary"]
    lines.append("-" * 56)
    lines.append(f"mean per-image IoU {s['mean_iou']:.4f} over {s['n_images']} images "
                 f"| pooled IoU {s['pooled_iou']:.4f} | precision {s['precision']:.4f} "
                 f"| recall {s['recall']:.4f}"
                 + (f" | mean APLS {s['mean_apls']:.4f}" if has_apls else ""))
    return "\n".join(lines)


__all__ = ["evaluate", "format_table", "find_masks", "Counts"]
