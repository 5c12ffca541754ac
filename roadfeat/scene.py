"""Prediction of images of any size in windows, with bounded memory.

A scene is cut into square *core* windows. Each core is predicted from a
larger read: the core plus a post-processing halo (so that bridging and
component removal see the roads around it) plus a feature halo (so that
every filter sees what it would see in the whole image). Only the core of
each window is kept, so peak memory depends on the window size, not on the
scene size.

Features and probabilities of the kept pixels equal those of the whole
image when window offsets fall on whole pixels of the working grid (the
offsets are rounded to make sure they do). Post-processing is local to the
post-processing halo: a road end whose partner or whose small component
reaches beyond it can be treated differently at a window seam than in the
whole image. Under the ``expected-iou`` threshold each window's threshold is
chosen on its own post-processing region, so a scene of many windows adapts
its threshold window by window (an image that fits one window gets exactly
the whole-image threshold). ``docs/RELIABILITY.md`` states what is tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, Protocol

import numpy as np

from .backend import Backend
from .features.spec import receptive_radius
from .io import fill_pixels
from .model import RoadModel, _stage
from .postprocess import postprocess

DEFAULT_WINDOW = 2048


class Source(Protocol):
    """Where a scene's pixels come from, window by window."""

    shape: tuple[int, int]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """(h, w, 3) uint8 RGB."""

    def valid(self, rows: slice, cols: slice) -> np.ndarray | None:
        """(h, w) bool, False where the input has no data; None if all valid."""


class ArraySource:
    """An RGB array already in memory; with ``nodata``, pixels whose every channel
    equals it (the fill around a scene) hold no data."""

    def __init__(self, rgb: np.ndarray, nodata: int | None = None):
        self.rgb = rgb
        self.shape = rgb.shape[:2]
        self.nodata = nodata

    def read(self, rows, cols):
        return self.rgb[rows, cols]

    def valid(self, rows, cols):
        if self.nodata is None:
            return None
        return ~fill_pixels(self.rgb[rows, cols], self.nodata)


@dataclass(frozen=True)
class Window:
    """Slices of one window: the ``core`` kept, the ``region`` post-processed, the ``read``."""

    core: tuple[slice, slice]
    region: tuple[slice, slice]
    read: tuple[slice, slice]

    @staticmethod
    def inner(outer: tuple[slice, slice], inner: tuple[slice, slice]):
        """``inner`` as slices into an array covering ``outer``."""
        return tuple(slice(i.start - o.start, i.stop - o.start) for o, i in zip(outer, inner))


def grid_step(gsd: float, working_gsd: float) -> int:
    """Smallest offset (input pixels) that is a whole number of working pixels."""
    return Fraction(gsd / working_gsd).limit_denominator(1000).denominator


def halos(model: RoadModel, gsd: float) -> tuple[int, int]:
    """(feature halo, post-processing halo) in input pixels."""
    working = float(model.card["spec"]["working_gsd"])
    # +2 working pixels: resampling reaches one pixel beyond each side.
    feat = math.ceil((receptive_radius(model.card["spec"]) + 2) * working / gsd)
    p = model.post
    post = math.ceil((p.bridge_long_m + 2 * p.trace_m) / gsd) if p.bridge else 0
    post = max(post, math.ceil(math.sqrt(max(p.min_area_m2, p.max_hole_m2)) / gsd))
    return feat, post


# Terms of memory_bound. Measured: 0.26 GiB after loading the shipped model
# and predicting a small image (2026-12-06); the rest is headroom.
_BASE_BYTES = 384 * 2**20
# Working-resolution float32 planes besides the feature buffer of both stages:
# the cached source channels (16), smoothings and Hessians, the FFT blocks and
# the responses in flight on each thread, the padded arrays of the morphology
# threads, the probability maps.
_SCRATCH_PLANES = 48
# Input-resolution bytes per read pixel: the RGB read (3), its float32 copy
# (12), and the probability and mask at input size (12).
_READ_BYTES = 27


