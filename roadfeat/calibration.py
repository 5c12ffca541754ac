"""Calibrated probabilities, and the threshold that maximises expected IoU per image.

The boosters are trained on class-balanced samples, and their scores shift
from image to image, so one fixed threshold fits some images and wipes out
others (with 8 training tiles the best fixed threshold moved from 0.35 to
0.70 between folds). Instead:

1. Platt scaling (``p' = sigmoid(a * logit(p) + b)``), fitted on held-out
   probability maps of whole training images, turns scores into
   probabilities of road at the true road rate.
2. For each image, the mask ``p' >= t`` has expected IoU
   ``sum_{p'>=t} p' / (#{p'>=t} + sum_{p'<t} p')`` (the plug-in estimate);
   the threshold is the ``t`` that maximises it. Images whose roads the
   model sees only faintly get a lower threshold than images it sees
   clearly, which is what maximising IoU asks for (the optimal threshold on
   calibrated probabilities is ``J / (1 + J)`` for achievable IoU ``J``).
3. That threshold is then shifted by a :class:`ThresholdRule` learned from
   the same held-out maps: maps whose likely road is mostly confident
   (a labelled highway across fields, beside faint tracks) want a higher
   threshold than the plug-in estimate gives, because the labels of such
   tiles leave the faint tracks out. Pixels of a track are labelled or not
   together, which the plug-in estimate, treating pixels as independent,
   cannot know (docs/RESULTS.md, twenty-first session).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

_EPS = 1e-6
# Bins of logit(p) for the Platt fit: counts per bin are sufficient statistics.
_BINS = 2048
_LOGIT_RANGE = 14.0


def logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class PlattCounts:
    """Road and background pixel counts per bin of ``logit(p)``, summed over images."""

    def __init__(self):
        self.pos = np.zeros(_BINS)
        self.neg = np.zeros(_BINS)

    def add(self, prob: np.ndarray, truth: np.ndarray) -> None:
        """Add one image's probability map and its boolean truth of the same shape."""
        i = self._bin(prob)
        t = np.asarray(truth, bool).ravel()
        self.pos += np.bincount(i[t], minlength=_BINS)
        self.neg += np.bincount(i[~t], minlength=_BINS)

    @staticmethod
    def _bin(prob) -> np.ndarray:
        z = logit(np.asarray(prob).ravel())
        i = np.floor((z + _LOGIT_RANGE) / (2 * _LOGIT_RANGE) * _BINS).astype(np.int64)
        return np.clip(i, 0, _BINS - 1)

    @staticmethod
    def centres() -> np.ndarray:
        return (np.arange(_BINS) + 0.5) / _BINS * 2 * _LOGIT_RANGE - _LOGIT_RANGE

    def fit(self, iterations: int = 100) -> tuple[float, float]:
        """Platt parameters ``(a, b)`` by Newton's method on the binned log likelihood."""
        if self.pos.sum() == 0 or self.neg.sum() == 0:
            raise ValueError("calibration needs both road and background pixels")
        z = self.centres()
        n = self.pos + self.neg
        w = np.array([1.0, 0.0])
        for _ in range(iterations):
            q = 1 / (1 + np.exp(-(w[0] * z + w[1])))
            g = np.array([np.sum((self.pos - n * q) * z), np.sum(self.pos - n * q)])
            h = n * q * (1 - q)
            H = np.array([[np.sum(h * z * z), np.sum(h * z)], [np.sum(h * z), np.sum(h)]])
            # A tiny ridge keeps the step finite when the classes separate perfectly.
            step = np.linalg.solve(H + 1e-9 * np.eye(2), g)
            w = w + step
            if np.abs(step).max() < 1e-10:
                break
        return float(w[0]), float(w[1])


def apply_platt(prob, a: float, b: float):
    """Calibrated probability map, float32, on the same backend as ``prob``."""
    from .backend import backend_of

    xp = backend_of(prob).xp
    p = xp.clip(prob.astype(xp.float32), _EPS, 1 - _EPS)
    z = a * xp.log(p / (1 - p)) + b
    return (1 / (1 + xp.exp(-z))).astype(xp.float32)


def expected_iou_threshold(prob: np.ndarray) -> float:
    """Threshold on calibrated ``prob`` that maximises the plug-in expected IoU.

    Parameters
    ----------
    prob : array of calibrated road probabilities (any shape)

    Returns
    -------
    float
        The probability of the last pixel included; the mask is
        ``prob >= threshold``. 1.0 for an image of zeros (an empty mask).
    """
    p = np.asarray(prob)
    # Sorting float32 maps as float32 orders the same values as float64 would,
    # and sorts half the bytes; the sums below are float64 either way.
    p = np.sort((p if p.dtype == np.float32 else p.astype(np.float64)).ravel())[::-1]
    if p.size == 0 or p[0] <= 0:
        return 1.0
    inside = np.cumsum(p, dtype=np.float64)
    outside = inside[-1] - inside
    expected = inside / (np.arange(1, p.size + 1) + outside)
    return float(p[int(np.argmax(expected))])


#: :func:`confident_share`: of the pixels at least ``CONFIDENT[0]`` likely
#: road, the share at least ``CONFIDENT[1]`` likely. Of the statistics that
#: benchmarks/bench_threshold_rule.py compares, this one's rule fit the
#: training images' out-of-fold maps best (docs/RESULTS.md, twenty-first session).
CONFIDENT = (0.3, 0.6)
# A shifted threshold never marks every pixel, nor none of a map that has road.
_LOWEST, _HIGHEST = 0.02, 0.98
#: Resolution of the IoU curves a rule is fit on.
CURVE_BINS = 1000


