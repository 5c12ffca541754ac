"""Training's validation: the context stage, calibration, and the warning for a model that cannot separate."""

import json
import shutil

import numpy as np
import pytest

from roadfeat.cli import main
from roadfeat.synth import write_scenes
from roadfeat.features import default_spec, without_context
from roadfeat.model import RoadModel
from roadfeat.train import DEFAULT_FOLDS, FIXED_THRESHOLDS


def test_validation_scores_every_training_image_out_of_fold(trained):
    card = json.loads((trained / "model" / "card.json").read_text())
    val = card["validation"]
    assert val["scored_images"] == card["training_data"]["image_ids"]
    assert sorted(sum(val["folds"], [])) == val["scored_images"]
    n_folds = min(DEFAULT_FOLDS, len(val["scored_images"]))
    assert len(val["folds"]) == len(val["best_iterations"]) == n_folds
    assert len(val["context_best_iterations"]) == n_folds
    assert 0 < min(val["per_image_threshold"].values()) < 1
    assert val["mean_iou"] == pytest.approx(np.mean(list(val["per_image_iou"].values())))


def test_map_images_sets_how_many_images_each_fold_maps(trained, tmp_path):
    scored = {}
    for n in (2, 3):
        assert main(["train", "--features", str(trained / "feat"), "--out", str(tmp_path / f"m{n}"),
                     "--device", "cpu", "--threads", "2", "--quiet", "--folds", "2",
                     "--map-images", str(n)]) == 0
        card = json.loads((tmp_path / f"m{n}" / "card.json").read_text())
        scored[n] = card["validation"]["scored_images"]
        assert len(scored[n]) == 2 * n
        assert card["calibration"]["fit_on"] == f"out-of-fold maps of {2 * n} training images"
        assert card["threshold_rule"]["fit_on"] == card["calibration"]["fit_on"]
    # More maps per fold keep the fewer maps' images.
    assert set(scored[2]) < set(scored[3])


def test_fold_models_that_map_many_images_are_compiled(trained, tmp_path, monkeypatch, caplog):
    pytest.importorskip("lleaves")
    import roadfeat.train as train_module

    cards = {}
    for compile_from in (4, 3):  # 3 maps per fold: LightGBM's predict, then compiled trees
        monkeypatch.setattr(train_module, "COMPILE_FROM_MAPS", compile_from)
        caplog.clear()
        with caplog.at_level("INFO", logger="roadfeat"):
            assert main(["train", "--features", str(trained / "feat"), "--out",
                         str(tmp_path / f"m{compile_from}"), "--device", "cpu", "--threads", "2",
                         "--quiet", "--folds", "2", "--map-images", "3"]) == 0
        compiled = [r.getMessage() for r in caplog.records if "compiling" in r.getMessage()]
        assert len(compiled) == (0 if compile_from == 4 else 4)  # 2 folds x 2 stages
        # Into the checkpoint folder, which training then removes; not the user's cache.
        assert all(str(tmp_path / f"m{compile_from}" / ".folds") in m for m in compiled)
        assert not (tmp_path / f"m{compile_from}" / ".folds").exists()
        cards[compile_from] = json.loads((tmp_path / f"m{compile_from}" / "card.json").read_text())
    # The compiled trees score as LightGBM does (within 1e-5), so validation agrees.
    lgbm, comp = (cards[k]["validation"] for k in (4, 3))
    assert lgbm["best_iterations"] == comp["best_iterations"]
    assert comp["mean_iou"] == pytest.approx(lgbm["mean_iou"], abs=0.01)


def test_default_boosters_are_extra_trees(trained):
    card = json.loads((trained / "model" / "card.json").read_text())
    assert card["gbm"]["extra_trees"] is True
    for name in ("model.txt", "context_model.txt"):
        # LightGBM writes the parameters it was trained with into its model file.
        assert "[extra_trees: 1]" in (trained / "model" / name).read_text()


def test_card_stores_the_best_fixed_threshold_of_validation(trained):
    val = json.loads((trained / "model" / "card.json").read_text())["validation"]
    table = {float(t): v for t, v in val["fixed_threshold_mean_iou"].items()}
    assert sorted(table) == list(FIXED_THRESHOLDS)
    assert val["best_fixed_threshold"] == max(table, key=table.get)
    assert val["best_fixed_mean_iou"] == max(table.values())
    # The synthetic roads are learnable, so some fixed threshold scores well.
    assert val["best_fixed_mean_iou"] > 0.3


def test_one_image_trains_one_stage_with_a_fixed_threshold(synth_dirs, tmp_path, caplog):
    train_dir, _ = synth_dirs
    one = tmp_path / "one"
    one.mkdir()
    for p in sorted(train_dir.iterdir())[:2]:  # one image and its mask
        shutil.copyfile(p, one / p.name)
    assert main(["extract", "--images", str(one), "--out", str(tmp_path / "f"), "--device", "cpu",
                 "--pixels-per-image", "2000", "--quiet"]) == 0
    with caplog.at_level("INFO", logger="roadfeat"):
        assert main(["train", "--features", str(tmp_path / "f"), "--out", str(tmp_path / "m"),
                     "--device", "cpu", "--threads", "2"]) == 0
    assert any("first stage only" in r.getMessage() for r in caplog.records)
    model = RoadModel.load(tmp_path / "m")
    assert model.context_booster is None and model.threshold == 0.5
    assert model.card["spec"] == without_context(default_spec())
    assert not (tmp_path / "m" / "context_model.txt").exists()


