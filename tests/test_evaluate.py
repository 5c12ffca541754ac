"""Evaluation by image id, with missing and broken predictions reported per image."""

import numpy as np
import pytest

from roadfeat.cli import main
from roadfeat.evaluate import evaluate
from roadfeat.io import InputError, write_mask


def _masks(folder, masks):
    for k, m in masks.items():
        write_mask(folder / f"{k}_mask.png", m)


def test_scores_per_image_and_reports_missing_and_broken(tmp_path):
    road = np.zeros((20, 20), bool)
    road[8:12] = True
    _masks(tmp_path / "truth", {"a": road, "b": road, "c": road})
    _masks(tmp_path / "pred", {"a": road})
    (tmp_path / "pred" / "c_mask.png").write_text("not a png")
    r = evaluate(tmp_path / "pred", tmp_path / "truth")
    assert [row["iou"] for row in r["images"]] == [1.0, 0.0, 0.0]
    assert r["summary"]["mean_iou"] == pytest.approx(1 / 3)
    assert "prediction missing" in r["failed"]["b"]
    assert "c_mask.png" in r["failed"]["c"]


def test_cli_exit_codes(tmp_path, capsys):
    road = np.zeros((20, 20), bool)
    road[8:12] = True
    _masks(tmp_path / "truth", {"a": road})
    _masks(tmp_path / "pred", {"a": road})
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]) == 0
    (tmp_path / "pred" / "a_mask.png").unlink()
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]) == 2
    assert "no masks" in capsys.readouterr().err


def test_two_masks_for_one_id_is_a_one_line_error(tmp_path, capsys):
    road = np.zeros((20, 20), bool)
    road[8:12] = True
    _masks(tmp_path / "truth", {"a": road})
    _masks(tmp_path / "pred", {"a": road})
    write_mask(tmp_path / "pred" / "a_mask.tif", ~road)
    with pytest.raises(InputError, match="two masks for image 'a'"):
        evaluate(tmp_path / "pred", tmp_path / "truth")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a_mask" in err


def test_nan_features_never_reach_the_classifier():
    from roadfeat.model import check_finite

    X = np.ones((5, 3), np.float32)
    check_finite(X, "ok.jpg")
    X[2, 1] = np.nan
    with pytest.raises(InputError, match=r"x\.jpg: 1 NaN or infinite feature values"):
        check_finite(X, "x.jpg")


def test_apls_column_and_mean(tmp_path, capsys):
    pytest.importorskip("skan", reason="APLS needs the [geo] extra")
    truth = np.zeros((300, 300), bool)
    truth[145:155, 10:290] = True
    cut = truth.copy()
    cut[:, 140:160] = False
    for d, m in (("t", truth), ("p", cut)):
        write_mask(tmp_path / d / "a_mask.png", m)
        write_mask(tmp_path / d / "b_mask.png", truth)
    result = evaluate(tmp_path / "p", tmp_path / "t", apls_gsd=0.5)
    apls = {r["id"]: r["apls"] for r in result["images"]}
    assert apls["b"] == pytest.approx(1.0) and apls["a"] < 0.9
    assert result["summary"]["mean_apls"] == pytest.approx((apls["a"] + apls["b"]) / 2)
    assert main(["evaluate", "--pred", str(tmp_path / "p"), "--truth", str(tmp_path / "t"),
                 "--apls"]) == 0
    assert "mean APLS" in capsys.readouterr().out


def _image(path, rgb):
    import cv2

    from roadfeat.io import write_bytes_atomic

    write_bytes_atomic(path, cv2.imencode(".png", rgb[..., ::-1])[1].tobytes())


def test_nodata_fill_is_left_out_of_the_scores(tmp_path, capsys):
    truth = np.zeros((20, 20), bool)
    truth[8:12] = True  # a road across the whole tile, padding included
    pred = truth.copy()
    pred[:, 10:] = False  # missed where the scene is padding
    pred[0:2, 15:] = True  # a false alarm inside the padding
    rgb = np.full((20, 20, 3), 80, np.uint8)
    rgb[:, 10:] = 255
    rgb[0, 10] = (255, 255, 254)  # not every channel: data, not fill
    _masks(tmp_path / "truth", {"a": truth})
    _masks(tmp_path / "pred", {"a": pred})
    (tmp_path / "img").mkdir()
    _image(tmp_path / "img" / "a_sat.png", rgb)
    plain = evaluate(tmp_path / "pred", tmp_path / "truth")["images"][0]
    assert plain["iou"] == pytest.approx(40 / 90)
    got = evaluate(tmp_path / "pred", tmp_path / "truth", images_dir=tmp_path / "img",
                   nodata=255)["images"][0]
    assert got["iou"] == 1.0 and got["fp"] == 0 and got["fn"] == 0
    assert got["ignored_fraction"] == pytest.approx(199 / 400)
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"),
                 "--images", str(tmp_path / "img"), "--nodata", "255"]) == 0
    assert "fill%" in capsys.readouterr().out


def test_nodata_scoring_reports_a_missing_or_mismatched_image_by_name(tmp_path, capsys):
    road = np.zeros((20, 20), bool)
    road[8:12] = True
    _masks(tmp_path / "truth", {"a": road, "b": road, "c": road})
    _masks(tmp_path / "pred", {"a": road, "b": road, "c": road})
    (tmp_path / "img").mkdir()
    _image(tmp_path / "img" / "a_sat.png", np.zeros((20, 20, 3), np.uint8))
    _image(tmp_path / "img" / "b_sat.png", np.zeros((30, 20, 3), np.uint8))
    r = evaluate(tmp_path / "pred", tmp_path / "truth", images_dir=tmp_path / "img", nodata=255)
    assert [row["id"] for row in r["images"]] == ["a"]
    assert "b_sat.png: image is 20x30, its truth mask 20x20" in r["failed"]["b"]
    assert "no image" in r["failed"]["c"]
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    assert main(args + ["--images", str(tmp_path / "img"), "--nodata", "255"]) == 1
    capsys.readouterr()
    assert main(args + ["--nodata", "255"]) == 2
    assert capsys.readouterr().err.strip() == (
        "roadfeat evaluate: error: --nodata: needs --images: the fill is found in the images")


def test_masks_stored_as_0_1_are_read_as_road_with_one_note(tmp_path, caplog, monkeypatch):
    from PIL import Image

    import roadfeat.io

    monkeypatch.setattr(roadfeat.io, "_SAID", set())  # "once" is per process
    road = np.zeros((20, 20), np.uint8)
    road[8:12] = 1
    half = road.copy()
    half[10:12] = 0
    for folder, arr in (("truth01", road), ("pred01", half)):
        (tmp_path / folder).mkdir()
        Image.fromarray(arr).save(tmp_path / folder / "a_mask.png")
    _masks(tmp_path / "truth255", {"a": road.astype(bool)})
    with caplog.at_level("WARNING", logger="roadfeat"):
        both01 = evaluate(tmp_path / "pred01", tmp_path / "truth01")
        mixed = evaluate(tmp_path / "pred01", tmp_path / "truth255")
    assert both01["images"][0]["iou"] == pytest.approx(0.5)
    assert mixed["images"][0]["iou"] == pytest.approx(0.5)
    notes = [r for r in caplog.records if "0/1" in r.getMessage()]
    assert len(notes) == 1
