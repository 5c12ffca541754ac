"""Evaluation stage: predicted masks against truth masks, by image id."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .apls import apls
from .io import InputError, read_mask
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


def evaluate(pred_dir, truth_dir, apls_gsd: float | None = None) -> dict:
    """Score every truth mask against its prediction.

    A truth mask without a prediction is scored as an empty prediction and
    listed under ``failed``; so is a prediction that cannot be read.

    Returns
    -------
    dict with ``summary`` (see :func:`roadfeat.metrics.summarise`; with
    ``apls_gsd``, also ``mean_apls`` of the road graphs at that many metres
    per pixel),
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
    lines = [f"{'id':<24} {'IoU':>7} {'prec':>7} {'recall':>7} {'road%':>7}"
             + (f" {'APLS':>7}" if has_apls else "")]
    for r in result["images"]:
        lines.append(f"{r['id']:<24} {r['iou']:7.4f} {r['precision']:7.4f} {r['recall']:7.4f} "
                     f"{100 * r['road_fraction']:7.2f}" + (f" {r['apls']:7.4f}" if has_apls else ""))
    s = result["summary"]
    lines.append("-" * 56)
    lines.append(f"mean per-image IoU {s['mean_iou']:.4f} over {s['n_images']} images "
                 f"| pooled IoU {s['pooled_iou']:.4f} | precision {s['precision']:.4f} "
                 f"| recall {s['recall']:.4f}"
                 + (f" | mean APLS {s['mean_apls']:.4f}" if has_apls else ""))
    return "\n".join(lines)


__all__ = ["evaluate", "format_table", "find_masks", "Counts"]
