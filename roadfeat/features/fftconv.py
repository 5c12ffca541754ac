"""Convolution of one image with a bank of kernels through one FFT.

The image is transformed once; each kernel's spectrum is cached per
(kernel, padded shape, backend), so a bank of N kernels costs one forward
and N inverse transforms. The image is padded by reflection first, so the
result equals a spatial convolution with ``reflect`` borders.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len

from ..backend import backend_of

_SPECTRA: dict = {}
# One padded shape's bank for a 2048-pixel window at 1 m/pixel is ~0.6 GB; a
# byte cap (not a count) keeps windows of other shapes from piling up.
_SPECTRA_MAX_BYTES = 768 * 2**20


def _kernel_spectrum(bk, key, kernel: np.ndarray, shape, real: bool):
    ck = (bk.name, key, shape, real)
    spec = _SPECTRA.get(ck)
    if spec is None:
        if sum(s.nbytes for s in _SPECTRA.values()) + 8 * np.prod(shape) > _SPECTRA_MAX_BYTES:
            _SPECTRA.clear()
        kh, kw = kernel.shape
        full = np.zeros(shape, dtype=kernel.dtype)
        full[:kh, :kw] = kernel
        # Centre the kernel on (0, 0) so the output is not shifted.
        full = np.roll(full, (-(kh // 2), -(kw // 2)), axis=(0, 1))
        dev = bk.xp.asarray(full)
        spec = bk.fft.rfft2(dev) if real else bk.fft.fft2(dev)
        _SPECTRA[ck] = spec
    return spec


def filter_bank(img, kernels, keys, real: bool = True):
    """Yield ``img`` convolved with each kernel in turn.

    Parameters
    ----------
    img : (H, W) float32 array
    kernels : sequence of odd-sized 2-D NumPy arrays
        Real kernels, or complex ones when ``real`` is False.
    keys : sequence of hashables
        Stable cache keys, one per kernel.
    real : bool
        Real kernels use real FFTs; complex ones yield complex responses.
    """
    bk = backend_of(img)
    xp = bk.xp
    h, w = img.shape
    radius = max(max(k.shape) // 2 for k in kernels)
    pad = radius
    padded = xp.pad(img.astype(xp.float32, copy=False), pad, mode="symmetric")
    shape = tuple(next_fast_len(s, real=True) for s in padded.shape)
    padded = xp.pad(padded, ((0, shape[0] - padded.shape[0]), (0, shape[1] - padded.shape[1])))
    fimg = bk.fft.rfft2(padded) if real else bk.fft.fft2(padded)
    spectra = [_kernel_spectrum(bk, key, kernel, shape, real) for kernel, key in zip(kernels, keys)]

    def convolve(spec):
        out = bk.fft.irfft2(fimg * spec, s=shape) if real else bk.fft.ifft2(fimg * spec)
        return out[pad:pad + h, pad:pad + w]

    yield from bk.pmap(convolve, spectra)

