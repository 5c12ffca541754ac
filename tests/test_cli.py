"""The whole pipeline through the command line, on synthetic scenes."""

import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from roadfeat.cli import main
from roadfeat.io import write_mask
from roadfeat.evaluate import evaluate


def run(*args):
    return main([str(a) for a in args] + ["--quiet"] if args[0] != "evaluate" else [str(a) for a in args])


def test_pipeline_learns_well_above_chance(trained, synth_dirs, capsys):
    _, test_dir = synth_dirs
    pred = trained / "pred"
    assert run("predict", "--model", trained / "model", "--images", test_dir, "--out", pred,
               "--device", "cpu", "--submission", trained / "sub.zip") == 0
    result = evaluate(pred, test_dir)
    road = np.mean([r["road_fraction"] for r in result["images"]])
    # Chance (predicting road at random with the true road rate) scores about the road fraction.
    assert result["summary"]["mean_iou"] > max(0.3, 4 * road), result["summary"]
    capsys.readouterr()
    assert run("evaluate", "--pred", pred, "--truth", test_dir, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["summary"]["mean_iou"] == pytest.approx(result["summary"]["mean_iou"])
    for p in sorted(test_dir.glob("*_sat.jpg")):
        m = np.asarray(Image.open(pred / p.name.replace("_sat.jpg", "_mask.png")))
        assert m.shape == np.asarray(Image.open(p)).shape and set(np.unique(m)) <= {0, 255}
    with zipfile.ZipFile(trained / "sub.zip") as z:
        assert sorted(z.namelist()) == sorted(p.name.replace("_sat.jpg", "_mask.png")
                                              for p in test_dir.glob("*_sat.jpg"))


def test_model_card_and_native_model(trained):
    card = json.loads((trained / "model" / "card.json").read_text())
    for key in ("spec", "feature_names", "threshold", "post", "versions", "training_data",
                "validation", "train_gsd"):
        assert key in card
    assert card["threshold"] == "expected-iou"
    # Calibration: a higher score means a higher probability of road.
    assert card["calibration"]["method"] == "platt" and card["calibration"]["a"] > 0
    # The threshold rule is fit on the same out-of-fold maps, and can only help there.
    rule = card["threshold_rule"]
    assert {"shift", "slope", "centre"} <= set(rule) and rule["fit_on"] == card["calibration"]["fit_on"]
    val = card["validation"]
    assert val["mean_iou"] >= val["plug_in_mean_iou"] - 0.02
    assert len(card["context_names"]) > 0 and card["context_rounds"] >= 1
    for name in ("model.txt", "context_model.txt"):
        assert (trained / "model" / name).read_text().startswith("tree")
    for name in ("feature_importance.png", "context_importance.png"):
        assert (trained / "model" / name).stat().st_size > 1000


def test_same_seed_same_model_and_masks(trained, synth_dirs, tmp_path):
    train_dir, test_dir = synth_dirs
    assert run("extract", "--images", train_dir, "--out", tmp_path / "feat", "--device", "cpu",
               "--pixels-per-image", 4000) == 0
    assert run("train", "--features", tmp_path / "feat", "--out", tmp_path / "model",
               "--device", "cpu", "--threads", 2) == 0
    assert (tmp_path / "model" / "model.txt").read_bytes() == \
        (trained / "model" / "model.txt").read_bytes()
    for d, m in ((tmp_path / "p1", tmp_path / "model"), (tmp_path / "p2", trained / "model")):
        assert run("predict", "--model", m, "--images", test_dir, "--out", d, "--device", "cpu") == 0
    for p in sorted((tmp_path / "p1").glob("*_mask.png")):
        assert p.read_bytes() == (tmp_path / "p2" / p.name).read_bytes()


def test_extract_resumes_and_reuses_shards(synth_dirs, tmp_path, capsys):
    train_dir, _ = synth_dirs
    args = ("extract", "--images", train_dir, "--out", tmp_path / "f", "--device", "cpu",
            "--pixels-per-image", 500)
    assert run(*args) == 0
    shards = sorted((tmp_path / "f" / "shards").glob("*.npz"))
    before = {p.name: p.read_bytes() for p in shards}
    shards[0].unlink()  # as if killed before this one was written
    capsys.readouterr()
    assert run(*args) == 0
    assert "1 done, 7 reused" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "f" / "shards").glob("*.npz")} == before


def test_bad_file_in_folder_does_not_lose_the_good_ones(trained, synth_dirs, tmp_path, capsys):
    _, test_dir = synth_dirs
    imgs = tmp_path / "imgs"
    shutil.copytree(test_dir, imgs)
    (imgs / "broken_sat.jpg").write_text("not a jpeg")
    capsys.readouterr()
    rc = run("predict", "--model", trained / "model", "--images", imgs, "--out", tmp_path / "o",
             "--device", "cpu")
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken_sat.jpg: not a readable image" in err
    assert len(list((tmp_path / "o").glob("*_mask.png"))) == 3


