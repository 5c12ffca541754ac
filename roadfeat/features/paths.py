"""Path openings: length-selective shape along paths that may bend.

A line opening (:mod:`.morphology`) keeps a pixel only where a straight
segment fits; earth tracks and village lanes bend. A path opening keeps it
where a *path* of the given length fits: a chain of pixels that advances by
one row (or one column) at each step and may move sideways by at most one,
so it can turn by up to 45 degrees either way (Talbot & Appleton 2007;
Hendriks 2010). Binary path lengths come from two passes of dynamic
programming per cone; grey-level openings from thresholding at a few levels.

Lengths are capped at the opening's length while they are counted, so the
result at a pixel depends only on pixels at most ``length`` away: a window
with that halo computes the same values as the whole image.
"""

from __future__ import annotations

from ..backend import backend_of


def _cone_pass(mask, cap: int, reverse: bool):
    """Per pixel, the longest path ending there that moves one row at a time (capped).

    ``mask`` is (..., H, W); every leading index is its own image.
    """
    xp = backend_of(mask).xp
    h = mask.shape[-2]
    out = xp.zeros(mask.shape, dtype=xp.int32)
    prev = xp.zeros(mask.shape[:-2] + mask.shape[-1:], dtype=xp.int32)
    best = xp.empty_like(prev)
    for i in (range(h - 1, -1, -1) if reverse else range(h)):
        best[...] = prev
        xp.maximum(best[..., 1:], prev[..., :-1], out=best[..., 1:])
        xp.maximum(best[..., :-1], prev[..., 1:], out=best[..., :-1])
        prev = xp.where(mask[..., i, :], xp.minimum(best + 1, cap), 0).astype(xp.int32)
        out[..., i, :] = prev
    return out


def path_lengths(mask, cap: int):
    """Length of the longest path through each pixel of ``mask``, capped at ``cap``.

    Parameters
    ----------
    mask : (..., H, W) bool array
        One image, or a stack of images along the leading axes.
    cap : int
        Lengths at or above ``cap`` are returned as ``cap``.

    Returns
    -------
    int32 array like ``mask``
        0 outside ``mask``; inside, the number of pixels of the longest
        path through the pixel within the vertical cone (one row per step,
        at most one column sideways) or the horizontal one, whichever is
        longer.
    """
    xp = backend_of(mask).xp

    def cone(m):
        m = xp.ascontiguousarray(m)
        total = _cone_pass(m, cap, False) + _cone_pass(m, cap, True) - 1
        return xp.where(m, xp.minimum(total, cap), 0)

    return xp.maximum(cone(mask), xp.swapaxes(cone(xp.swapaxes(mask, -1, -2)), -1, -2)
                      ).astype(xp.int32)


def path_openings(img, lengths, levels: int = 16, chunk: int = 4):
    """Grey-level path openings of ``img`` (values in [0, 1]) at several lengths.

    Parameters
    ----------
    img : (H, W) float array with values in [0, 1]
    lengths : sequence of int
        Path lengths in pixels.
    levels : int
        Thresholds ``1/levels, 2/levels, ..., 1``: the output is quantised
        to them.
    chunk : int
        Thresholds processed together: memory grows with ``chunk * H * W``,
        not with ``levels``.

    Returns
    -------
    list of (H, W) float32 arrays, one per length
        The largest threshold ``t <= img`` at which a path of that length
        through the pixel stays at or above ``t`` (0 if none does).
    """
    xp = backend_of(img).xp
    thresholds = [k / levels for k in range(1, int(levels) + 1)]
    passing = [xp.zeros(img.shape, dtype=xp.int32) for _ in lengths]
    for start in range(0, len(thresholds), max(1, int(chunk))):
        above = xp.stack([img >= t - 1e-6 for t in thresholds[start:start + int(chunk)]])
        n = path_lengths(above, int(max(lengths)))
        # Lengths fall as the threshold rises: count the levels that still pass.
        for p, length in zip(passing, lengths):
            p += (n >= int(length)).sum(axis=0, dtype=xp.int32)
    return [(p * (1.0 / levels)).astype(xp.float32) for p in passing]
