"""Rotation-invariant texture contrast: a built-up area index.

After PanTex (Pesaresi, Gerhardinger & Kayitakire, 2008): the contrast of
the grey-level co-occurrence matrix for a displacement ``d`` is the mean of
``(I(x) - I(x + d))**2`` over the pairs in a window, and its minimum over
displacements in many directions is high only where the image varies in
every direction. Roofs, yards and their shadows do; a road, a field or
water has at least one smooth direction.
"""

from __future__ import annotations

from ..backend import backend_of


def displacements(max_shift: int = 2) -> list[tuple[int, int]]:
    """The ``(dy, dx)`` with ``max(|dy|, |dx|) <= max_shift``, one of each ``+-d`` pair."""
    return [(dy, dx) for dy in range(0, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
            if (dy, dx) > (0, 0) and not (dy == 0 and dx < 0)]


def directional_contrasts(img, sigma: float, max_shift: int = 2):
    """Local contrast for each of :func:`displacements`.

    The Gaussian-weighted mean of ``(I(x) - I(x + d))**2`` and
    ``(I(x) - I(x - d))**2``: both members of each pair count, as in a
    symmetric co-occurrence matrix, so the output is centred on ``x`` and
    turns with the image.

    Parameters
    ----------
    img : (H, W) float array (NumPy or CuPy)
    sigma : float
        Gaussian window, pixels.
    max_shift : int
        Largest displacement along each axis, pixels; the image is
        edge-padded so the output has the input's shape.

    Yields
    ------
    (H, W) arrays, one per displacement, in the order of :func:`displacements`.
    """
    bk = backend_of(img)
    p = int(max_shift)
    h, w = img.shape
    padded = bk.xp.pad(img, p, mode="edge")
    for dy, dx in displacements(p):
        ahead = img - padded[p + dy:p + dy + h, p + dx:p + dx + w]
        behind = img - padded[p - dy:p - dy + h, p - dx:p - dx + w]
        yield bk.gaussian(0.5 * (ahead * ahead + behind * behind), sigma)


def pantex(img, sigma: float, max_shift: int = 2):
    """Minimum over directions of the local contrast (see :func:`directional_contrasts`)."""
    xp = backend_of(img).xp
    best = None
    for c in directional_contrasts(img, sigma, max_shift):
        best = c if best is None else xp.minimum(best, c)
    return best
