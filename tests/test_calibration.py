"""Platt calibration, the per-image expected-IoU threshold and its learned shift."""

import numpy as np
import pytest

from roadfeat.calibration import (IoUCurve, PlattCounts, ThresholdRule, apply_platt,
                                  confident_share, expected_iou_threshold, fit_threshold_rule,
                                  logit)


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


def test_confident_share_counts_confident_pixels_among_likely_ones():
    p = np.array([0.9, 0.6, 0.59, 0.3, 0.29, 0.0])
    assert confident_share(p) == pytest.approx(2 / 4)
    assert confident_share(np.zeros(5)) == 0.0


def test_iou_curve_matches_the_iou_of_each_thresholded_mask():
    rng = np.random.default_rng(3)
    prob = (np.floor(rng.beta(0.5, 2.0, (64, 64)) * 1000) / 1000).astype(np.float32)
    truth = rng.random((64, 64)) < prob
    curve = IoUCurve(prob, truth)
    for t in (0.0, 0.05, 0.2, 0.333, 0.5, 0.9, 1.0):
        m = prob >= t
        want = (m & truth).sum() / (m | truth).sum()
        assert curve.iou([t])[0] == pytest.approx(want)
    assert IoUCurve(np.zeros(9), np.zeros(9, bool)).iou([0.5])[0] == 1.0  # both empty


def test_a_rule_without_shift_is_the_plug_in_threshold():
    p = np.random.default_rng(4).beta(0.3, 3.0, size=(50, 50))
    assert ThresholdRule().threshold(p) == expected_iou_threshold(p)
    assert ThresholdRule.from_dict(None) == ThresholdRule()
    rule = ThresholdRule(shift=0.1, slope=0.5, centre=0.2)
    want = expected_iou_threshold(p) + 0.1 + 0.5 * (confident_share(p) - 0.2)
    assert rule.threshold(p) == pytest.approx(min(max(want, 0.02), 0.98))
    assert ThresholdRule(shift=2.0).threshold(p) == 0.98
    assert rule.threshold(np.zeros((4, 4))) == 1.0  # a map of zeros stays empty
    assert ThresholdRule.from_dict({**rule.to_dict(), "fit_on": "x"}) == rule
    assert str(rule) == "shift +0.1 +0.5 x (confident share - 0.2000)"
    assert str(ThresholdRule()) == "no shift"


def _tile(highway, tracks, tracks_labelled, n=1000):
    """A map of highway pixels (0.9), track pixels (0.45) and background (0.02)."""
    p = np.full(n, 0.02)
    p[:highway] = 0.9
    p[highway:highway + tracks] = 0.45
    truth = np.zeros(n, bool)
    truth[:highway + (tracks if tracks_labelled else 0)] = True
    return p, truth


def test_the_fit_learns_that_confident_maps_leave_their_faint_tracks_out():
    # Tiles with a clear highway leave the faint tracks out of their labels;
    # tiles that are mostly tracks label them.
    tiles = [_tile(300, 60, False) for _ in range(5)] + [_tile(20, 200, True) for _ in range(5)]
    curves = [IoUCurve(p, t) for p, t in tiles]
    plug_in = np.mean([c.iou([c.plug_in])[0] for c in curves])
    rule, score = fit_threshold_rule(curves)
    assert plug_in < 1.0 and score == pytest.approx(1.0)
    assert rule.slope > 0
    highway, tracks = tiles[0][0], tiles[-1][0]
    assert 0.45 < rule.threshold(highway) <= 0.9 and rule.threshold(tracks) <= 0.45


def test_the_fit_keeps_the_plug_in_threshold_unless_a_shift_beats_it():
    curves = [IoUCurve(*_tile(100 + 10 * i, 0, False)) for i in range(6)]
    rule, score = fit_threshold_rule(curves)
    assert score == 1.0 and (rule.shift, rule.slope) == (0.0, 0.0)
    with pytest.raises(ValueError, match="at least one image"):
        fit_threshold_rule([])
