"""Long oriented line integrals: context beyond a small window.

Roads are long and thin. The mean of a channel along a line of length L
through a pixel, taken at many orientations, is high along a road in one
orientation only; its contrast to the isotropic surround separates roads
from fields of the same colour.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ..backend import backend_of
from .fftconv import filter_bank


@functools.lru_cache(maxsize=None)
def line_kernel(length: int, theta: float) -> np.ndarray:
    """Anti-aliased line of ``length`` pixels at angle ``theta``, unit sum."""
    r = length // 2
    k = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    scale = 16  # sub-pixel precision bits for cv2.line: 4
    dx, dy = r * np.cos(theta), r * np.sin(theta)
    p0 = (int(round((r - dx) * scale)), int(round((r - dy) * scale)))
    p1 = (int(round((r + dx) * scale)), int(round((r + dy) * scale)))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA, shift=4)
    return k / k.sum()


def line_means(img, length: int, n_orient: int = 12):
    """Mean of ``img`` along lines of ``length`` at ``n_orient`` angles.

    Returns an array of shape (n_orient, H, W).
    """
    xp = backend_of(img).xp
    thetas = [np.pi * i / n_orient for i in range(n_orient)]
    kernels = [line_kernel(int(length), t) for t in thetas]
    keys = [("line", int(length), t) for t in thetas]
    out = xp.empty((n_orient,) + img.shape, dtype=xp.float32)
    for i, resp in enumerate(filter_bank(img, kernels, keys, real=True)):
        out[i] = resp
    return out


def line_contrast(img, length: int, n_orient: int = 12):
    """Oriented line-mean contrast to the surround.

    Returns ``(max - surround, min - surround, max - min)`` over orientations,
    where the surround is a Gaussian mean with sigma ``length / 4``.
    """
    bk = backend_of(img)
    means = line_means(img, length, n_orient)
    surround = bk.gaussian(img, length / 4.0)
    mx = means.max(axis=0)
    mn = means.min(axis=0)
    return mx - surround, mn - surround, mx - mn
