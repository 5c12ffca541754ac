"""Road-class scores as the DeepGlobe Road Extraction Challenge computes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """Pixel confusion counts of the road class for one image."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def iou(self) -> float:
        """Road IoU; 1.0 when truth and prediction are both empty."""
        union = self.tp + self.fp + self.fn
        return 1.0 if union == 0 else self.tp / union

    @property
    def precision(self) -> float:
        d = self.tp + self.fp
        return 1.0 if d == 0 else self.tp / d

    @property
    def recall(self) -> float:
        d = self.tp + self.fn
        return 1.0 if d == 0 else self.tp / d


def confusion(pred: np.ndarray, truth: np.ndarray) -> Counts:
    """Confusion counts of two boolean masks of the same shape."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return Counts(tp, fp, fn, pred.size - tp - fp - fn)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Road IoU of one image (1.0 when both are empty)."""
    return confusion(pred, truth).iou


def summarise(counts: list[Counts]) -> dict:
    """Challenge score (mean per-image IoU) plus pooled IoU, precision, recall."""
    if not counts:
        return {"n_images": 0, "mean_iou": float("nan"), "pooled_iou": float("nan"),
                "precision": float("nan"), "recall": float("nan")}
    pooled = Counts(*(sum(getattr(c, k) for c in counts) for k in ("tp", "fp", "fn", "tn")))
    return {
        "n_images": len(counts),
        "mean_iou": float(np.mean([c.iou for c in counts])),
        "pooled_iou": pooled.iou,
        "precision": pooled.precision,
        "recall": pooled.recall,
    }
