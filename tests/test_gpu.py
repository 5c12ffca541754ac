"""GPU/CPU parity. Runs where a working GPU (CuPy) is present; skips elsewhere."""

import numpy as np
import pytest

from roadfeat.backend import get_backend, gpu_available, to_host
from roadfeat.features import compute_features, default_spec, feature_names
from roadfeat.metrics import iou
from roadfeat.synth import make_scene

OK, WHY = gpu_available()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not OK, reason=f"no working GPU here ({WHY})")]


def test_features_match_cpu_within_tolerance():
    rgb, _ = make_scene(np.random.default_rng(3), 256)
    spec = default_spec()
    cpu = compute_features(rgb, spec, get_backend("cpu"))
    gpu = to_host(compute_features(rgb, spec, get_backend("gpu")))
    for i, name in enumerate(feature_names(spec)):
        scale = np.abs(cpu[i]).max() + 1e-6
        # Interior only: borders differ by the resampling convention.
        err = np.abs(cpu[i, 8:-8, 8:-8] - gpu[i, 8:-8, 8:-8]).max() / scale
        assert err < 2e-3, f"{name}: relative error {err:.2e}"


def test_masks_agree_between_backends(tmp_path):
    from roadfeat.extract import extract
    from roadfeat.model import RoadModel
    from roadfeat.synth import write_scenes
    from roadfeat.train import train

    write_scenes(tmp_path / "tr", 6, seed=5, size=256)
    cpu = get_backend("cpu")
    extract(tmp_path / "tr", tmp_path / "f", default_spec(), cpu, quiet=True)
    train(tmp_path / "f", tmp_path / "m", cpu, quiet=True)
    model = RoadModel.load(tmp_path / "m")
    for seed in range(3):
        rgb, _ = make_scene(np.random.default_rng(100 + seed), 256)
        a = model.predict(rgb, cpu)
        b = model.predict(rgb, get_backend("gpu"))
        assert iou(a, b) >= 0.999


def test_filters_outside_the_default_spec_match_cpu():
    from roadfeat.features.morphology import disc_tophats
    from roadfeat.features.paths import path_openings
    from roadfeat.features.texture import pantex

    img = np.random.default_rng(4).random((96, 80)).astype(np.float32)
    gpu_img = get_backend("gpu").asarray(img)
    for cpu_out, gpu_out in ((disc_tophats(img, 9), disc_tophats(gpu_img, 9)),
                             (path_openings(img, [21, 41], 16),
                              path_openings(gpu_img, [21, 41], 16)),
                             ([pantex(img, 4)], [pantex(gpu_img, 4)])):
        for a, b in zip(cpu_out, gpu_out):
            np.testing.assert_allclose(to_host(b), a, atol=1e-6)


def test_tree_kernel_equals_its_twin_and_lightgbm():
    import lightgbm as lgb

    from roadfeat.forest import parse_model, predict_device, predict_host

    rng = np.random.default_rng(5)
    X = rng.normal(size=(20000, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0.3).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan
    X[rng.random(X.shape) < 0.05] = 0.0
    for params in ({}, {"zero_as_missing": True}, {"extra_trees": True, "num_leaves": 63}):
        booster = lgb.LGBMClassifier(n_estimators=60, verbose=-1, **params).fit(X, y).booster_
        forest = parse_model(booster.model_to_string())
        Xt = rng.normal(size=(50000, 12)).astype(np.float32)
        nodes = rng.integers(0, len(forest.feature), 50000)
        Xt[np.arange(50000), forest.feature[nodes]] = forest.threshold[nodes].astype(np.float32)
        Xt[rng.random(Xt.shape) < 0.05] = np.nan
        gpu = to_host(predict_device(forest, get_backend("gpu").asarray(Xt.T)))
        np.testing.assert_allclose(gpu, predict_host(forest, Xt.T), atol=1e-5)
        np.testing.assert_allclose(gpu, booster.predict(Xt), atol=1e-5)


def test_road_model_scores_on_the_device(plain_model):
    from roadfeat.model import RoadModel

    model = RoadModel.load(plain_model)
    gpu, cpu = get_backend("gpu"), get_backend("cpu")
    rgb, _ = make_scene(np.random.default_rng(7), 256)
    stack = compute_features(rgb, model.card["spec"], gpu)
    on_device = RoadModel.stage_probability(model.booster, stack)
    assert type(on_device).__module__.startswith("cupy"), "the stack left the device"
    host = RoadModel.stage_probability(model.booster, to_host(stack))
    np.testing.assert_allclose(to_host(on_device), host, atol=1e-5)
    # Features 1e-4 apart send some pixels to the other side of a split, so the
    # maps differ at single pixels by up to a few hundredths (0.029 here on an
    # H100, 2026-12-06), and almost nowhere else.
    diff = np.abs(model.probability(rgb, cpu) - model.probability(rgb, gpu))
    assert diff.mean() < 1e-3 and diff.max() < 0.1, (diff.mean(), diff.max())


def test_line_morphology_on_the_device_equals_opencv_exactly():
    from roadfeat.features.morphology import line_morphology, line_openings

    img = np.random.default_rng(6).random((150, 97)).astype(np.float32)
    gpu_img = get_backend("gpu").asarray(img)
    for length in (21, 81):
        for a, b in zip(line_morphology(img, length, 16) + line_openings(img, length, 12),
                        line_morphology(gpu_img, length, 16) + line_openings(gpu_img, length, 12)):
            assert type(b).__module__.startswith("cupy")
            np.testing.assert_array_equal(to_host(b), a)
