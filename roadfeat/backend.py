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
    #: ``morph_range(padded, footprints, close)``: maximum and minimum over the
    #: footprints of the opening (closing if ``close``) of ``padded`` by each,
    #: at ``padded``'s size; valid where ``padded`` extends the image by twice
    #: the footprints' radius. On the CPU one footprint at a time; on the GPU
    #: every footprint in one kernel launch per step.
    morph_range: Callable[[Any, list, bool], tuple[Any, Any]]
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


def _streamed_morph_range(xp, erode, dilate, pmap):
    """``morph_range`` one footprint at a time, holding one result per worker."""
    def run(padded, footprints, close: bool):
        first, second = (dilate, erode) if close else (erode, dilate)
        sup = inf = None
        for o in pmap(lambda fp: second(first(padded, fp), fp), footprints):
            sup = o if sup is None else xp.maximum(sup, o)
            inf = o if inf is None else xp.minimum(inf, o)
        return sup, inf
    return run


def footprint_offsets(footprints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column offsets of every footprint's pixels, concatenated, and where each starts.

    Returns ``(dy, dx, start)`` (int32): footprint ``i`` is
    ``dy[start[i]:start[i + 1]], dx[...]`` relative to its centre.
    """
    dy, dx, start = [], [], [0]
    for fp in footprints:
        r, c = np.nonzero(np.asarray(fp, bool))
        dy.append(r - fp.shape[0] // 2)
        dx.append(c - fp.shape[1] // 2)
        start.append(start[-1] + r.size)
    return (np.concatenate(dy).astype(np.int32), np.concatenate(dx).astype(np.int32),
            np.asarray(start, np.int32))


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

    erode, dilate = _cpu_morph(cv2.erode), _cpu_morph(cv2.dilate)
    return Backend("cpu", np, scipy.fft, _cpu_gaussian, _cpu_resize, erode, dilate, _cpu_trees,
                   _cpu_pmap, _streamed_morph_range(np, erode, dilate, _cpu_pmap),
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


# Min or max of each footprint's pixels around every pixel, for all footprints in
# one launch; indices clamp at the border (the caller pads, so the valid part
# never reads past it). Min and max are exact, so this equals OpenCV's.
_MORPH_MANY = r"""
extern "C" __global__ void morph_many(const float* __restrict__ src, float* __restrict__ dst,
        const int* __restrict__ dy, const int* __restrict__ dx, const int* __restrict__ start,
        const int n_fp, const int H, const int W, const int per_fp, const int take_max) {
    const long long plane = (long long)H * W;
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= plane * n_fp) return;
    const int f = (int)(i / plane);
    const int p = (int)(i - (long long)f * plane);
    const int y = p / W, x = p - (p / W) * W;
    const float* s = per_fp ? src + (long long)f * plane : src;
    float v = take_max ? __int_as_float(0xff800000) : __int_as_float(0x7f800000);
    for (int k = start[f]; k < start[f + 1]; ++k) {
        const int yy = min(max(y + dy[k], 0), H - 1);
        const int xx = min(max(x + dx[k], 0), W - 1);
        const float u = s[yy * W + xx];
        v = take_max ? fmaxf(v, u) : fminf(v, u);
    }
    dst[i] = v;
}
"""


@functools.lru_cache(maxsize=None)
def _morph_many_kernel():
    import cupy

    return cupy.RawKernel(_MORPH_MANY, "morph_many")


@functools.lru_cache(maxsize=64)
def _device_offsets(key):
    import cupy

    footprints = [np.frombuffer(b, bool).reshape(shape) for shape, b in key]
    return tuple(cupy.asarray(a) for a in footprint_offsets(footprints))


def _kernel_morph_range(padded, footprints, close: bool):
    import cupy

    dy, dx, start = _device_offsets(tuple((f.shape, np.asarray(f, bool).tobytes())
                                          for f in footprints))
    src = cupy.ascontiguousarray(padded, dtype=cupy.float32)
    (h, w), n = src.shape, len(footprints)
    first = cupy.empty((n, h, w), cupy.float32)
    second = cupy.empty_like(first)
    block = 256
    grid = (n * h * w + block - 1) // block
    kernel = _morph_many_kernel()
    for a, b, per_fp, take_max in ((src, first, 0, close), (first, second, 1, not close)):
        kernel((grid,), (block,), (a, b, dy, dx, start, np.int32(n), np.int32(h), np.int32(w),
                                   np.int32(per_fp), np.int32(take_max)))
    return second.max(axis=0), second.min(axis=0)


@functools.lru_cache(maxsize=None)
def _streamed_gpu_morph_range():
    import cupy

    return _streamed_morph_range(cupy, _gpu_morph("grey_erosion"), _gpu_morph("grey_dilation"),
                                 _serial_map)


@functools.lru_cache(maxsize=1)
def _morph_kernel_works() -> bool:
    """Check the one-launch kernel against ``cupyx.scipy.ndimage`` once per process."""
    import cupy

    from .features.morphology import line_footprint

    try:
        img = cupy.asarray(np.random.default_rng(0).random((37, 29), dtype=np.float32))
        fps = [line_footprint(7, np.pi * i / 4) for i in range(4)]
        for close in (False, True):
            got = _kernel_morph_range(img, fps, close)
            want = _streamed_gpu_morph_range()(img, fps, close)
            # Compare away from the border, where the two border rules agree.
            if any(not bool((g[6:-6, 6:-6] == w[6:-6, 6:-6]).all()) for g, w in zip(got, want)):
                raise RuntimeError("results differ from cupyx.scipy.ndimage")
        return True
    except Exception as exc:
        log.info("line morphology on the GPU: the one-launch kernel is not used (%s: %s); "
                 "using cupyx.scipy.ndimage", type(exc).__name__, str(exc).splitlines()[0][:120])
        return False


def _gpu_morph_range(padded, footprints, close: bool):
    if _morph_kernel_works():
        return _kernel_morph_range(padded, footprints, close)
    return _streamed_gpu_morph_range()(padded, footprints, close)


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
                   _serial_map, _gpu_morph_range)


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