def confident_share(prob, likely: float = CONFIDENT[0], confident: float = CONFIDENT[1]) -> float:
    """Share of the pixels with ``prob >= likely`` that have ``prob >= confident`` (0 if none)."""
    p = np.asarray(prob)
    n = int(np.count_nonzero(p >= likely))
    return int(np.count_nonzero(p >= confident)) / n if n else 0.0


@dataclass(frozen=True)
class ThresholdRule:
    """Each image's threshold: the plug-in expected-IoU threshold, shifted by
    ``shift + slope * (confident_share(prob) - centre)``.

    The default (all zero) is the plug-in rule itself, which is what a model
    card without a ``threshold_rule`` means.
    """

    shift: float = 0.0
    slope: float = 0.0
    centre: float = 0.0

    @property
    def plain(self) -> bool:
        """No shift: the plug-in threshold itself."""
        return self.shift == 0.0 and self.slope == 0.0

    def threshold(self, prob) -> float:
        """Threshold on calibrated ``prob``; 1.0 (an empty mask) for a map of zeros."""
        t = expected_iou_threshold(prob)
        return t if self.plain else self.apply(t, confident_share(prob))

    def apply(self, plug_in, share):
        """The threshold(s) from a map's plug-in threshold and confident share
        (numbers, or arrays of one per map); a map of zeros (plug-in 1.0) stays empty."""
        if self.plain:
            return plug_in
        t = np.asarray(plug_in, float)
        shifted = np.clip(t + self.shift + self.slope * (np.asarray(share) - self.centre),
                          _LOWEST, _HIGHEST)
        out = np.where(t >= 1.0, t, shifted)
        return float(out) if out.ndim == 0 else out

    def __str__(self) -> str:
        """The shift as logs and model READMEs write it."""
        if self.plain:
            return "no shift"
        return (f"shift {self.shift:+.4g} {self.slope:+.4g} x (confident share "
                f"- {self.centre:.4f})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "ThresholdRule":
        return cls(**{k: float(v) for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


class IoUCurve:
    """IoU of ``prob >= t`` against one image's truth, for any ``t``, from counts
    per probability bin (``CURVE_BINS`` of them), with the image's plug-in
    threshold and :func:`confident_share`.
    """

    def __init__(self, prob, truth):
        p = np.asarray(prob).ravel()
        t = np.asarray(truth, bool).ravel()
        if p.shape != t.shape:
            raise ValueError(f"map of {p.size} pixels against truth of {t.size}")
        b = np.clip((p * CURVE_BINS).astype(np.int64), 0, CURVE_BINS - 1)
        # Pixels at or above bin i, and the road pixels among them; bin CURVE_BINS is empty.
        self.marked = np.append(np.cumsum(np.bincount(b, minlength=CURVE_BINS)[::-1])[::-1], 0)
        self.hits = np.append(np.cumsum(np.bincount(b[t], minlength=CURVE_BINS)[::-1])[::-1], 0)
        self.roads = int(t.sum())
        self.plug_in = expected_iou_threshold(p)
        self.share = confident_share(p)

    def iou(self, thresholds) -> np.ndarray:
        """IoU at each threshold, rounded up to a bin edge; 1 where truth and mask are empty."""
        return _iou(self.marked, self.hits, self.roads, thresholds)


def _iou(marked, hits, roads, thresholds):
    """IoU from curve counts; with stacked curves, one threshold per curve."""
    i = np.clip(np.ceil(np.asarray(thresholds) * CURVE_BINS).astype(np.int64), 0, CURVE_BINS)
    at = i if marked.ndim == 1 else (np.arange(len(marked)), i)
    union = roads + marked[at] - hits[at]
    return np.where(union > 0, hits[at] / np.maximum(union, 1), 1.0)


def fit_threshold_rule(curves: list, shifts=np.arange(-0.2, 0.30001, 0.0125),
                       slopes=np.arange(-1.0, 1.00001, 0.025)) -> tuple["ThresholdRule", float]:
    """The :class:`ThresholdRule` of the grid whose thresholds give the best
    mean IoU over ``curves`` (:class:`IoUCurve` of held-out maps, one per
    image), and that mean. ``centre`` is the images' median share. Ties go
    to the smallest shift and slope, so the plug-in rule stays unless beaten.
    """
    if not curves:
        raise ValueError("a threshold rule needs at least one image")
    marked = np.stack([c.marked for c in curves])
    hits = np.stack([c.hits for c in curves])
    roads = np.array([c.roads for c in curves])
    plug = np.array([c.plug_in for c in curves])
    share = np.array([c.share for c in curves])
    centre = float(np.median(share))

    def score(rule):
        return float(np.mean(_iou(marked, hits, roads, rule.apply(plug, share))))

    best, best_rule = score(ThresholdRule(centre=centre)), ThresholdRule(centre=centre)
    for slope in sorted(np.round(slopes, 6), key=abs):
        for shift in sorted(np.round(shifts, 6), key=abs):
            rule = ThresholdRule(float(shift), float(slope), centre)
            s = score(rule)
            if s > best + 1e-12:
                best, best_rule = s, rule
    return best_rule, best
