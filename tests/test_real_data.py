"""The CLI pipeline on real tiles from ../shared/data (skipped where that folder is absent).

Six DeepGlobe tiles train a model with the CLI's defaults; two others and a
Massachusetts crop are predicted. Cross-validated quality figures come from
benchmarks/bench_cv.py, not from here.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from roadfeat.cli import main
from roadfeat.evaluate import evaluate
from roadfeat.io import read_mask

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEEPGLOBE = DATA / "deepglobe" / "train"
MASSACHUSETTS = DATA / "massachusetts"
TRAIN_IDS = ("113", "5501", "5555", "5740", "6383", "unk-sanchari-v1")
TEST_IDS = ("388", "unk-wesleytse-1")

needs_data = pytest.mark.skipif(not (DEEPGLOBE / "5501_sat.jpg").exists(),
                                reason="real data not found at ../shared/data")


def copy_pairs(src: Path, ids, out: Path, image_ext: str, size: int | None = None) -> Path:
    """Copy the pairs ``ids`` to ``out`` as PNGs, cut to their central ``size`` square if given."""
    out.mkdir(parents=True, exist_ok=True)
    for i in ids:
        im, mask = Image.open(src / f"{i}_sat{image_ext}"), Image.open(src / f"{i}_mask.png")
        if size is not None:
            left, top = (im.width - size) // 2, (im.height - size) // 2
            box = (left, top, left + size, top + size)
            im, mask = im.crop(box), mask.crop(box)
        im.save(out / f"{i}_sat.png")
        mask.save(out / f"{i}_mask.png")
    return out


@needs_data
def test_real_masks_read_as_road_fractions():
    for p in sorted(DEEPGLOBE.glob("*_mask.png")) + sorted(MASSACHUSETTS.glob("*_mask.png")):
        grey = np.asarray(Image.open(p).convert("L"))
        m = read_mask(p)
        assert m.dtype == bool and m.shape == grey.shape
        np.testing.assert_array_equal(m, grey >= 128)
        assert 0.001 < m.mean() < 0.3, p.name


@needs_data
def test_cli_on_real_deepglobe_and_massachusetts(tmp_path):
    train = copy_pairs(DEEPGLOBE, TRAIN_IDS, tmp_path / "train", ".jpg")
    test = copy_pairs(DEEPGLOBE, TEST_IDS, tmp_path / "test", ".jpg")
    mass_id = sorted(MASSACHUSETTS.glob("*_sat.png"))[0].name[:-len("_sat.png")]
    mass = copy_pairs(MASSACHUSETTS, [mass_id], tmp_path / "mass", ".png", size=600)
    q = ["--quiet", "--device", "cpu"]
    assert main(["extract", "--images", str(train), "--out", str(tmp_path / "feat"), *q]) == 0
    assert main(["train", "--features", str(tmp_path / "feat"), "--out", str(tmp_path / "model"),
                 "--threads", "2", *q]) == 0
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    assert "warning" not in card["validation"]
    for images, pred, extra in ((test, tmp_path / "pred", []),
                                (mass, tmp_path / "pred_mass", ["--gsd", "1.0"])):
        assert main(["predict", "--model", str(tmp_path / "model"), "--images", str(images),
                     "--out", str(pred), *extra, *q]) == 0
        scores = {r["id"]: r for r in evaluate(pred, images)["images"]}
        assert len(scores) == len(list(images.glob("*_sat.png")))
        for image_id, r in scores.items():
            m = np.asarray(Image.open(pred / f"{image_id}_mask.png"))
            assert m.shape[:2] == Image.open(images / f"{image_id}_sat.png").size[::-1]
            assert set(np.unique(m)) <= {0, 255}
            # Random pixels at the predicted road rate q score about q*r / (q + r - q*r).
            q_, r_ = (m[..., 0] > 0).mean(), r["road_fraction"]
            chance = q_ * r_ / (q_ + r_ - q_ * r_)
            assert r["iou"] > 5 * chance, (image_id, r["iou"], chance)
