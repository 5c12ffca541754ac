#!/usr/bin/env python
"""Which map statistic should shift each image's threshold? Fit on training maps only.

    python benchmarks/bench_threshold_rule.py --features features/train302v4 \\
        --out-model models/train302v6 --out bench_out/threshold_rule.json

Trains a model exactly as ``roadfeat train`` does (same defaults) and keeps
the IoU curve of every out-of-fold map that training fits its threshold rule
on (:class:`roadfeat.calibration.IoUCurve`). For each candidate statistic of
a map it then fits the rule ``plug-in + shift + slope * (statistic - median)``
by :func:`roadfeat.calibration.fit_threshold_rule` and prints the mean IoU
(threshold only) that the fit reaches on those same training maps, beside
the plug-in threshold alone, the best global shift, and each map's best
threshold in hindsight. No validation tile is read: the statistic is chosen
on training images, and the split then scores the one choice
(``bench_val.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import roadfeat.train as train_module  # noqa: E402
from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.calibration import (IoUCurve, confident_share, expected_iou_threshold,  # noqa: E402
                                  fit_threshold_rule)
from roadfeat.io import write_json_atomic  # noqa: E402


#: name -> statistic of a calibrated map (the first is roadfeat's).
STATISTICS = {
    "share >= 0.6 of >= 0.3 (confident_share)": confident_share,
    "share >= 0.8 of >= 0.3": lambda p: confident_share(p, 0.3, 0.8),
    "share >= 0.8 of >= plug-in threshold":
        lambda p: confident_share(p, expected_iou_threshold(p), 0.8),
    "share >= 0.9 of >= 0.5": lambda p: confident_share(p, 0.5, 0.9),
    "mean probability": lambda p: float(np.mean(p)),
    "plug-in threshold": expected_iou_threshold,
}


class RecordingCurve(IoUCurve):
    """An IoU curve that also keeps every candidate statistic of its map."""

    made: list = []

    def __init__(self, prob, truth):
        super().__init__(prob, truth)
        self.stats = {name: float(f(np.asarray(prob))) for name, f in STATISTICS.items()}
        RecordingCurve.made.append(self)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", required=True, help="features folder of the training images")
    ap.add_argument("--out-model", required=True, help="where the trained model goes")
    ap.add_argument("--out", default=None, help="JSON of every figure")
    a = ap.parse_args(argv)

    train_module.IoUCurve = RecordingCurve
    try:
        train_module.train(a.features, a.out_model, get_backend("cpu"), quiet=True)
    finally:
        train_module.IoUCurve = IoUCurve
    curves = RecordingCurve.made
    if not curves:
        print("bench_threshold_rule: training fit no threshold rule (too few images)",
              file=sys.stderr)
        return 2
    plug_in = float(np.mean([c.iou([c.plug_in])[0] for c in curves]))
    grid = np.round(np.arange(0.025, 0.951, 0.025), 3)
    hindsight = float(np.mean([c.iou(grid).max() for c in curves]))
    _, global_shift = fit_threshold_rule(curves, slopes=[0.0])
    rows = {}
    for name in STATISTICS:
        for c in curves:
            c.share = c.stats[name]
        rule, score = fit_threshold_rule(curves)
        rows[name] = {"mean_iou": score, "shift": rule.shift, "slope": rule.slope,
                      "centre": rule.centre}
    print(f"\n{len(curves)} out-of-fold training maps, threshold only\n")
    print("| threshold | mean per-image IoU | shift | slope | centre |")
    print("|---|---|---|---|---|")
    print(f"| plug-in expected-IoU threshold | {plug_in:.4f} | | | |")
    print(f"| plug-in + one global shift | {global_shift:.4f} | | | |")
    for name, r in rows.items():
        print(f"| plug-in + shift by {name} | {r['mean_iou']:.4f} | {r['shift']:+.4f} | "
              f"{r['slope']:+.4f} | {r['centre']:.4f} |")
    print(f"| each map's best threshold (hindsight) | {hindsight:.4f} | | | |")
    if a.out:
        write_json_atomic(a.out, {"features": a.features, "maps": len(curves),
                                  "plug_in_mean_iou": plug_in, "global_shift_mean_iou": global_shift,
                                  "hindsight_mean_iou": hindsight, "statistics": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
