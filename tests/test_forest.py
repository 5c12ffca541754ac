"""The tree arrays of roadfeat.forest, held to LightGBM's own predict (NumPy twin; CPU)."""

import lightgbm as lgb
import numpy as np
import pytest

from roadfeat.forest import ForestError, forest_of, parse_model, predict_host
from roadfeat.model import RoadModel


def _edge_rows(forest, X, rng):
    """Rows at, just below and just above the model's thresholds, plus NaN and zeros."""
    X = X.copy()
    nodes = rng.integers(0, len(forest.feature), size=X.shape[0])
    f, t = forest.feature[nodes], forest.threshold[nodes]
    third = X.shape[0] // 3
    rows = np.arange(X.shape[0])
    X[rows, f] = t.astype(np.float32)  # float32 rounding lands on both sides
    X[rows[:third], f[:third]] = np.nextafter(t[:third], np.inf).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    X[rng.random(X.shape) < 0.05] = 0.0
    return X


def test_twin_equals_lightgbm_on_the_trained_road_models(trained):
    model = RoadModel.load(trained / "model")
    rng = np.random.default_rng(0)
    for booster in (model.booster, model.context_booster):
        forest = forest_of(booster)
        assert forest.n_trees == booster.num_trees()
        X = rng.normal(0.3, 0.5, size=(4000, booster.num_feature())).astype(np.float32)
        X = _edge_rows(forest, X, rng)
        np.testing.assert_allclose(predict_host(forest, X.T), booster.predict(X),
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True},
                                    {"use_missing": False}, {"num_leaves": 2}])
def test_twin_equals_lightgbm_for_each_missing_value_rule(params):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.1] = 0.0
    booster = lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1,
                                 **params).fit(X, y).booster_
    forest = parse_model(booster.model_to_string())
    Xt = _edge_rows(forest, rng.normal(size=(2000, 5)).astype(np.float32), rng)
    np.testing.assert_allclose(predict_host(forest, Xt.T), booster.predict(Xt), atol=1e-5)
    if params.get("zero_as_missing"):
        assert np.any((forest.decision >> 2) & 3 == 1), "no node with missing type Zero"


def test_single_leaf_trees_are_constants():
    X = np.zeros((200, 3), np.float32)
    y = np.r_[np.zeros(150), np.ones(50)].astype(int)
    booster = lgb.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1).fit(X, y).booster_
    forest = parse_model(booster.model_to_string())
    assert np.all(forest.roots < 0)
    np.testing.assert_allclose(predict_host(forest, X.T), booster.predict(X), atol=1e-12)


def test_refuses_what_it_cannot_represent():
    with pytest.raises(ForestError, match="binary"):
        parse_model("tree\nobjective=regression\nmax_feature_idx=1\n")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 2)).astype(np.float32)
    booster = lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, (X[:, 0] > 0).astype(int)).booster_
    with pytest.raises(ForestError, match="features given"):
        predict_host(forest_of(booster), X.T[:1])
