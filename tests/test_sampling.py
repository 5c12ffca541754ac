"""Choosing training pixels: class balance, and the fill around a scene."""

import cv2
import numpy as np

from roadfeat.cli import main
from roadfeat.io import read_image, write_bytes_atomic
from roadfeat.sampling import data_pixels, sample_pixels


def test_sample_pixels_is_balanced_and_draws_only_valid_pixels():
    labels = np.zeros((40, 40), bool)
    labels[:, 18:22] = True
    valid = np.ones_like(labels)
    valid[:20] = False
    idx = sample_pixels(labels, 200, 0.5, np.random.default_rng(0), valid)
    assert len(idx) == 80 + 120  # every valid road pixel, the rest background
    assert valid.ravel()[idx].all()
    assert labels.ravel()[idx].sum() == 80
    assert len(np.unique(idx)) == len(idx)


def test_sample_pixels_never_asks_for_more_than_the_valid_pixels():
    labels = np.zeros((10, 10), bool)
    valid = np.zeros_like(labels)
    valid[0, :5] = True
    idx = sample_pixels(labels, 50, 0.5, np.random.default_rng(0), valid)
    assert sorted(idx) == [0, 1, 2, 3, 4]


def test_data_pixels_excludes_every_working_pixel_that_touches_fill():
    rgb = np.full((8, 8, 3), 90, np.uint8)
    rgb[:, 5:] = 255  # fill from column 5
    rgb[0, 0] = (255, 255, 0)  # one channel short of fill: data
    got = data_pixels(rgb, 255, (4, 4))
    # Working column 2 covers input columns 4 and 5, so it mixes data and fill.
    assert got[:, :2].all() and not got[:, 2:].any()
    assert data_pixels(rgb, 255, (8, 8))[0, 0]
    assert data_pixels(rgb, 0, (4, 4)).all()


def test_extract_with_nodata_never_samples_the_fill(synth_dirs, tmp_path, capsys):
    train_dir, _ = synth_dirs
    image = sorted(train_dir.glob("*_sat.jpg"))[0]
    mask = image.name.replace("_sat.jpg", "_mask.png")
    rgb = read_image(image).copy()
    rgb[:, : rgb.shape[1] // 2] = 255  # the scene's left half is padding
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    # PNG, so that the fill stays exactly 255 up to its edge; "blank" is all fill.
    for name, pixels in (("half", rgb), ("blank", np.full_like(rgb, 255))):
        write_bytes_atomic(imgs / f"{name}_sat.png", cv2.imencode(".png", pixels[..., ::-1])[1].tobytes())
        write_bytes_atomic(imgs / f"{name}_mask.png", (train_dir / mask).read_bytes())
    rows = {}
    for name, more, code in (("plain", [], 0), ("nodata", ["--nodata", "255"], 1)):
        capsys.readouterr()
        assert main(["extract", "--images", str(imgs), "--out", str(tmp_path / name),
                     "--device", "cpu", "--pixels-per-image", "3000", "--quiet", *more]) == code
        with np.load(tmp_path / name / "shards" / "half.npz") as z:
            rows[name] = z["idx"]
    assert "blank_sat.png: every pixel is the no-data fill 255" in capsys.readouterr().err
    width = rgb.shape[1] // 2  # working grid at 1 m of a 0.5 m scene
    assert (rows["nodata"] % width >= width // 2).all()
    assert (rows["plain"] % width < width // 2).mean() > 0.3


def test_nodata_outside_a_channel_value_is_refused(synth_dirs, tmp_path, capsys):
    train_dir, _ = synth_dirs
    assert main(["extract", "--images", str(train_dir), "--out", str(tmp_path / "f"),
                 "--nodata", "256", "--quiet"]) == 2
    assert "--nodata: must be an 8-bit channel value" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_an_all_fill_image_fails_before_its_features_are_computed(tmp_path, monkeypatch):
    import pytest

    import roadfeat.extract as ex
    from roadfeat.backend import get_backend
    from roadfeat.features import default_spec
    from roadfeat.io import InputError

    rgb = np.full((64, 64, 3), 255, np.uint8)
    write_bytes_atomic(tmp_path / "a_sat.png", cv2.imencode(".png", rgb)[1].tobytes())
    write_bytes_atomic(tmp_path / "a_mask.png", cv2.imencode(".png", rgb[..., 0])[1].tobytes())

    def no_features(*args, **kwargs):
        raise AssertionError("features computed for an all-fill image")

    monkeypatch.setattr(ex, "compute_features", no_features)
    with pytest.raises(InputError, match="every pixel is the no-data fill 255"):
        ex.extract_image(tmp_path / "a_sat.png", tmp_path / "a_mask.png", default_spec(),
                         get_backend("cpu"),
                         ex.Sampling(100, 0.5, 0, nodata=255), 0.5, "a")
