"""Per-image self-training: what it learns from an image's own mask, and where the card keeps it."""

import json
import shutil

import numpy as np
import pytest

from roadfeat.adapt import AdaptParams, adapt, self_train
from roadfeat.backend import get_backend
from roadfeat.cli import main
from roadfeat.io import read_image
from roadfeat.model import RoadModel

CPU = get_backend("cpu")
SMALL = AdaptParams(rows=6000, rounds=30)


def _scene(seed=0, size=96):
    """A feature stack whose first channel says road, and a map that misses part of it."""
    rng = np.random.default_rng(seed)
    road = np.zeros((size, size), bool)
    road[:, 40:48] = True
    road[60:66, :] = True
    stack = np.stack([road + 0.1 * rng.standard_normal(road.shape),
                      rng.standard_normal(road.shape)]).astype(np.float32)
    prob = np.where(road, 0.9, 0.02).astype(np.float32)
    missed = road & (rng.random(road.shape) < 0.1)
    prob[missed] = 0.02  # the model missed these, though they look like the rest
    return stack, prob, road, missed


def test_self_training_recovers_pixels_that_look_like_the_images_roads():
    stack, prob, road, missed = _scene()
    own = self_train(stack, prob, SMALL)
    assert own.shape == prob.shape and own.dtype == np.float32
    assert own[missed].mean() > 0.5
    assert own[~road].mean() < 0.1


def test_self_training_is_seeded():
    stack, prob, _, _ = _scene()
    np.testing.assert_array_equal(self_train(stack, prob, SMALL, seed=3),
                                  self_train(stack, prob, SMALL, seed=3))


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_a_map_with_nothing_to_learn_from_is_returned_as_is(value):
    stack, _, _, _ = _scene()
    flat = np.full(stack.shape[1:], value, np.float32)
    np.testing.assert_array_equal(self_train(stack, flat, SMALL), flat)


def test_adapt_mixes_the_map_with_its_self_trained_map():
    stack, prob, _, _ = _scene()
    spec = {"features": []}  # no support opening
    p = AdaptParams(weight=0.25, rows=6000, rounds=30)
    np.testing.assert_allclose(adapt(stack, prob, p, spec, CPU),
                               0.75 * prob + 0.25 * self_train(stack, prob, p), atol=1e-6)


@pytest.fixture(scope="module")
def adapted(trained, tmp_path_factory):
    """A model trained with ``--adapt`` (self-training is off by default)."""
    out = tmp_path_factory.mktemp("adapted") / "m"
    assert main(["train", "--features", str(trained / "feat"), "--out", str(out),
                 "--device", "cpu", "--threads", "2", "--folds", "2", "--adapt",
                 "--quiet"]) == 0
    return out


def test_card_keeps_the_self_training_and_predict_applies_it(adapted, synth_dirs):
    model = RoadModel.load(adapted)
    assert model.adapt == AdaptParams()
    _, test_dir = synth_dirs
    rgb = read_image(sorted(test_dir.glob("*_sat.jpg"))[0])
    with_, without = (m.probability(rgb, CPU) for m in (model, model.without_adapt()))
    assert with_.shape == without.shape == rgb.shape[:2]
    assert not np.allclose(with_, without)


def test_intermediates_are_what_self_training_starts_from(adapted, synth_dirs):
    from roadfeat.features import context_names, feature_names
    from roadfeat.model import backend_resize_host

    model = RoadModel.load(adapted)
    spec = model.card["spec"]
    rgb = read_image(sorted(synth_dirs[1].glob("*_sat.jpg"))[0])
    got: dict = {}
    prob = model.probability(rgb, CPU, intermediates=got)
    assert got["stack"].shape[0] == len(feature_names(spec))
    assert got["context"].shape == (len(context_names(spec)),) + got["stack"].shape[1:]
    assert got["calibrated"].shape == got["stack"].shape[1:]
    again = adapt(got["stack"], got["calibrated"], model.adapt, spec, CPU,
                  int(model.card["seed"]))
    np.testing.assert_array_equal(backend_resize_host(again, rgb.shape[:2]), prob)


def test_self_training_is_off_by_default_and_with_no_adapt(trained, tmp_path):
    assert RoadModel.load(trained / "model").card["adapt"] is None
    assert main(["train", "--features", str(trained / "feat"), "--out", str(tmp_path / "m"),
                 "--device", "cpu", "--threads", "2", "--folds", "2", "--adapt", "--no-adapt",
                 "--quiet"]) == 0
    model = RoadModel.load(tmp_path / "m")
    assert model.card["adapt"] is None and model.adapt is None


def test_card_from_before_self_training_loads_without_it(trained, tmp_path):
    shutil.copytree(trained / "model", tmp_path / "m")
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    del card["adapt"]
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    assert RoadModel.load(tmp_path / "m").adapt is None


def test_bad_adapt_entry_is_a_one_line_error(trained, tmp_path, synth_dirs, capsys):
    shutil.copytree(trained / "model", tmp_path / "m")
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    card["adapt"] = 0.5
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    _, test_dir = synth_dirs
    assert main(["predict", "--model", str(tmp_path / "m"), "--images", str(test_dir),
                 "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "card.json" in err[0] and "adapt" in err[0]
