"""Windowed prediction: the same features, probabilities and masks as the whole image."""

import numpy as np
import pytest

from roadfeat.backend import get_backend
from roadfeat.features import compute_features, without_context
from roadfeat.features.spec import receptive_radius
from roadfeat.model import RoadModel
from roadfeat.scene import grid_step, halos, predict_array, windows
from roadfeat.synth import make_scene

CPU = get_backend("cpu")


@pytest.fixture(scope="module")
def model(trained):
    return RoadModel.load(trained / "model")


@pytest.fixture(scope="module")
def scene():
    rgb, truth = make_scene(np.random.default_rng(7), 640)
    return rgb, truth


def test_windows_cover_every_pixel_once():
    hits = np.zeros((1000, 777), int)
    for w in windows(hits.shape, 256, 40, 30, step=2):
        hits[w.core] += 1
        for outer, inner in ((w.read, w.region), (w.region, w.core)):
            for o, i in zip(outer, inner):
                assert o.start <= i.start and i.stop <= o.stop
        assert all(s.start % 2 == 0 for s in w.read + w.region + w.core)
    assert (hits == 1).all()


def test_grid_step_makes_offsets_whole_working_pixels():
    assert grid_step(0.5, 1.0) == 2
    assert grid_step(1.0, 1.0) == 1
    assert grid_step(0.3, 1.0) == 10


def test_receptive_radius_is_enough_for_identical_features(model, scene):
    """Features of a window read with the halo equal the whole image's in its core."""
    rgb, _ = scene
    spec = model.card["spec"]
    whole = compute_features(rgb, spec, CPU, 0.5)
    feat, _ = halos(model, 0.5)
    assert feat * 0.5 >= receptive_radius(spec) * spec["working_gsd"]
    for w in windows(rgb.shape[:2], 256, feat, 0, grid_step(0.5, spec["working_gsd"])):
        part = compute_features(np.ascontiguousarray(rgb[w.read]), spec, CPU, 0.5)
        # Working grid is half the input grid at 0.5 m.
        core = tuple(slice(c.start // 2, c.stop // 2) for c in w.core)
        inner = tuple(slice((c.start - r.start) // 2, (c.stop - r.start) // 2)
                      for r, c in zip(w.read, w.core))
        np.testing.assert_allclose(part[(slice(None),) + inner], whole[(slice(None),) + core],
                                   atol=1e-4, rtol=1e-4)


def test_tiled_mask_matches_whole_image_mask_at_one_threshold(model, scene):
    """Probabilities match to float rounding; at the whole image's threshold so do the masks.

    The FFT sizes of a window and the whole image differ, so features differ
    in their last bits, and a tree split that lies within them can flip: a few
    pixels' probabilities move, and post-processing (components, bridges) can
    spread a pixel that crosses the threshold. Measured on this scene with the
    119-feature spec: 4 pixels moved by more than 1e-5 (at most 0.0012), 500
    mask pixels (0.12 %) differed. (Under the default per-image threshold each
    window chooses its own, and per-image self-training fits each window's own
    booster, so it is off here.)
    """
    rgb, truth = scene
    model = model.without_adapt()
    whole_prob = model.probability(rgb, CPU, 0.5)
    feat, post = halos(model, 0.5)
    tiled_prob = np.full(whole_prob.shape, np.nan, np.float32)
    for w in windows(rgb.shape[:2], 192, feat, post, grid_step(0.5, 1.0)):
        read = model.probability(np.ascontiguousarray(rgb[w.read]), CPU, 0.5)
        tiled_prob[w.core] = read[w.inner(w.read, w.core)]
    moved = np.abs(tiled_prob - whole_prob)
    assert moved.max() < 0.01 and (moved > 1e-5).mean() < 1e-3

    fixed = model.with_threshold(model.threshold_for(whole_prob))
    whole = fixed.predict(rgb, CPU, 0.5)
    tiled = predict_array(fixed, rgb, CPU, 0.5, window=192)
    assert whole.any() and not whole.all()
    assert (tiled != whole).mean() < 0.005
    assert (tiled & whole).sum() / (tiled | whole).sum() > 0.98


def test_one_window_is_the_plain_predict(model, scene):
    rgb, _ = scene
    np.testing.assert_array_equal(predict_array(model, rgb, CPU, 0.5, window=4096),
                                  model.predict(rgb, CPU, 0.5))


def test_predict_nodata_fill_is_never_road_and_redoes_masks_of_another_value(
        trained, scene, tmp_path, capsys):
    import cv2

    from roadfeat.cli import main
    from roadfeat.io import read_mask, write_bytes_atomic

    rgb, _ = scene
    rgb = rgb.copy()
    rgb[:, :200] = 255  # padding on the left
    (tmp_path / "in").mkdir()
    write_bytes_atomic(tmp_path / "in" / "a_sat.png", cv2.imencode(".png", rgb[..., ::-1])[1].tobytes())
    args = ["predict", "--model", str(trained / "model"), "--images", str(tmp_path / "in"),
            "--out", str(tmp_path / "out"), "--device", "cpu"]
    masks = {}
    for name, more in (("plain", []), ("nodata", ["--nodata", "255"]), ("again", ["--nodata", "255"])):
        capsys.readouterr()
        assert main(args + more) == 0
        masks[name] = read_mask(tmp_path / "out" / "a_mask.png")
        masks[name + "-log"] = capsys.readouterr().err
    assert masks["plain"][:, :200].any()  # white padding passes for road without --nodata
    assert not masks["nodata"][:, :200].any() and masks["nodata"][:, 200:].any()
    assert "1 done, 0 reused" in masks["nodata-log"]  # not the plain run's mask
    assert "0 done, 1 reused" in masks["again-log"]


def test_memory_bound_grows_with_the_window_and_the_model():
    from roadfeat.model import DEFAULT_MODEL
    from roadfeat.scene import memory_bound

    model = RoadModel.load(DEFAULT_MODEL)
    gib = [memory_bound(model, 0.5, w) / 2**30 for w in (512, 1024, 2048, 4096)]
    assert gib == sorted(gib)
    # docs/SCENES.md states these for the shipped model at 0.5 m.
    assert [round(g, 2) for g in gib] == [2.15, 2.66, 3.97, 7.79]
    one_stage = RoadModel(model.booster, dict(model.card, spec=without_context(model.card["spec"]),
                                              context_names=[]))
    assert memory_bound(one_stage, 0.5, 2048) < memory_bound(model, 0.5, 2048)
    # Two images in flight (predict's default on the CPU) hold two windows; the
    # process and the spectra cache are shared.
    assert round(memory_bound(model, 0.5, 2048, images_at_once=2) / 2**30, 2) == 6.81
