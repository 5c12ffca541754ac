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
