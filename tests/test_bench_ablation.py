"""The ablation benchmark's variants and scoring (benchmarks/bench_ablation.py)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from roadfeat.features.spec import KINDS, feature_names

_PATH = Path(__file__).parents[1] / "benchmarks" / "bench_ablation.py"
_SPEC = importlib.util.spec_from_file_location("bench_ablation", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


#: Variants measured against the 101-feature default of the nineteenth session's start,
#: and against the 119-feature one of the twentieth; the others, against the 86-feature one.
ON_101 = {n for n, v in bench.VARIANTS.items() if "trim" in v} | {
    "add-pantex4-16", "add-line_morph81", "add-line_morph-sat", "add-tophat21-31"}
ON_119 = {"add-line_morph-exg", "add-line_morph-labb", "add-line-exg", "add-gabor-sat"}


def table_spec(name):
    """The spec a variant was measured against: the default of the day."""
    benchmarks = Path(__file__).parents[1] / "benchmarks"
    if name in ON_119:
        return json.loads((benchmarks / "candidates" / "lmorph-sat81-pantex.json").read_text())
    if name in ON_101:
        return json.loads((benchmarks / "candidates" / "lines81-tophat.json").read_text())
    return json.loads((benchmarks / "specs" / "base" / "default-86.json").read_text())


def _scale_names(spec, kind, scales):
    """Names of the features one kind gives at the given scales."""
    key = KINDS[kind].scale
    entries = [dict(e, **{key: [s for s in e[key] if s in scales]})
               for e in spec["features"] if e["kind"] == kind]
    return feature_names(bench.added_spec(spec, [e for e in entries if e[key]]))


@pytest.mark.parametrize("name", sorted(bench.VARIANTS))
def test_each_variant_is_a_valid_spec_that_changes_only_what_it_names(name):
    spec = table_spec(name)
    base = feature_names(spec)
    v = bench.VARIANTS[name]
    names = feature_names(bench.variant_spec(spec, v))
    dropped = [n for n in base if n not in names]
    added = [n for n in names if n not in base]
    added_spec = bench.added_spec(spec, v.get("add", []))
    assert added == (feature_names(added_spec) if v.get("add") else [])
    if v.get("drop"):
        assert dropped and not added
        kind_names = feature_names(bench.added_spec(
            spec, [e for e in spec["features"] if e["kind"] in v["drop"]]))
        assert dropped == kind_names
    elif v.get("trim"):
        assert dropped and not added
        assert sorted(dropped) == sorted(n for k, s in v["trim"].items()
                                         for n in _scale_names(spec, k, s))
    else:
        assert not dropped
    if v.get("gbm") or v.get("rounds"):
        assert not dropped and not added


def test_the_smallest_scales_are_those_of_the_spec_they_were_measured_on():
    for e in table_spec("no-smallest")["features"]:
        key = KINDS[e["kind"]].scale
        if key is not None:
            assert bench.SMALLEST[e["kind"]] == min(e[key])


def test_scores_are_per_tile_iou_at_the_best_shared_threshold():
    # Tile 0: truth on pixels 0-1, prob 0.9/0.9/0.3/0.1; tile 1: empty truth, prob 0.2 x 4.
    prob = np.array([0.9, 0.9, 0.3, 0.1, 0.2, 0.2, 0.2, 0.2], np.float32)
    truth = np.array([1, 1, 0, 0, 0, 0, 0, 0], bool)
    tiles = np.repeat([0, 1], 4)
    r = bench.scores(prob, truth, tiles, 2)
    # From 0.35 up to 0.9, tile 0 is exact and tile 1 empty in both: IoU 1 each.
    assert r["best_threshold"] == 0.35 and r["per_tile"] == [1.0, 1.0]
    assert r["mean_iou"] == 1.0 and r["average_precision"] == 1.0
    worse = bench.scores(prob[::-1].copy(), truth, tiles, 2)
    assert worse["mean_iou"] < 1.0 and worse["average_precision"] < 0.5


def test_default_rows_are_the_rows_train_keeps_and_pos_fraction_is_met(tmp_path):
    from roadfeat.extract import load_rows

    rng = np.random.default_rng(0)
    ids = ["a", "b", "c"]
    (tmp_path / "shards").mkdir()
    for k in ids:
        y = (rng.random(500) < 0.5).astype(np.uint8)
        np.savez(tmp_path / "shards" / f"{k}.npz", X=rng.random((500, 2), dtype=np.float32),
                 y=y, idx=np.arange(500))
    X, y, groups, _ = load_rows(tmp_path, ids)
    kept, _, _, _ = load_rows(tmp_path, ids, max_per_image=100, seed=3)
    rows = bench.training_rows(y, groups, ids, seed=3, budget=300)
    np.testing.assert_array_equal(X[rows], kept)
    rows = bench.training_rows(y, groups, ids, seed=3, budget=300, pos_fraction=0.2)
    assert len(rows) == 300 and y[rows].sum() == 60
    assert all((groups[rows] == g).sum() == 100 for g in range(3))
