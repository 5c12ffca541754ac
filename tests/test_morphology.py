"""Openings and closings by line segments."""

import numpy as np
import pytest
import scipy.ndimage as ndi

from roadfeat.backend import get_backend
from roadfeat.features.morphology import (disc_footprint, disc_tophats, line_closings,
                                          line_footprint, line_morphology, line_openings)

CPU = get_backend("cpu")


@pytest.mark.parametrize("theta", np.linspace(0, np.pi, 9)[:-1])
def test_footprint_is_a_point_symmetric_segment(theta):
    fp = line_footprint(21, theta)
    assert fp.shape == (21, 21) and fp[10, 10]
    np.testing.assert_array_equal(fp, fp[::-1, ::-1])
    rr, cc = np.nonzero(fp)
    extent = np.hypot(rr - 10, cc - 10).max()
    assert 9.5 <= extent <= 10 * np.sqrt(2) + 0.5


def test_cpu_opening_and_closing_equal_scipy():
    img = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    for theta in (0.0, 0.4, np.pi / 2, 2.0):
        fp = line_footprint(9, theta)
        np.testing.assert_array_equal(CPU.dilate(CPU.erode(img, fp), fp),
                                      ndi.grey_opening(img, footprint=fp, mode="reflect"))
        np.testing.assert_array_equal(CPU.erode(CPU.dilate(img, fp), fp),
                                      ndi.grey_closing(img, footprint=fp, mode="reflect"))


@pytest.fixture
def road_and_roof():
    img = np.zeros((100, 100), np.float32)
    rr, cc = np.mgrid[:100, :100]
    img[np.abs(rr - 0.5 * cc - 20) < 2] = 1.0  # a long road at about 27 degrees
    img[70:80, 70:80] = 1.0  # a 10 m roof
    return img


def test_openings_keep_long_roads_and_remove_short_blobs(road_and_roof):
    img = road_and_roof
    sup, inf = line_openings(img, 21, 16)
    assert (sup <= img + 1e-6).all()  # an opening never brightens
    assert sup[50, 60] == 1.0 and sup[75, 75] == 0.0
    # Along one direction only: the road is bright in the best opening, dark in the worst.
    assert inf[50, 60] == 0.0


def test_closings_are_the_dual_of_openings(road_and_roof):
    img = road_and_roof
    c_sup, c_inf = line_closings(1 - img, 21, 16)
    o_sup, o_inf = line_openings(img, 21, 16)
    np.testing.assert_allclose(c_inf, 1 - o_sup, atol=1e-6)
    np.testing.assert_allclose(c_sup, 1 - o_inf, atol=1e-6)


def test_residues_tell_a_roof_from_a_road(road_and_roof):
    bright, dark, bright_aniso, dark_aniso = line_morphology(road_and_roof, 21, 16)
    assert bright[50, 60] == 0 and bright[75, 75] == 1
    assert bright_aniso[50, 60] == 1 and bright_aniso[75, 75] == 0
    assert (dark >= 0).all() and (dark_aniso >= 0).all()


@pytest.mark.parametrize("diameter", [3, 5, 9, 15])
def test_disc_footprint_is_a_round_symmetric_disc(diameter):
    fp = disc_footprint(diameter)
    r = diameter // 2
    assert fp.shape == (diameter, diameter) and fp[r].all() and fp[:, r].all()
    np.testing.assert_array_equal(fp, fp.T)
    np.testing.assert_array_equal(fp, fp[::-1, ::-1])
    assert not fp[0, 0]  # corners are off: a disc, not a square


def test_disc_tophats_select_by_width(road_and_roof):
    img = road_and_roof  # road about 3.6 px wide, roof 10 px wide
    bright5, dark5 = disc_tophats(img, 5)
    bright15, _ = disc_tophats(img, 15)
    # A 5 px disc does not fit in the road (all top-hat) but fits in the roof.
    assert bright5[50, 60] == 1 and bright5[75, 75] == 0
    # A 15 px disc fits in neither: both are narrower, both are top-hat.
    assert bright15[50, 60] == 1 and bright15[75, 75] == 1
    assert (bright5 >= 0).all() and (dark5 >= 0).all()
    # The dark top-hat is the bright top-hat of the negative.
    np.testing.assert_allclose(disc_tophats(1 - img, 5)[1], bright5, atol=1e-6)


def test_disc_tophats_are_openings_of_the_reflected_image():
    img = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    bright, dark = disc_tophats(img, 7)
    fp = disc_footprint(7)
    np.testing.assert_allclose(img - bright, ndi.grey_opening(img, footprint=fp, mode="reflect"),
                               atol=1e-6)
    np.testing.assert_allclose(img + dark, ndi.grey_closing(img, footprint=fp, mode="reflect"),
                               atol=1e-6)
