"""The validation benchmark's hindsight bound (benchmarks/bench_val.py)."""

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).parents[1] / "benchmarks" / "bench_val.py"
_SPEC = importlib.util.spec_from_file_location("bench_val", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_hindsight_picks_the_threshold_with_the_best_iou_against_the_labels():
    # Road on the first 4 pixels; two background pixels at 0.6 and one road pixel at 0.3.
    prob = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.6, 0.1, 0.0], np.float32)
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    t, c = bench.hindsight(prob, truth, grid=np.array([0.2, 0.5, 0.65, 0.95]))
    # 0.2: 4 hits, 2 false alarms (4/6); 0.5: 3/6; 0.65: 3 hits, 1 miss (3/4); 0.95: 0.
    assert t == 0.65 and (c.tp, c.fp, c.fn) == (3, 0, 1) and c.iou == 0.75
    t, c = bench.hindsight(prob, truth)
    assert 0.6 < t <= 0.7 and c.iou == 0.75