def memory_bound(model: RoadModel, gsd: float, window: int = DEFAULT_WINDOW,
                 images_at_once: int = 1) -> int:
    """Bytes that predicting scenes of any size in ``window``-pixel cores may hold at peak.

    Each image in flight (``predict --threads``) holds one window at a time:
    its read (core plus both halos, see :func:`halos`) at input resolution,
    and at the working resolution the one feature buffer of both stages (the
    model's F image and C context features), plus scratch planes. The process
    with its libraries and models, and the FFT kernel spectra's cache at its
    cap, are shared. docs/SCENES.md states it, and
    ``benchmarks/bench_scene.py`` holds measured peaks to it.
    """
    from .features import context_names
    from .features.fftconv import SPECTRA_CACHE_BYTES
    from .features.spec import working_shape

    feat, post = halos(model, gsd)
    read = window + 2 * (feat + post)
    h, w = working_shape((read, read), gsd, float(model.card["spec"]["working_gsd"]))
    f, c = len(model.names), len(context_names(model.card["spec"]))
    planes = f + c + _SCRATCH_PLANES
    per_image = 4 * planes * h * w + _READ_BYTES * read * read
    return int(_BASE_BYTES + SPECTRA_CACHE_BYTES + images_at_once * per_image)


def windows(shape, core: int, feat_halo: int, post_halo: int, step: int = 1) -> Iterator[Window]:
    """Cover ``shape`` with windows; sizes and halos are rounded up to ``step``."""
    up = lambda n: -(-n // step) * step  # noqa: E731
    core, feat_halo, post_halo = up(max(core, step)), up(feat_halo), up(post_halo)
    h, w = shape
    for r0 in range(0, h, core):
        for c0 in range(0, w, core):
            core_s = (slice(r0, min(r0 + core, h)), slice(c0, min(c0 + core, w)))
            region = _grow(core_s, post_halo, shape)
            yield Window(core_s, region, _grow(region, feat_halo, shape))


def _grow(slices, halo: int, shape) -> tuple[slice, slice]:
    return tuple(slice(max(0, s.start - halo), min(n, s.stop + halo)) for s, n in zip(slices, shape))


def predict_windows(model: RoadModel, source: Source, backend: Backend, gsd: float,
                    sink: Callable[[tuple[slice, slice], np.ndarray], None],
                    window: int = DEFAULT_WINDOW, where="image",
                    on_region: Callable | None = None, timings: dict | None = None) -> int:
    """Predict ``source`` window by window, handing each core's mask to ``sink``.

    Parameters
    ----------
    model, backend, gsd
        As for :meth:`RoadModel.predict`; ``gsd`` is the input's metres per pixel.
    sink : callable(core_slices, mask)
        Receives each core's boolean mask.
    window : int
        Core side in input pixels; reads are larger by the halos.
    on_region : callable(window, region_mask), optional
        Receives each post-processed region (e.g. to trace road lines).

    Returns
    -------
    int
        The number of windows.
    """
    feat, post = halos(model, gsd)
    step = grid_step(gsd, float(model.card["spec"]["working_gsd"]))
    n = 0
    for win in windows(source.shape, window, feat, post, step):
        with _stage(timings, "decode"):
            rgb = np.ascontiguousarray(source.read(*win.read))
            valid = source.valid(*win.region)
        prob = model.probability(rgb, backend, gsd, where, timings)[win.inner(win.read, win.region)]
        with _stage(timings, "post-processing"):
            if valid is not None:
                prob = np.where(valid, prob, 0.0).astype(np.float32)
            mask = postprocess(prob, model.threshold_for(prob), model.post, gsd)
            if valid is not None:
                mask &= valid
        if on_region is not None:
            on_region(win, mask)
        sink(win.core, mask[win.inner(win.region, win.core)])
        n += 1
    return n


def predict_array(model: RoadModel, rgb: np.ndarray, backend: Backend, gsd: float,
                  window: int = DEFAULT_WINDOW, **kw) -> np.ndarray:
    """Whole-image mask of an in-memory RGB array, predicted window by window."""
    out = np.zeros(rgb.shape[:2], dtype=bool)

    def sink(core, mask):
        out[core] = mask

    predict_windows(model, ArraySource(rgb), backend, gsd, sink, window, **kw)
    return out
