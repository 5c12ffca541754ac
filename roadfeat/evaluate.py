"""Evaluation stage: predicted masks against truth masks, by image id."""

from __future__ import annotations

import re
from pathlib import Path

from .io import InputError, read_mask
from .metrics import Counts, confusion, summarise

_MASK_RE = re.compile(r"^(?P<id>.+)_mask\.png$")


def find_masks(folder) -> dict[str, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    found = {m.group("id"): p for p in sorted(folder.iterdir())
             if (m := _MASK_RE.match(p.name)) and p.is_file()}
    if not found:
        raise InputError(folder, "no masks named <id>_mask.png")
    return found


def evaluate(pred_dir, truth_dir) -> dict:
    """Score every truth mask against its prediction.

    A truth mask without a prediction is scored as an empty prediction and
    listed under ``failed``; so is a prediction that cannot be read.

    Returns
    -------
    dict with ``summary`` (see :func:`roadfeat.metrics.summarise`),
    ``images`` (per-image rows) and ``failed`` (id -> message).
    """
    truths = find_masks(truth_dir)
    preds = find_masks(pred_dir)
    rows, counts, failed = [], [], {}
    for image_id, tpath in truths.items():
        try:
            truth = read_mask(tpath)
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
        c = confusion(pred, truth)
        counts.append(c)
        rows.append({"id": image_id, "iou": c.iou, "precision": c.precision,
                     "recall": c.recall, "road_fraction": (c.tp + c.fn) / truth.size,
                     "tp": c.tp, "fp": c.fp, "fn": c.fn})
    extra = sorted(set(preds) - set(truths))
    return {"summary": summarise(counts), "images": rows, "failed": failed,
            "predictions_without_truth": extra}


def format_table(result: dict) -> str:
    """Per-image table and summary as plain text."""
    lines = [f"{'id':<24} {'IoU':>7} {'prec':>7} {'recall':>7} {'road%':>7}"]
    for r in result["images"]:
        lines.append(f"{r['id']:<24} {r['iou']:7.4f} {r['precision']:7.4f} {r['recall']:7.4f} "
                     f"{100 * r['road_fraction']:7.2f}")
    s = result["summary"]
    lines.append("-" * 56)
    lines.append(f"mean per-image IoU {s['mean_iou']:.4f} over {s['n_images']} images "
                 f"| pooled IoU {s['pooled_iou']:.4f} | precision {s['precision']:.4f} "
                 f"| recall {s['recall']:.4f}")
    return "\n".join(lines)


__all__ = ["evaluate", "format_table", "find_masks", "Counts"]
