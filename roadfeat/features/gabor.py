"""Oriented Gabor filter bank with orientation-invariant summaries."""

from __future__ import annotations

import functools

import numpy as np

from ..backend import backend_of
from .fftconv import filter_bank


@functools.lru_cache(maxsize=None)
def gabor_kernel(wavelength: float, theta: float, aspect: float = 0.5,
                 bandwidth_sigma: float = 0.56) -> np.ndarray:
    """Complex Gabor kernel, zero-mean real part, unit L1 norm.

    Parameters
    ----------
    wavelength : float
        Period of the carrier, in pixels. A bar of width ``w`` responds most
        at ``wavelength ~ 2 w``.
    theta : float
        Direction of the carrier (across the bar), radians.
    aspect : float
        Envelope ratio across/along; below 1 elongates the kernel along the
        bar, which favours long linear structures.
    bandwidth_sigma : float
        Envelope sigma as a multiple of the wavelength (0.56 is one octave).
    """
    sigma = bandwidth_sigma * wavelength
    radius = int(np.ceil(3 * sigma / aspect))
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    env = np.exp(-(xr ** 2 + (aspect * yr) ** 2) / (2 * sigma ** 2))
    k = env * np.exp(1j * 2 * np.pi * xr / wavelength)
    k.real -= env * (k.real.sum() / env.sum())  # no response to flat areas
    k /= np.abs(k).sum()
    return k.astype(np.complex64)


def gabor_energy(img, wavelength: float, n_orient: int = 8):
    """Gabor energy (magnitude of the complex response) per orientation.

    Returns an array of shape (n_orient, H, W).
    """
    xp = backend_of(img).xp
    thetas = [np.pi * i / n_orient for i in range(n_orient)]
    kernels = [gabor_kernel(float(wavelength), t) for t in thetas]
    keys = [("gabor", float(wavelength), t) for t in thetas]
    out = xp.empty((n_orient,) + img.shape, dtype=xp.float32)
    for i, resp in enumerate(filter_bank(img, kernels, keys, real=False)):
        out[i] = xp.abs(resp)
    return out


def orientation_summary(stack):
    """Max, mean and max - min over the first (orientation) axis."""
    mx = stack.max(axis=0)
    mn = stack.min(axis=0)
    return mx, stack.mean(axis=0), mx - mn