def test_fixed_threshold_overrides_the_per_image_one(trained, synth_dirs, tmp_path):
    _, test_dir = synth_dirs
    masks = {}
    for t in ("0.05", "0.6"):
        assert run("predict", "--model", trained / "model", "--images", test_dir, "--out",
                   tmp_path / t, "--device", "cpu", "--threshold", t) == 0
        masks[t] = sum((np.asarray(Image.open(p))[..., 0] > 0).sum()
                       for p in sorted((tmp_path / t).glob("*_mask.png")))
    # A lower threshold on the same probabilities marks more road.
    assert masks["0.05"] > masks["0.6"] > 0


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_model_is_a_one_line_error(trained, synth_dirs, tmp_path, capfd, damage):
    _, test_dir = synth_dirs
    bad = tmp_path / "model"
    shutil.copytree(trained / "model", bad)
    text = (bad / "model.txt").read_text()
    (bad / "model.txt").write_text("garbage" if damage == "garbage" else text[:len(text) // 2])
    capfd.readouterr()
    assert run("predict", "--model", bad, "--images", test_dir, "--out", tmp_path / "o") == 2
    out, err = capfd.readouterr()
    err = err.strip()
    assert err.count("\n") == 0 and "model.txt: not a valid LightGBM model" in err
    # Not LightGBM's own copy of the message as well (it writes to the stderr descriptor).
    assert "[LightGBM]" not in out + err


def test_model_from_another_spec_is_refused(trained, synth_dirs, tmp_path, capsys):
    _, test_dir = synth_dirs
    bad = tmp_path / "model"
    shutil.copytree(trained / "model", bad)
    card = json.loads((bad / "card.json").read_text())
    card["spec"]["features"][0]["kind"] = "wavelet"
    (bad / "card.json").write_text(json.dumps(card))
    capsys.readouterr()
    assert run("predict", "--model", bad, "--images", test_dir, "--out", tmp_path / "o") == 2
    assert "cannot reproduce this model's features" in capsys.readouterr().err


def test_features_folder_from_another_spec_is_refused(trained, synth_dirs, tmp_path, capsys):
    train_dir, _ = synth_dirs
    spec = json.loads((trained / "feat" / "manifest.json").read_text())["spec"]
    spec["features"] = spec["features"][:2]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    capsys.readouterr()
    rc = run("extract", "--images", train_dir, "--out", trained / "feat", "--config",
             tmp_path / "spec.json")
    assert rc == 2 and "another feature spec" in capsys.readouterr().err


def test_missing_mask_is_reported_per_image(synth_dirs, tmp_path, capsys):
    train_dir, _ = synth_dirs
    imgs = tmp_path / "imgs"
    shutil.copytree(train_dir, imgs)
    victim = sorted(imgs.glob("*_mask.png"))[0]
    victim.unlink()
    capsys.readouterr()
    rc = run("extract", "--images", imgs, "--out", tmp_path / "f", "--pixels-per-image", 300)
    err = capsys.readouterr().err
    assert rc == 1 and f"{victim.name}: mask not found" in err and "7 done" in err


def test_empty_folder_is_an_error(tmp_path, capsys):
    assert run("extract", "--images", tmp_path, "--out", tmp_path / "f") == 2
    assert "no images" in capsys.readouterr().err


def test_scripts_are_thin_wrappers(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for script in ("extract_features", "train_gbm", "predict", "evaluate"):
        out = subprocess.run([sys.executable, str(root / "scripts" / f"{script}.py"), "--help"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and "usage:" in out.stdout


def test_nan_in_feature_shard_is_refused_by_train(trained, tmp_path, capsys):
    feat = tmp_path / "feat"
    shutil.copytree(trained / "feat", feat)
    shard = sorted((feat / "shards").glob("*.npz"))[0]
    with np.load(shard) as z:
        arrays = dict(z)
    arrays["X"][0, 0] = np.inf
    np.savez(shard, **arrays)
    capsys.readouterr()
    assert run("train", "--features", feat, "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{shard.name}: 1 NaN or infinite" in err


def test_geo_flags_without_the_geo_extra_are_one_line_errors(trained, synth_dirs, tmp_path,
                                                              capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "skan" else real(n, *a))
    _, test_dir = synth_dirs
    assert run("predict", "--model", trained / "model", "--images", test_dir, "--out",
               tmp_path / "o", "--vector") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--vector: needs the geo extra (skan missing): pip install 'roadfeat[geo]'")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, flag", [(["--gsd", "0"], "--gsd"), (["--window", "0"], "--window"),
                                        (["--threshold", "1.5"], "--threshold"),
                                        (["--gsd", "inf"], "--gsd"), (["--gsd", "nan"], "--gsd"),
                                        (["--gsd", "1e9"], "--gsd"), (["--gsd", "20"], "--gsd"),
                                        (["--gsd", "1e-9"], "--gsd"),
                                        (["--threads", "0"], "--threads")])
def test_bad_sizes_are_one_line_errors(trained, synth_dirs, tmp_path, capsys, args, flag):
    _, test_dir = synth_dirs
    assert run("predict", "--model", trained / "model", "--images", test_dir, "--out",
               tmp_path / "o", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"roadfeat predict: error: {flag}: must be")
    assert not (tmp_path / "o").exists()


def test_predict_refuses_to_write_into_the_images_folder(trained, tmp_path, capsys):
    from roadfeat.synth import write_scenes

    write_scenes(tmp_path, 1, seed=9, size=64, prefix="x")
    (mask_file,) = tmp_path.glob("*_mask.png")
    truth = mask_file.read_bytes()
    assert main(["predict", "--model", str(trained / "model"), "--images", str(tmp_path),
                 "--out", str(tmp_path / "."), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "overwrite" in err[0]
    assert mask_file.read_bytes() == truth


@pytest.mark.parametrize("verb", ["predict", "extract"])
def test_out_naming_an_existing_file_is_refused_before_work(trained, synth_dirs, tmp_path,
                                                            capsys, verb):
    train_dir, _ = synth_dirs
    (tmp_path / "taken").write_text("x")
    args = (["--model", trained / "model"] if verb == "predict" else [])
    assert run(verb, *args, "--images", train_dir, "--out", tmp_path / "taken") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out names an existing file" in err[0]
    assert (tmp_path / "taken").read_text() == "x"


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_bad_submission_path_is_refused_before_any_mask(trained, synth_dirs, tmp_path, capsys,
                                                        where):
    _, test_dir = synth_dirs
    (tmp_path / "f").write_text("x")
    sub = tmp_path if where == "folder" else tmp_path / "f" / "sub.zip"
    assert run("predict", "--model", trained / "model", "--images", test_dir, "--out",
               tmp_path / "o", "--submission", sub) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--submission" in err[0]
    assert not (tmp_path / "o").exists()


def test_unreadable_image_entries_are_named_as_failed(plain_model, synth_dirs, tmp_path, capsys):
    _, test_dir = synth_dirs
    images = tmp_path / "in"
    shutil.copytree(test_dir, images)
    (images / "gone_sat.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (images / "dir_sat.jpg").mkdir()
    assert run("predict", "--model", plain_model, "--images", images, "--out",
               tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "failed gone:" in err and "dangling" in err
    assert "failed dir:" in err and "a folder" in err
    assert len(list((tmp_path / "o").glob("*_mask.png"))) == len(list(test_dir.glob("*_sat.*")))


def test_changed_image_or_mask_is_redone_not_reused(plain_model, synth_dirs, tmp_path, capsys):
    from roadfeat.synth import write_scenes

    train_dir, test_dir = synth_dirs
    images = tmp_path / "in"
    shutil.copytree(test_dir, images)
    assert run("predict", "--model", plain_model, "--images", images, "--out", tmp_path / "o") == 0
    first = sorted(images.glob("*_sat.jpg"))[0]
    before = (tmp_path / "o" / first.name.replace("_sat.jpg", "_mask.png")).read_bytes()
    # Another scene's pixels behind the same id.
    write_scenes(tmp_path / "other", 1, seed=77, size=256, prefix="z")
    shutil.copy(next((tmp_path / "other").glob("*_sat.jpg")), first)
    capsys.readouterr()
    assert run("predict", "--model", plain_model, "--images", images, "--out", tmp_path / "o") == 0
    err = capsys.readouterr().err
    n = len(list(images.glob("*_sat.jpg")))
    assert f"1 done, {n - 1} reused" in err
    after = (tmp_path / "o" / first.name.replace("_sat.jpg", "_mask.png")).read_bytes()
    assert after != before

    labelled = tmp_path / "lab"
    shutil.copytree(train_dir, labelled)
    assert run("extract", "--images", labelled, "--out", tmp_path / "f", "--pixels-per-image",
               "500") == 0
    mask = sorted(labelled.glob("*_mask.png"))[0]
    shard = tmp_path / "f" / "shards" / mask.name.replace("_mask.png", ".npz")
    # The sample is class-balanced, so its label count stays; which pixels are road does not.
    with np.load(shard) as z:
        road_before = set(z["idx"][z["y"] == 1].tolist())
    stripes = np.broadcast_to(np.arange(256) % 64 < 8, (256, 256))
    write_mask(mask, stripes)
    capsys.readouterr()
    assert run("extract", "--images", labelled, "--out", tmp_path / "f", "--pixels-per-image",
               "500") == 0
    m = len(list(labelled.glob("*_sat.jpg")))
    assert f"1 done, {m - 1} reused" in capsys.readouterr().err
    with np.load(shard) as z:
        assert set(z["idx"][z["y"] == 1].tolist()) != road_before


@pytest.mark.parametrize("args, flag", [(["--folds", "-1"], "--folds"),
                                        (["--max-rows", "-5"], "--max-rows"),
                                        (["--map-images", "0"], "--map-images"),
                                        (["--learning-rate", "0"], "--learning-rate"),
                                        (["--learning-rate", "1.5"], "--learning-rate")])
def test_bad_train_settings_are_one_line_errors_before_any_work(tmp_path, capsys, args, flag):
    assert run("train", "--features", tmp_path / "none", "--out", tmp_path / "m", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"roadfeat train: error: {flag}: must be")
    assert not (tmp_path / "m").exists()
