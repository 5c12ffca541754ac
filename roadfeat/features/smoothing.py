"""Local statistics: Gaussian-weighted mean and standard deviation."""

from __future__ import annotations

from ..backend import backend_of


def local_mean(img, sigma: float):
    """Gaussian-weighted local mean."""
    return backend_of(img).gaussian(img, sigma)


def local_std(img, sigma: float, mean=None):
    """Gaussian-weighted local standard deviation, sqrt(E[x^2] - E[x]^2).

    ``mean``, if given, is ``local_mean(img, sigma)`` computed already.
    """
    bk = backend_of(img)
    m = bk.gaussian(img, sigma) if mean is None else mean
    m2 = bk.gaussian(img * img, sigma)
    return bk.xp.sqrt(bk.xp.maximum(m2 - m * m, 0))
