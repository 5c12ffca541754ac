"""Array backend: the one place that chooses between CPU and GPU.

Feature and post-processing code is written once against a :class:`Backend`.
The backend is chosen by the array passed in (as in cuCIM): a CuPy array gets
the GPU implementation, anything else the CPU one. :func:`get_backend` decides
once per run which backend new arrays are placed on.

The CPU backend uses NumPy, SciPy and OpenCV (``cv2.GaussianBlur`` is an order
of magnitude faster than ``scipy.ndimage.gaussian_filter`` and gives the same
result with the same ``reflect`` border and 4-sigma truncation). The GPU
backend uses CuPy and ``cupyx.scipy.ndimage``.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import numpy as np

log = logging.getLogger("roadfeat")

__all__ = ["Backend", "get_backend", "backend_of", "gpu_available", "to_host"]


@dataclass(frozen=True)
class Backend:
    """Array module plus the handful of primitives whose fastest form differs."""

    name: str
    xp: ModuleType
    fft: ModuleType
    gaussian: Callable[[Any, float], Any]
    resize: Callable[[Any, tuple[int, int]], Any]
    #: Grey erosion / dilation by a flat footprint (a NumPy bool array), reflect borders.
    erode: Callable[[Any, np.ndarray], Any]
    dilate: Callable[[Any, np.ndarray], Any]
    #: Road probability (h, w) of a LightGBM booster over a (F, h, w) stack,
    #: on this backend: :mod:`roadfeat.compiled_trees` on the CPU (LightGBM's own
    #: predict where compiling is not possible), :mod:`roadfeat.forest` on the GPU.
    trees: Callable[[Any, Any], Any]
    #: ``pmap(fn, items)``: ``fn`` over independent items, results yielded in
    #: order; on the CPU a thread per core (OpenCV, SciPy's FFT and tl2cgen
    #: release the GIL), at most one batch of results held at once.
    pmap: Callable[[Callable, Any], Any]
    #: Core size (pixels) of the blocks FFT filter banks work in, or None for
    #: whole images: small blocks keep the CPU's caches warm and the cost per
    #: pixel flat; a GPU does best with one large transform.
    fft_block: int | None = None

    def asarray(self, a, dtype=None):
        return self.xp.asarray(a, dtype=dtype)


def to_host(a) -> np.ndarray:
    """Return ``a`` as a NumPy array (copies from the GPU when needed)."""
    get = getattr(a, "get", None)
    return get() if callable(get) and not isinstance(a, np.ndarray) else np.asarray(a)


# --------------------------------------------------------------------- CPU
def _cpu_gaussian(img, sigma: float):
    import cv2

    img = np.ascontiguousarray(img, dtype=np.float32)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma),
                            borderType=cv2.BORDER_REFLECT)


def _cpu_resize(img, shape: tuple[int, int]):
    import cv2

    h, w = shape
    img = np.ascontiguousarray(img, dtype=np.float32)
    shrink = h < img.shape[0] or w < img.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(img, (int(w), int(h)), interpolation=interp)


def _cpu_morph(op):
    def run(img, footprint):
        import cv2

        img = np.ascontiguousarray(img, dtype=np.float32)
        return op(img, footprint.astype(np.uint8), borderType=cv2.BORDER_REFLECT)
    return run


def _cpu_trees(booster, stack):
    from .compiled_trees import predictor_of

    return predictor_of(booster)(stack.reshape(stack.shape[0], -1)).reshape(stack.shape[1:])


def cpu_threads() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(cpu_threads(), thread_name_prefix="roadfeat")


def _cpu_pmap(fn, items):
    items = list(items)
    n = cpu_threads()
    if n < 2 or len(items) < 2:
        yield from map(fn, items)
        return
    for i in range(0, len(items), n):
        yield from _pool().map(fn, items[i:i + n])


def _serial_map(fn, items):
    yield from map(fn, items)


@functools.lru_cache(maxsize=None)
def _cpu_backend() -> Backend:
    import cv2
    import scipy.fft

    return Backend("cpu", np, scipy.fft, _cpu_gaussian, _cpu_resize,
                   _cpu_morph(cv2.erode), _cpu_morph(cv2.dilate), _cpu_trees, _cpu_pmap,
                   fft_block=512)


# --------------------------------------------------------------------- GPU
@functools.lru_cache(maxsize=64)
def gaussian_kernel(sigma: float) -> np.ndarray:
    """OpenCV's 1-D Gaussian kernel for float32 images (4-sigma radius), float32.

    The GPU filters with this same kernel, so both backends compute the same
    sums and tree thresholds fall on the same side.
    """
    import cv2

    ksize = int(round(float(sigma) * 4 * 2 + 1)) | 1
    return cv2.getGaussianKernel(ksize, float(sigma), cv2.CV_32F).ravel()


def _gpu_gaussian(img, sigma: float):
    import cupy
    import cupyx.scipy.ndimage as cndi

    k = cupy.asarray(gaussian_kernel(float(sigma)))
    img = img.astype("float32", copy=False)
    out = cndi.convolve1d(img, k, axis=0, mode="reflect")
    return cndi.convolve1d(out, k, axis=1, mode="reflect")


def _gpu_resize(img, shape: tuple[int, int]):
    import cupy as cp
    import cupyx.scipy.ndimage as cndi

    h, w = shape
    img = img.astype(cp.float32, copy=False)
    fy, fx = img.shape[0] / h, img.shape[1] / w
    if fy == fx and fy >= 1 and float(fy).is_integer():
        # Integer shrink: block mean, the same as cv2.INTER_AREA.
        f = int(fy)
        return img[: h * f, : w * f].reshape(h, f, w, f, *img.shape[2:]).mean(axis=(1, 3))
    zoom = (h / img.shape[0], w / img.shape[1]) + (1,) * (img.ndim - 2)
    return cndi.zoom(img, zoom, order=1, mode="nearest", grid_mode=True)


def _gpu_morph(name):
    def run(img, footprint):
        import cupyx.scipy.ndimage as cndi

        # Footprints are point-symmetric, so scipy's reflected dilation equals OpenCV's.
        return getattr(cndi, name)(img.astype("float32", copy=False),
                                   footprint=footprint.astype(bool), mode="reflect")
    return run


def _gpu_trees(booster, stack):
    from .forest import forest_of, predict_device

    X = stack.reshape(stack.shape[0], -1)
    return predict_device(forest_of(booster), X).reshape(stack.shape[1:])


@functools.lru_cache(maxsize=None)
def _gpu_backend() -> Backend:
    import cupy
    import cupyx.scipy.fft

    return Backend("gpu", cupy, cupyx.scipy.fft, _gpu_gaussian, _gpu_resize,
                   _gpu_morph("grey_erosion"), _gpu_morph("grey_dilation"), _gpu_trees,
                   _serial_map)


@functools.lru_cache(maxsize=1)
def gpu_available() -> tuple[bool, str]:
    """Probe for a working GPU: allocate and run one kernel.

    ``import cupy`` succeeds on machines without a GPU, so importing is not
    enough. Returns ``(ok, reason)``.
    """
    try:
        import cupy

        a = cupy.arange(16, dtype=cupy.float32)
        total = float((a * 2).sum().get())
        if total != 240.0:
            return False, f"GPU kernel returned {total}, expected 240"
        import cupyx.scipy.ndimage  # noqa: F401
        return True, cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as exc:  # any failure means "no usable GPU"
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def get_backend(device: str = "auto") -> Backend:
    """Choose the backend once per run.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}
        ``auto`` uses the GPU when the probe succeeds, else the CPU with one
        log line. ``gpu`` raises when no GPU works.
    """
    if device not in ("auto", "cpu", "gpu"):
        raise ValueError(f"device must be auto, cpu or gpu, not {device!r}")
    if device == "cpu":
        return _cpu_backend()
    ok, why = gpu_available()
    if ok:
        log.info("backend: GPU (%s)", why)
        return _gpu_backend()
    if device == "gpu":
        raise RuntimeError(f"--device gpu asked for, but no working GPU: {why}")
    log.info("backend: CPU (no working GPU: %s)", why)
    return _cpu_backend()


def backend_of(a) -> Backend:
    """Backend matching the array ``a``: GPU for a CuPy array, else CPU."""
    if type(a).__module__.startswith("cupy"):
        return _gpu_backend()
    return _cpu_backend()
