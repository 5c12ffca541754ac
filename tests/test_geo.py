"""GeoTIFF scenes in, georeferenced masks and road lines out."""

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio", reason="GeoTIFF support needs the [geo] extra")
from rasterio.transform import from_origin  # noqa: E402

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.cli import main  # noqa: E402
from roadfeat.geo import RasterSource  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.synth import make_scene  # noqa: E402

CPU = get_backend("cpu")


def write_tif(path, rgb, gsd=None, crs="EPSG:32633", nodata=None, origin=(500000, 4500000)):
    prof = dict(driver="GTiff", height=rgb.shape[0], width=rgb.shape[1], count=3, dtype="uint8",
                tiled=True, blockxsize=128, blockysize=128)
    if gsd is not None:
        prof.update(crs=crs, transform=from_origin(*origin, gsd, gsd))
    if nodata is not None:
        prof["nodata"] = nodata
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(np.moveaxis(rgb, -1, 0))


def predict(model_dir, images, out, *extra):
    return main(["predict", "--model", str(model_dir), "--images", str(images), "--out", str(out),
                 "--device", "cpu", "--quiet", *map(str, extra)])


@pytest.fixture(scope="module")
def scene():
    return make_scene(np.random.default_rng(11), 512)


def test_geotiff_mask_keeps_crs_and_transform(plain_model, scene, tmp_path):
    rgb, _ = scene
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "a_sat.tif", rgb, gsd=0.5)
    # At the whole image's threshold (by default each window picks its own).
    model = RoadModel.load(plain_model)
    t = model.threshold_for(model.probability(rgb, CPU, 0.5))
    assert predict(plain_model, tmp_path / "in", tmp_path / "out", "--window", 200,
                   "--threshold", t) == 0
    with rasterio.open(tmp_path / "out" / "a_mask.tif") as ds, \
            rasterio.open(tmp_path / "in" / "a_sat.tif") as src:
        assert ds.crs == src.crs and ds.transform == src.transform
        assert (ds.height, ds.width) == (512, 512)
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"
        mask = ds.read(1)
    assert set(np.unique(mask)) <= {0, 255}
    expected = model.with_threshold(t).predict(rgb, CPU, 0.5)
    np.testing.assert_array_equal(mask > 0, expected)


def test_gsd_comes_from_the_transform(trained, scene, tmp_path):
    """A 1 m GeoTIFF is predicted at 1 m, whatever --gsd says."""
    rgb, _ = scene
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "a_sat.tif", rgb, gsd=1.0)
    assert RasterSource(tmp_path / "in" / "a_sat.tif").gsd == pytest.approx(1.0)
    assert predict(trained / "model", tmp_path / "in", tmp_path / "out", "--gsd", 0.5) == 0
    with rasterio.open(tmp_path / "out" / "a_mask.tif") as ds:
        mask = ds.read(1) > 0
    model = RoadModel.load(trained / "model")
    np.testing.assert_array_equal(mask, model.predict(rgb, CPU, 1.0))
    assert not np.array_equal(mask, model.predict(rgb, CPU, 0.5))


def test_geographic_crs_gsd_in_metres(tmp_path):
    rgb = np.zeros((64, 64, 3), np.uint8)
    write_tif(tmp_path / "g.tif", rgb, gsd=1e-5, crs="EPSG:4326", origin=(10.0, 45.0))
    # 1e-5 degrees at about 45 degrees north: ~1.11 m north-south, ~0.79 m east-west.
    assert 0.85 < RasterSource(tmp_path / "g.tif").gsd < 1.0


def test_nodata_areas_are_not_road(trained, scene, tmp_path):
    rgb, _ = scene
    rgb = rgb.copy()
    rgb[:, :200] = 0
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "a_sat.tif", rgb, gsd=0.5, nodata=0)
    assert predict(trained / "model", tmp_path / "in", tmp_path / "out") == 0
    with rasterio.open(tmp_path / "out" / "a_mask.tif") as ds:
        mask = ds.read(1) > 0
    assert not mask[:, :200].any() and mask[:, 200:].any()


