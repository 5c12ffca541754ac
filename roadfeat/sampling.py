"""Choosing the training pixels of one image."""

from __future__ import annotations

import hashlib

import numpy as np

from .io import fill_pixels


def image_rng(image_id: str, seed: int) -> np.random.Generator:
    """A generator that depends only on the image id and the seed.

    Results then do not depend on the order images are processed in, or on
    which worker processes them.
    """
    h = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def sample_pixels(labels: np.ndarray, n: int, pos_fraction: float,
                  rng: np.random.Generator, valid: np.ndarray | None = None) -> np.ndarray:
    """Flat indices of a class-balanced random sample of pixels.

    Parameters
    ----------
    labels : (h, w) bool array
    n : int
        Pixels to draw in all (fewer if the image has fewer).
    pos_fraction : float
        Share of road pixels wanted; when the image has fewer road pixels,
        all of them are taken and the rest are background.
    rng : numpy Generator
    valid : (h, w) bool array, optional
        Pixels that may be drawn (default: all).

    Returns
    -------
    (k,) int64 array of sorted flat indices; uniform within each class, so
    the sample is spread over the whole image.
    """
    pos = labels.ravel()
    neg = ~pos
    if valid is not None:
        ok = valid.ravel()
        pos, neg = pos & ok, neg & ok
    pos, neg = np.flatnonzero(pos), np.flatnonzero(neg)
    n = min(int(n), len(pos) + len(neg))
    n_pos = min(len(pos), int(round(n * pos_fraction)))
    n_neg = min(len(neg), n - n_pos)
    pick = [rng.choice(pos, n_pos, replace=False) if n_pos else pos[:0],
            rng.choice(neg, n_neg, replace=False) if n_neg else neg[:0]]
    return np.sort(np.concatenate(pick))


def _area_fraction(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Share of each pixel of grid ``shape`` that ``mask`` covers (area averaging)."""
    import cv2

    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def downsample_labels(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample a boolean mask to ``shape`` by area averaging, then >= 0.5."""
    if mask.shape == tuple(shape):
        return mask
    return _area_fraction(mask, shape) >= 0.5


def data_pixels(rgb: np.ndarray, nodata: int, shape: tuple[int, int]) -> np.ndarray:
    """Pixels of the working grid ``shape`` that hold image data.

    A pixel of ``rgb`` is fill when every channel equals ``nodata`` (scenes
    padded to a tile, as in the Massachusetts Roads set); a working pixel
    holds data only when none of the pixels it covers is fill, so that no
    feature row mixes the scene with its padding.
    """
    fill = fill_pixels(rgb, nodata)
    if fill.shape == tuple(shape):
        return ~fill
    return _area_fraction(fill, shape) <= 0
