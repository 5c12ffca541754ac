"""Colour channels and vegetation/soil indices from an RGB image.

All functions take float32 RGB in [0, 1] of shape (H, W, 3), NumPy or CuPy,
and return (H, W) float32 arrays on the same device.
"""

from __future__ import annotations

from ..backend import backend_of

_EPS = 1e-6

CHANNELS = ("r", "g", "b", "lum", "sat", "val", "hue_cos", "hue_sin",
            "lab_l", "lab_a", "lab_b", "exg", "ngrdi")


def rgb_to_hsv(rgb):
    """Hue as (cos, sin) of its angle, saturation and value."""
    xp = backend_of(rgb).xp
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx = rgb.max(axis=-1)
    mn = rgb.min(axis=-1)
    delta = mx - mn
    sat = delta / (mx + _EPS)
    # Hue angle from the opponent axes; undefined (0, 0) for greys.
    hx = r - 0.5 * (g + b)
    hy = (3 ** 0.5 / 2) * (g - b)
    norm = xp.sqrt(hx * hx + hy * hy) + _EPS
    return hx / norm, hy / norm, sat, mx


def rgb_to_lab(rgb):
    """CIE L*a*b* (D65) with L in [0, 100]."""
    xp = backend_of(rgb).xp
    lin = xp.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = xp.asarray([[0.412453, 0.357580, 0.180423],
                    [0.212671, 0.715160, 0.072169],
                    [0.019334, 0.119193, 0.950227]], dtype=xp.float32)
    xyz = lin @ m.T
    xyz = xyz / xp.asarray([0.950456, 1.0, 1.088754], dtype=xp.float32)
    f = xp.where(xyz > 0.008856, xp.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    bb = 200.0 * (f[..., 1] - f[..., 2])
    return L, a, bb


def excess_green(rgb):
    """Excess green 2g - r - b on chromatic coordinates (Woebbecke et al.)."""
    s = rgb.sum(axis=-1) + _EPS
    return (2 * rgb[..., 1] - rgb[..., 0] - rgb[..., 2]) / s


def ngrdi(rgb):
    """Normalised green-red difference index (G - R) / (G + R)."""
    return (rgb[..., 1] - rgb[..., 0]) / (rgb[..., 1] + rgb[..., 0] + _EPS)


def colour_channel(rgb, name: str):
    """One named channel of :data:`CHANNELS`."""
    xp = backend_of(rgb).xp
    if name in ("r", "g", "b"):
        out = rgb[..., "rgb".index(name)]
    elif name == "lum":
        # Elementwise, not ``rgb @ w``: BLAS kernels differ by CPU (FMA or not), and
        # a last-bit difference here changed every tree of a rebuilt model.
        r, g, b = (rgb[..., i] for i in range(3))
        out = r * xp.float32(0.299) + g * xp.float32(0.587) + b * xp.float32(0.114)
    elif name in ("sat", "val", "hue_cos", "hue_sin"):
        hc, hs, s, v = rgb_to_hsv(rgb)
        out = {"sat": s, "val": v, "hue_cos": hc, "hue_sin": hs}[name]
    elif name in ("lab_l", "lab_a", "lab_b"):
        out = rgb_to_lab(rgb)[("lab_l", "lab_a", "lab_b").index(name)]
    elif name == "exg":
        out = excess_green(rgb)
    elif name == "ngrdi":
        out = ngrdi(rgb)
    else:
        raise KeyError(f"unknown colour channel {name!r}; known: {', '.join(CHANNELS)}")
    return xp.ascontiguousarray(out, dtype=xp.float32)
