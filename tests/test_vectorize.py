"""Road masks to centre lines and graphs."""

import cv2
import numpy as np
import pytest

pytest.importorskip("skan", reason="road lines need the [geo] extra")
from roadfeat.geo import pixel_to_world  # noqa: E402
from roadfeat.vectorize import lines_to_geojson, mask_to_graph, trace_lines  # noqa: E402


def draw(size, segments, width):
    m = np.zeros((size, size), np.uint8)
    for (r0, c0), (r1, c1) in segments:
        cv2.line(m, (c0, r0), (c1, r1), 1, width)
    return m.astype(bool)


def test_straight_road_is_one_line_with_its_length_and_width():
    mask = draw(300, [((150, 20), (150, 280))], 9)
    lines = trace_lines(mask, gsd=0.5)
    assert len(lines) == 1
    (line,) = lines
    assert len(line.rows) == 2  # simplified to its two ends
    assert line.length_m == pytest.approx(130, abs=4)
    assert line.width_m == pytest.approx(mask[:, 150].sum() * 0.5, abs=0.3)


def test_crossing_is_four_edges_at_one_junction():
    g = mask_to_graph(draw(300, [((150, 20), (150, 280)), ((20, 150), (280, 150))], 7), 0.5)
    assert g.number_of_edges() == 4
    assert sorted(d for _, d in g.degree()) == [1, 1, 1, 1, 4]


def test_short_spur_is_pruned_and_long_branch_kept():
    spur = draw(300, [((150, 20), (150, 280)), ((150, 100), (140, 100))], 5)
    assert len(trace_lines(spur, 0.5, spur_m=10)) == 1  # the 5 m spur goes
    branch = draw(300, [((150, 20), (150, 280)), ((150, 100), (40, 100))], 5)
    assert len(trace_lines(branch, 0.5, spur_m=10)) == 3


def test_empty_and_tiny_masks_give_no_lines():
    assert trace_lines(np.zeros((50, 50), bool), 0.5) == []
    tiny = np.zeros((50, 50), bool)
    tiny[20:23, 20:24] = True
    assert trace_lines(tiny, 0.5, spur_m=10) == []


def test_keep_box_clips_lines_and_offsets_them():
    mask = draw(300, [((150, 20), (150, 280))], 9)
    (line,) = trace_lines(mask, 0.5, keep=(slice(0, 300), slice(100, 200)), offset=(1000, 2000))
    assert line.cols.min() >= 2000 + 99 and line.cols.max() <= 2000 + 200
    assert (line.rows >= 1000 + 140).all()


def test_geojson_in_pixels_without_georeferencing():
    geojson = pytest.importorskip("geojson")
    lines = trace_lines(draw(100, [((50, 5), (50, 95))], 5), 0.5)
    fc = lines_to_geojson(lines, pixel_to_world(None))
    assert geojson.loads(geojson.dumps(fc)).is_valid
    assert "crs" not in fc
    xs, ys = np.array(fc["features"][0]["geometry"]["coordinates"]).T
    # Pixel centres: row 50 is y = 50.5.
    assert (abs(ys - 50.5) <= 1).all() and xs.min() < 10 and xs.max() > 90
