"""Convolution of one image with a bank of kernels through one FFT.

The image is transformed once; each kernel's spectrum is cached per
(kernel, padded shape, backend), so a bank of N kernels costs one forward
and N inverse transforms. The image is padded by reflection first, so the
result equals a spatial convolution with ``reflect`` borders. On the CPU,
large images are transformed in blocks with overlapping halos
(overlap-save), so the transforms keep one size (``Backend.fft_block``).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len

from ..backend import backend_of

_SPECTRA: dict = {}
#: Cap of the kernel spectra's cache: a byte cap (not a count) keeps the
#: spectra of other shapes from piling up.
SPECTRA_CACHE_BYTES = 768 * 2**20


def _kernel_spectrum(bk, key, kernel: np.ndarray, shape, real: bool):
    ck = (bk.name, key, shape, real)
    spec = _SPECTRA.get(ck)
    if spec is None:
        if sum(s.nbytes for s in _SPECTRA.values()) + 8 * np.prod(shape) > SPECTRA_CACHE_BYTES:
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
    pad = max(max(k.shape) // 2 for k in kernels)
    padded = xp.pad(img.astype(xp.float32, copy=False), pad, mode="symmetric")
    # Blocks of the backend's size (overlap-save; on the CPU, that of one 1024²
    # tile at 0.5 m), so FFT sizes and the cached spectra do not grow with the image.
    block = bk.fft_block
    if block is None or max(h, w) <= block:
        cores = [(0, 0, h, w)]
        shape = tuple(next_fast_len(n + 2 * pad, real=True) for n in (h, w))
    else:
        cores = [(r, c, min(block, h - r), min(block, w - c))
                 for r in range(0, h, block) for c in range(0, w, block)]
        shape = (next_fast_len(block + 2 * pad, real=True),) * 2
    forward = bk.fft.rfft2 if real else bk.fft.fft2
    blocks = []
    for r, c, bh, bw in cores:
        part = padded[r:r + bh + 2 * pad, c:c + bw + 2 * pad]
        blocks.append(forward(xp.pad(part, ((0, shape[0] - part.shape[0]),
                                            (0, shape[1] - part.shape[1])))))
    spectra = [_kernel_spectrum(bk, key, kernel, shape, real) for kernel, key in zip(kernels, keys)]

    def convolve(spec):
        out = None
        for (r, c, bh, bw), fblock in zip(cores, blocks):
            res = bk.fft.irfft2(fblock * spec, s=shape) if real else bk.fft.ifft2(fblock * spec)
            if len(cores) == 1:
                return res[pad:pad + h, pad:pad + w]
            if out is None:
                out = xp.empty((h, w), dtype=res.dtype)
            out[r:r + bh, c:c + bw] = res[pad:pad + bh, pad:pad + bw]
        return out

    yield from bk.pmap(convolve, spectra)