def test_vector_output_is_valid_geojson_in_the_scene_crs(trained, scene, tmp_path):
    geojson = pytest.importorskip("geojson")
    rgb, _ = scene
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "a_sat.tif", rgb, gsd=0.5)
    assert predict(trained / "model", tmp_path / "in", tmp_path / "out", "--vector") == 0
    text = (tmp_path / "out" / "a_roads.geojson").read_text()
    fc = geojson.loads(text)
    assert fc.is_valid, fc.errors()
    data = json.loads(text)
    assert data["crs"]["properties"]["name"] == "EPSG:32633"
    assert data["features"], "no road lines traced"
    for f in data["features"]:
        xs, ys = np.array(f["geometry"]["coordinates"]).T
        # Inside the scene's bounds: x 500000..500256, y 4499744..4500000.
        assert (xs >= 500000).all() and (xs <= 500256).all()
        assert (ys >= 4499744).all() and (ys <= 4500000).all()
        assert f["properties"]["width_m"] > 0 and f["properties"]["length_m"] > 0


def test_unreadable_geotiff_is_a_one_line_failure(trained, scene, tmp_path, capsys):
    rgb, _ = scene
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "good_sat.tif", rgb, gsd=0.5)
    (tmp_path / "in" / "bad_sat.tif").write_bytes(b"II*\x00 not really a tiff")
    assert predict(trained / "model", tmp_path / "in", tmp_path / "out") == 1
    assert (tmp_path / "out" / "good_mask.tif").exists()
    assert not (tmp_path / "out" / "bad_mask.tif").exists()
    err = capsys.readouterr().err
    assert "bad_sat.tif" in err and "Traceback" not in err


def test_lines_from_windows_join_up_like_the_whole_image(plain_model, scene, tmp_path):
    pytest.importorskip("skan")
    rgb, _ = scene
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "a_sat.tif", rgb, gsd=0.5)
    model = RoadModel.load(plain_model)
    t = model.threshold_for(model.probability(rgb, CPU, 0.5))
    total = {}
    for window in (160, 4096):
        out = tmp_path / f"out{window}"
        assert predict(plain_model, tmp_path / "in", out, "--vector", "--window", window,
                       "--threshold", t) == 0
        feats = json.loads((out / "a_roads.geojson").read_text())["features"]
        total[window] = sum(f["properties"]["length_m"] for f in feats)
    assert total[4096] > 0
    # Lines are cut at window seams but cover the same roads.
    assert total[160] == pytest.approx(total[4096], rel=0.1)


def test_16_bit_geotiff_is_refused_by_name(tmp_path):
    from roadfeat.io import InputError

    with rasterio.open(tmp_path / "x_sat.tif", "w", driver="GTiff", height=32, width=32, count=3,
                       dtype="uint16") as ds:
        ds.write(np.zeros((3, 32, 32), np.uint16))
    with pytest.raises(InputError, match=r"x_sat\.tif: uint16 raster"):
        RasterSource(tmp_path / "x_sat.tif")


def test_geotiffs_of_any_name_and_a_single_file_are_predicted(plain_model, scene, tmp_path):
    rgb, _ = scene
    small = np.ascontiguousarray(rgb[:128, :128])
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "scene.tif", small, gsd=0.5)
    write_tif(tmp_path / "in" / "kathmandu_2024.tiff", small, gsd=0.5)
    write_tif(tmp_path / "in" / "old_mask.tif", small, gsd=0.5)  # a mask, not an input
    assert predict(plain_model, tmp_path / "in", tmp_path / "out") == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*_mask*")) == [
        "kathmandu_2024_mask.tif", "scene_mask.tif"]
    with rasterio.open(tmp_path / "out" / "scene_mask.tif") as ds:
        assert ds.crs.to_string() == "EPSG:32633"
    # One file as --images.
    assert predict(plain_model, tmp_path / "in" / "scene.tif", tmp_path / "one") == 0
    assert [p.name for p in (tmp_path / "one").glob("*_mask*")] == ["scene_mask.tif"]


def test_tiffs_without_georeferencing_or_with_pages_take_the_plain_path(plain_model, scene,
                                                                        tmp_path, caplog):
    from PIL import Image

    rgb, _ = scene
    small = np.ascontiguousarray(rgb[:128, :128])
    (tmp_path / "in").mkdir()
    write_tif(tmp_path / "in" / "flat_sat.tif", small)  # no CRS, no transform
    pages = [Image.fromarray(small), Image.fromarray(small[::-1].copy())]
    pages[0].save(tmp_path / "in" / "pages_sat.tif", save_all=True, append_images=pages[1:])
    with caplog.at_level("WARNING", logger="roadfeat"):
        assert predict(plain_model, tmp_path / "in", tmp_path / "out") == 0
    for k in ("flat", "pages"):
        mask = np.asarray(Image.open(tmp_path / "out" / f"{k}_mask.png"))
        assert mask.shape == (128, 128, 3)
    assert not list((tmp_path / "out").glob("*_mask.tif"))
    assert "pages_sat.tif: 2 pages; used page 1" in caplog.text
