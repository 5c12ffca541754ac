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
