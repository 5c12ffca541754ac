"""The threshold rule's statistic benchmark (benchmarks/bench_threshold_rule.py)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).parents[1] / "benchmarks" / "bench_threshold_rule.py"
_SPEC = importlib.util.spec_from_file_location("bench_threshold_rule", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_every_statistic_is_fit_on_the_maps_training_saw(monkeypatch, tmp_path):
    def fake_train(features, out, backend, quiet):
        # Clear highways whose faint tracks are not labelled, and faint tiles whose are.
        for highway, tracks, labelled in [(300, 60, False)] * 4 + [(20, 200, True)] * 4:
            p = np.full(1000, 0.02)
            p[:highway], p[highway:highway + tracks] = 0.9, 0.45
            truth = np.zeros(1000, bool)
            truth[:highway + (tracks if labelled else 0)] = True
            bench.train_module.IoUCurve(p, truth)  # what _validate does with each map

    monkeypatch.setattr(bench.train_module, "train", fake_train)
    monkeypatch.setattr(bench.RecordingCurve, "made", [])
    out = tmp_path / "rule.json"
    assert bench.main(["--features", "f", "--out-model", str(tmp_path / "m"),
                       "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["maps"] == 8 and got["hindsight_mean_iou"] == pytest.approx(1.0)
    assert got["plug_in_mean_iou"] < 1.0
    assert bench.train_module.IoUCurve is bench.IoUCurve  # training is left as it was
    assert set(got["statistics"]) == set(bench.STATISTICS)
    # The confident share separates the two kinds of tile; the mean probability does too.
    assert got["statistics"]["share >= 0.6 of >= 0.3 (confident_share)"]["mean_iou"] == \
        pytest.approx(1.0)
    for r in got["statistics"].values():
        assert got["plug_in_mean_iou"] <= r["mean_iou"] <= 1.0


def test_no_rule_without_validation_maps(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench.train_module, "train", lambda *a, **k: None)
    monkeypatch.setattr(bench.RecordingCurve, "made", [])
    assert bench.main(["--features", "f", "--out-model", str(tmp_path / "m")]) == 2
    assert "no threshold rule" in capsys.readouterr().err