def test_learned_and_unlearnable_labels_differ_in_the_warning(trained, tmp_path, caplog):
    card = json.loads((trained / "model" / "card.json").read_text())
    assert card["validation"]["mean_predicted_road_share"] < 0.5
    assert "warning" not in card["validation"]
    # Masks of other scenes: road-shaped labels that the images do not show.
    write_scenes(tmp_path / "img", 6, seed=5, size=256, prefix="s")
    write_scenes(tmp_path / "other", 6, seed=6, size=256, prefix="s")
    for a, b in zip(sorted((tmp_path / "img").glob("*_mask.png")),
                    sorted((tmp_path / "other").glob("*_mask.png"))):
        shutil.copyfile(b, a)
    assert main(["extract", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "feat"),
                 "--device", "cpu", "--pixels-per-image", "3000", "--quiet"]) == 0
    with caplog.at_level("WARNING", logger="roadfeat"):
        assert main(["train", "--features", str(tmp_path / "feat"), "--out",
                     str(tmp_path / "model"), "--device", "cpu", "--threads", "2",
                     "--quiet"]) == 0
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    assert card["validation"]["mean_predicted_road_share"] > 0.5
    assert "do not separate road" in card["validation"]["warning"]
    assert any("do not separate road" in r.getMessage() for r in caplog.records)


def test_extra_features_join_the_first_stage_but_are_never_scored(trained, synth_dirs, tmp_path):
    _, test_dir = synth_dirs
    # Pseudo-labels: the model's own masks of scenes it was not trained on.
    assert main(["predict", "--model", str(trained / "model"), "--images", str(test_dir),
                 "--out", str(tmp_path / "pseudo"), "--device", "cpu", "--quiet"]) == 0
    # Extracted as if at another resolution: rows live on the spec's working grid.
    assert main(["extract", "--images", str(test_dir), "--masks", str(tmp_path / "pseudo"),
                 "--out", str(tmp_path / "extra"), "--device", "cpu", "--gsd", "1.0",
                 "--pixels-per-image", "2000", "--quiet"]) == 0
    models = {}
    for name, more in (("plain", []), ("extra", ["--extra-features", str(tmp_path / "extra")])):
        out = tmp_path / f"model-{name}"
        assert main(["train", "--features", str(trained / "feat"), "--out", str(out),
                     "--device", "cpu", "--threads", "2", "--folds", "2", "--quiet", *more]) == 0
        models[name] = json.loads((out / "card.json").read_text())
    labelled = models["plain"]["training_data"]["image_ids"]
    extra_ids = sorted(p.name[:-len("_mask.png")] for p in (tmp_path / "pseudo").glob("*_mask.png"))
    card = models["extra"]
    assert card["training_data"]["image_ids"] == labelled
    assert card["training_data"]["extra_first_stage"]["image_ids"] == extra_ids
    assert card["training_data"]["extra_first_stage"]["rows"] == 3 * 2000
    assert card["validation"]["scored_images"] == labelled
    assert sorted(sum(card["validation"]["folds"], [])) == labelled
    assert "extra_first_stage" not in models["plain"]["training_data"]
    assert "optimistic" in card["validation"]["caveat"]
    assert "caveat" not in models["plain"]["validation"]
    # The extra rows reached the first stage's booster.
    assert ((tmp_path / "model-extra" / "model.txt").read_text()
            != (tmp_path / "model-plain" / "model.txt").read_text())


def test_extra_features_of_labelled_images_are_refused(trained, tmp_path, capsys):
    code = main(["train", "--features", str(trained / "feat"), "--out", str(tmp_path / "m"),
                 "--device", "cpu", "--extra-features", str(trained / "feat"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "manifest.json" in err and "also among the training features" in err
    assert not (tmp_path / "m" / "card.json").exists()


def test_extra_features_of_another_spec_are_refused(trained, synth_dirs, tmp_path, capsys):
    _, test_dir = synth_dirs
    spec = json.loads((trained / "feat" / "manifest.json").read_text())["spec"]
    spec["features"] = spec["features"][:2]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main(["extract", "--images", str(test_dir), "--out", str(tmp_path / "extra"),
                 "--config", str(tmp_path / "spec.json"), "--device", "cpu",
                 "--pixels-per-image", "500", "--quiet"]) == 0
    capsys.readouterr()
    code = main(["train", "--features", str(trained / "feat"), "--out", str(tmp_path / "m"),
                 "--device", "cpu", "--extra-features", str(tmp_path / "extra"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "manifest.json" in err and "another feature spec" in err
    assert not (tmp_path / "m" / "card.json").exists()
