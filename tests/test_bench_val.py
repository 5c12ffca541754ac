"""The validation benchmark (benchmarks/bench_val.py): its hindsight bound and variants."""

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


def test_a_model_with_a_threshold_rule_is_also_scored_without_its_shift():
    from roadfeat.model import DEFAULT_MODEL, RoadModel

    base = RoadModel.load(DEFAULT_MODEL)
    plain = RoadModel(base.booster, dict(base.card, threshold_rule=None), base.context_booster)
    ruled = RoadModel(base.booster, dict(base.card, threshold_rule={"shift": 0.05, "slope": 0.2,
                                                                    "centre": 0.4}),
                      base.context_booster)
    name = "plug-in threshold (no learned shift)"
    assert name not in bench.variants(plain)
    which, thr, post = bench.variants(ruled)[name]
    assert thr == bench.PLUG_IN and which == bench.variants(ruled)["default"][0]
    assert bench.variants(ruled)["default"][1] is None  # the model's own rule
    # Another model's learned rule, on this model's maps.
    other = bench.variants(plain, rule_from=ruled, rule_name="m2")["threshold rule of m2"]
    assert other[1] == ruled.threshold_rule and other[0] == bench.variants(plain)["default"][0]


def test_a_missing_model_folder_is_a_one_line_error(tmp_path, capsys):
    assert bench.main(["--model", str(tmp_path / "nope"), "--val", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err and "model folder not found" in err


def test_a_saved_map_reloads_exactly_with_its_threshold(tmp_path):
    prob = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    bench.save_map(tmp_path / "maps" / "1.npz", prob, 0.4125)
    saved = np.load(tmp_path / "maps" / "1.npz")
    assert saved["prob"].dtype == np.float32 and np.array_equal(saved["prob"], prob)
    assert float(saved["threshold"]) == 0.4125
    assert [p.name for p in (tmp_path / "maps").iterdir()] == ["1.npz"]  # no .part left


def test_a_maps_folder_that_cannot_be_made_is_a_one_line_error_before_any_tile(tmp_path, capsys):
    from roadfeat.model import DEFAULT_MODEL

    (tmp_path / "file").write_text("")
    code = bench.main(["--model", str(DEFAULT_MODEL), "--val", str(tmp_path / "none"),
                       "--maps", str(tmp_path / "file" / "maps")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot write maps there" in err
