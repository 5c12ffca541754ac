"""Path openings along paths that may bend."""

import functools

import numpy as np
import pytest

from roadfeat.features.morphology import line_openings
from roadfeat.features.paths import path_lengths, path_openings


def _brute_force_vertical(mask):
    """Longest path through each pixel, one row per step, by plain recursion."""
    h, w = mask.shape

    @functools.lru_cache(maxsize=None)
    def run(i, j, step):
        if not (0 <= i < h and 0 <= j < w and mask[i, j]):
            return 0
        return 1 + max(run(i + step, j + d, step) for d in (-1, 0, 1))

    out = np.zeros((h, w), int)
    for i, j in zip(*np.nonzero(mask)):
        out[i, j] = run(i, j, 1) + run(i, j, -1) - 1
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_path_lengths_equal_brute_force(seed):
    mask = np.random.default_rng(seed).random((12, 14)) < 0.55
    expect = np.maximum(_brute_force_vertical(mask), _brute_force_vertical(mask.T).T)
    np.testing.assert_array_equal(path_lengths(mask, 100), expect)
    np.testing.assert_array_equal(path_lengths(mask, 5), np.minimum(expect, 5))


def test_a_bending_path_is_one_path_and_a_square_corner_is_two():
    mask = np.zeros((40, 40), bool)
    cols = np.concatenate([np.arange(10, 25), np.arange(24, 9, -1), np.full(10, 10)])[:40]
    mask[np.arange(40), cols] = True  # turns by 45 degrees twice: still one 40-pixel path
    assert (path_lengths(mask, 100)[mask] == 40).all()
    corner = np.zeros((30, 30), bool)
    corner[5, 5:25] = True
    corner[5:25, 24] = True  # a 90 degree turn leaves each arm its own path
    n = path_lengths(corner, 100)
    assert n[5, 10] == 20 and n[15, 24] == 20


def test_grey_path_opening_keeps_curved_roads_and_drops_blobs():
    rr, cc = np.mgrid[:120, :120]
    img = np.full((120, 120), 0.2, np.float32)
    road = np.abs(cc - (60 + 15 * np.sin(rr / 20.0))) < 1.5  # up to 37 degrees off vertical
    img[road] = 0.8
    img[10:20, 100:110] = 0.9  # a roof
    po41, po81 = path_openings(img, [41, 81], levels=16)
    assert (po41 <= img + 1e-6).all()  # an opening never brightens
    np.testing.assert_allclose(po41[road], 12 / 16)  # 0.8, down to its level
    assert po41[15, 105] == pytest.approx(3 / 16)  # the roof keeps only the background's level
    assert (po81 <= po41).all()  # longer paths keep less
    # A straight segment of the same length no longer fits where the road bends.
    straight = line_openings(img, 41, 16)[0]
    bend = road & (np.abs(np.sin(rr / 20.0)) > 0.95)
    assert np.median(straight[bend]) < 0.5 < np.median(po41[bend])


def test_a_window_with_the_length_as_halo_sees_the_same():
    img = np.random.default_rng(3).random((90, 90)).astype(np.float32)
    whole = path_openings(img, [11, 21], levels=8)
    r = 21
    window = path_openings(img[30 - r:60 + r, 30 - r:60 + r], [11, 21], levels=8)
    for w, a in zip(window, whole):
        np.testing.assert_array_equal(w[r:-r, r:-r], a[30:60, 30:60])


def test_levels_in_chunks_give_the_same_openings():
    img = np.random.default_rng(4).random((40, 50)).astype(np.float32)
    ref = path_openings(img, [5, 9], levels=16, chunk=16)
    for chunk in (1, 3, 4):
        for a, b in zip(path_openings(img, [5, 9], levels=16, chunk=chunk), ref):
            np.testing.assert_array_equal(a, b)
