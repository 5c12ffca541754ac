"""Platt calibration and the per-image expected-IoU threshold."""

import numpy as np
import pytest

from roadfeat.calibration import PlattCounts, apply_platt, expected_iou_threshold, logit


def test_platt_recovers_the_generating_parameters():
    rng = np.random.default_rng(0)
    score = rng.uniform(0.01, 0.99, 400_000)
    a, b = 1.7, -2.5
    truth = rng.random(score.size) < 1 / (1 + np.exp(-(a * logit(score) + b)))
    counts = PlattCounts()
    counts.add(score[:200_000], truth[:200_000])
    counts.add(score[200_000:], truth[200_000:])  # counts add up over images
    fa, fb = counts.fit()
    assert fa == pytest.approx(a, abs=0.05) and fb == pytest.approx(b, abs=0.05)
    cal = apply_platt(score.astype(np.float32), fa, fb)
    assert cal.dtype == np.float32
    # Calibrated: the mean probability matches the road rate.
    assert cal.mean() == pytest.approx(truth.mean(), abs=0.005)


def test_platt_needs_both_classes():
    counts = PlattCounts()
    counts.add(np.full(10, 0.3), np.zeros(10, bool))
    with pytest.raises(ValueError, match="both road and background"):
        counts.fit()


def brute_force_threshold(p):
    best = max(((p[p >= t].sum() / ((p >= t).sum() + p[p < t].sum()), t) for t in np.unique(p)))
    return best[1]


@pytest.mark.parametrize("seed", range(4))
def test_expected_iou_threshold_is_the_brute_force_optimum(seed):
    p = np.random.default_rng(seed).beta(0.3, 3.0, size=500)
    assert expected_iou_threshold(p) == pytest.approx(brute_force_threshold(p))


def test_a_float32_map_gets_exactly_its_float64_threshold():
    rng = np.random.default_rng(9)
    # Many ties, as in maps of few distinct leaf sums.
    p32 = np.round(rng.beta(0.3, 3.0, size=(300, 400)), 4).astype(np.float32)
    p64 = p32.astype(np.float64)
    assert expected_iou_threshold(p32) == expected_iou_threshold(p64)
    q = np.sort(p64.ravel())[::-1]  # the float64 computation written out
    inside = np.cumsum(q)
    best = q[np.argmax(inside / (np.arange(1, q.size + 1) + inside[-1] - inside))]
    assert expected_iou_threshold(p32) == best


def test_faint_roads_get_a_lower_threshold_than_clear_ones():
    clear = np.r_[np.full(100, 0.9), np.full(900, 0.02)]
    faint = np.r_[np.full(100, 0.3), np.full(900, 0.02)]
    assert expected_iou_threshold(clear) == pytest.approx(0.9)
    assert expected_iou_threshold(faint) == pytest.approx(0.3)
    # When the faint class barely stands out, including it all costs less than missing it.
    assert expected_iou_threshold(np.r_[np.full(100, 0.08), np.full(900, 0.06)]) == \
        pytest.approx(0.06)


def test_empty_probability_gives_an_empty_mask():
    assert expected_iou_threshold(np.zeros((4, 4))) == 1.0
