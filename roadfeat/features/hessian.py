"""Hessian eigenvalues and ridge measures at a Gaussian scale.

Derivatives are central differences of the Gaussian-smoothed image, scaled
by sigma^2 so responses are comparable across scales. scikit-image's
``hessian_matrix`` is avoided on purpose: it switches to very large kernels
for small sigma and is several times slower.
"""

from __future__ import annotations

from ..backend import backend_of


def _d2(a, axis: int):
    xp = backend_of(a).xp
    p = xp.pad(a, [(1, 1) if i == axis else (0, 0) for i in range(a.ndim)], mode="edge")
    sl = lambda s: tuple(s if i == axis else slice(None) for i in range(a.ndim))  # noqa: E731
    return p[sl(slice(2, None))] - 2 * a + p[sl(slice(None, -2))]


def _d1(a, axis: int):
    xp = backend_of(a).xp
    p = xp.pad(a, [(1, 1) if i == axis else (0, 0) for i in range(a.ndim)], mode="edge")
    sl = lambda s: tuple(s if i == axis else slice(None) for i in range(a.ndim))  # noqa: E731
    return 0.5 * (p[sl(slice(2, None))] - p[sl(slice(None, -2))])


def hessian_eigenvalues(img, sigma: float):
    """Scale-normalised Hessian eigenvalues ``(l_max, l_min)`` at ``sigma``.

    A bright line gives ``l_min << 0`` and ``l_max ~ 0``; a dark line gives
    ``l_max >> 0`` and ``l_min ~ 0``.
    """
    return smoothed_hessian_eigenvalues(backend_of(img).gaussian(img, sigma), sigma)


def smoothed_hessian_eigenvalues(g, sigma: float):
    """:func:`hessian_eigenvalues` of an image already smoothed at ``sigma`` (``g``)."""
    xp = backend_of(g).xp
    hxx = _d2(g, 1)
    hyy = _d2(g, 0)
    hxy = _d1(_d1(g, 1), 0)
    s2 = sigma * sigma
    half_tr = 0.5 * (hxx + hyy)
    disc = xp.sqrt((0.5 * (hxx - hyy)) ** 2 + hxy * hxy)
    return ((half_tr + disc) * s2).astype(xp.float32), ((half_tr - disc) * s2).astype(xp.float32)


def ridge_measures(l_max, l_min):
    """Bright- and dark-ridge strength from Hessian eigenvalues (Sato-like).

    A ridge has one strong eigenvalue across it and a weak one along it; the
    weak one is subtracted so blobs, which have two strong ones, score low.
    """
    xp = backend_of(l_max).xp
    bright = xp.maximum(-l_min - xp.abs(l_max), 0)
    dark = xp.maximum(l_max - xp.abs(l_min), 0)
    return bright, dark


def gradient_magnitude(img, sigma: float):
    """Scale-normalised Gaussian gradient magnitude."""
    return smoothed_gradient_magnitude(backend_of(img).gaussian(img, sigma), sigma)


def smoothed_gradient_magnitude(g, sigma: float):
    """:func:`gradient_magnitude` of an image already smoothed at ``sigma`` (``g``)."""
    return backend_of(g).xp.sqrt(_d1(g, 0) ** 2 + _d1(g, 1) ** 2) * sigma
