"""RoadModel: what predicting computes."""

import lightgbm as lgb
import numpy as np
import pytest

from roadfeat.backend import get_backend
from roadfeat.features import compute_features, without_context
from roadfeat.model import RoadModel
from roadfeat.synth import make_scene

CPU = get_backend("cpu")


def test_features_no_tree_uses_are_not_computed_and_change_nothing(trained):
    base = RoadModel.load(trained / "model")
    spec = without_context(base.card["spec"])
    rgb, truth = make_scene(np.random.default_rng(6), 192)
    stack = compute_features(rgb, spec, CPU, 0.5)
    X = stack.reshape(stack.shape[0], -1).T.copy()
    keep = [base.names.index(n) for n in ("gauss_lum_s4", "hess_lmax_lum_s2", "std_lum_s8")]
    X[:, [i for i in range(X.shape[1]) if i not in keep]] = 0  # nothing else to split on
    y = truth[::2, ::2].ravel()
    booster = lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(X, y).booster_
    card = dict(base.card, spec=spec, context_names=[], adapt=None, calibration=None)
    model = RoadModel(booster, card)

    assert model.needed is not None
    assert {base.names[i] for i in keep} <= model.needed < set(base.names)
    pruned = model.probability(rgb, CPU)
    full = model.probability(rgb, CPU, intermediates={})  # asks for every feature
    np.testing.assert_array_equal(pruned, full)
    assert 0 < pruned.min() < pruned.max() < 1

    # Self-training fits a booster on every image feature: all are computed.
    assert RoadModel(booster, dict(card, adapt={"rounds": 5})).needed is None


def test_intermediates_hold_the_map_before_and_after_calibration(trained):
    from roadfeat.calibration import apply_platt

    model = RoadModel.load(trained / "model")
    cal = model.card["calibration"]
    rgb, _ = make_scene(np.random.default_rng(7), 192)
    got: dict = {}
    model.probability(rgb, CPU, intermediates=got)
    np.testing.assert_array_equal(apply_platt(got["uncalibrated"], cal["a"], cal["b"]),
                                  got["calibrated"])
    assert not np.array_equal(got["uncalibrated"], got["calibrated"])
    assert got["uncalibrated"].shape == got["calibrated"].shape == got["stack"].shape[1:]


def test_the_cards_threshold_rule_shifts_each_images_threshold(trained):
    from roadfeat.calibration import ThresholdRule, expected_iou_threshold

    base = RoadModel.load(trained / "model")
    rgb, _ = make_scene(np.random.default_rng(8), 192)
    prob = base.probability(rgb, CPU)
    plain = RoadModel(base.booster, dict(base.card, threshold_rule=None), base.context_booster)
    assert plain.threshold_for(prob) == expected_iou_threshold(prob)
    rule = ThresholdRule(shift=0.1, slope=0.0, centre=0.5)
    shifted = RoadModel(base.booster, dict(base.card, threshold_rule=rule.to_dict()),
                        base.context_booster)
    assert shifted.threshold_for(prob) == pytest.approx(min(expected_iou_threshold(prob) + 0.1, 0.98))
    assert shifted.with_threshold(0.3).threshold_for(prob) == 0.3  # a fixed threshold wins
