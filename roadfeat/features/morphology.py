"""Grey-level openings and closings by segments and discs: length- and width-selective shape.

An opening by a segment of length L keeps a bright pixel only as bright as
the darkest pixel of the brightest segment through it. The supremum over
orientations therefore keeps roads, which are long in one direction, and
removes bright blobs shorter than L in every direction, such as roofs and
cars; a linear filter only averages them down. Closings do the same for dark
structures. Openings by a disc select by width instead: a top-hat (the image
minus its opening) keeps what is narrower than the disc, so roads survive a
disc wider than themselves in the top-hat, and roofs wider than it do not
(a morphological profile, Pesaresi & Benediktsson 2001). Footprints are
point-symmetric, so an opening here is a true opening (erosion, then dilation
by the same set) on every backend.
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


@functools.lru_cache(maxsize=None)
def disc_footprint(diameter: int) -> np.ndarray:
    """Flat disc ``diameter`` pixels across, rounded up to odd (bool)."""
    r = int(diameter) // 2
    rr, cc = np.mgrid[-r:r + 1, -r:r + 1]
    out = rr * rr + cc * cc < r * (r + 1)  # rounder at small r than "<= r * r"
    out.flags.writeable = False
    return out


def _padded(img, r: int):
    """``img`` extended by symmetric reflection by ``r``, and the slices of ``img`` in it.

    Both steps of an opening then see the extended image, so the result near
    the border stays below the image there too.
    """
    xp = backend_of(img).xp
    padded = xp.pad(img.astype(xp.float32, copy=False), r, mode="symmetric")
    return padded, (slice(r, r + img.shape[0]), slice(r, r + img.shape[1]))


def disc_tophats(img, diameter: int):
    """White and black top-hats of ``img`` by a disc of ``diameter`` pixels.

    Returns
    -------
    bright, dark : arrays like ``img``
        ``img - opening``: bright structures narrower than the disc (high on
        roads narrower than ``diameter``, 0 inside wider roofs and fields);
        ``closing - img``: the same for dark structures.
    """
    bk = backend_of(img)
    fp = disc_footprint(int(diameter))
    padded, inner = _padded(img, 2 * (int(diameter) // 2))
    opened = bk.dilate(bk.erode(padded, fp), fp)[inner]
    closed = bk.erode(bk.dilate(padded, fp), fp)[inner]
    return img - opened, closed - img


def _over_orientations(img, length: int, n_orient: int, close: bool):
    """Supremum and infimum over orientations of openings (closings if ``close``) by segments."""
    padded, inner = _padded(img, 2 * (int(length) // 2))
    footprints = [line_footprint(int(length), np.pi * i / n_orient) for i in range(n_orient)]
    sup, inf = backend_of(img).morph_range(padded, footprints, close)
    return sup[inner], inf[inner]


def line_openings(img, length: int, n_orient: int = 16):
    """Supremum and infimum over orientations of openings by segments of ``length``."""
    return _over_orientations(img, length, n_orient, close=False)


def line_closings(img, length: int, n_orient: int = 16):
    """Supremum and infimum over orientations of closings by segments of ``length``."""
    return _over_orientations(img, length, n_orient, close=True)


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
