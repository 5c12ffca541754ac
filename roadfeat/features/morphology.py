"""Grey-level openings and closings by line segments: length-selective shape.

An opening by a segment of length L keeps a bright pixel only as bright as
the darkest pixel of the brightest segment through it. The supremum over
orientations therefore keeps roads, which are long in one direction, and
removes bright blobs shorter than L in every direction, such as roofs and
cars; a linear filter only averages them down. Closings do the same for dark
structures. Footprints are point-symmetric, so an opening here is a true
opening (erosion, then dilation by the same set) on every backend.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ..backend import backend_of


@functools.lru_cache(maxsize=None)
def line_footprint(length: int, theta: float) -> np.ndarray:
    """Flat, point-symmetric digital segment of ``length`` pixels at ``theta`` (bool)."""
    r = int(length) // 2
    k = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    end = (int(round(r + r * np.cos(theta))), int(round(r + r * np.sin(theta))))
    cv2.line(k, (r, r), end, 1, 1, cv2.LINE_8)
    k |= k[::-1, ::-1]
    out = k.astype(bool)
    out.flags.writeable = False  # cached: shared by every caller
    return out


def _over_orientations(img, length: int, n_orient: int, first, second):
    """Supremum and infimum over orientations of ``second(first(img))`` by segments.

    The image is extended by symmetric reflection once, by the reach of both
    steps, so that the result near the border is that of the extended image:
    an opening stays below the image there too.
    """
    bk = backend_of(img)
    xp = bk.xp
    r = 2 * (int(length) // 2)
    padded = xp.pad(img.astype(xp.float32, copy=False), r, mode="symmetric")
    inner = (slice(r, r + img.shape[0]), slice(r, r + img.shape[1]))
    sup = inf = None
    for t in (np.pi * i / n_orient for i in range(n_orient)):
        fp = line_footprint(int(length), t)
        o = second(first(padded, fp), fp)[inner]
        sup = o if sup is None else xp.maximum(sup, o)
        inf = o if inf is None else xp.minimum(inf, o)
    return sup, inf


def line_openings(img, length: int, n_orient: int = 16):
    """Supremum and infimum over orientations of openings by segments of ``length``."""
    bk = backend_of(img)
    return _over_orientations(img, length, n_orient, bk.erode, bk.dilate)


def line_closings(img, length: int, n_orient: int = 16):
    """Supremum and infimum over orientations of closings by segments of ``length``."""
    bk = backend_of(img)
    return _over_orientations(img, length, n_orient, bk.dilate, bk.erode)


def line_morphology(img, length: int, n_orient: int = 16):
    """Four length-selective residues of ``img`` at segment length ``length``.

    Returns
    -------
    bright, dark, bright_aniso, dark_aniso : arrays like ``img``
        ``img - sup(opening)``: how much of a bright pixel no segment of
        this length supports (0 on roads, high on small bright blobs);
        ``inf(closing) - img``: the same for dark pixels; and the range of
        the openings and of the closings over orientation (high where one
        direction is much longer than the others).
    """
    o_sup, o_inf = line_openings(img, length, n_orient)
    c_sup, c_inf = line_closings(img, length, n_orient)
    return img - o_sup, c_inf - img, o_sup - o_inf, c_sup - c_inf
