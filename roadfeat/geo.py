"""GeoTIFF scenes: windowed reading, georeferenced masks, ground sample distance.

Needs the ``geo`` extra (rasterio). Reading and writing go window by window,
so a scene is never held in memory whole.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import numpy as np

from .io import InputError, atomic_path

GEO_EXTS = (".tif", ".tiff")
_EARTH_M_PER_DEG = 111_320.0


def available() -> bool:
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


def env():
    """rasterio settings for windowed work: GDAL's block cache capped at 64 MB
    (its default, 5 % of RAM, would grow with the scene)."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=64)


def is_geotiff(path) -> bool:
    """True for a georeferenced one-page ``.tif``/``.tiff`` when rasterio is available.

    Georeferenced means a CRS or a transform other than the identity. Other
    TIFFs take the plain-image path (a PNG mask), as any image does. A file
    rasterio cannot open counts as one, so that its reader names the fault.
    """
    path = Path(path)
    if path.suffix.lower() not in GEO_EXTS or not available():
        return False
    import rasterio

    try:
        with env(), _quiet_warnings(), rasterio.open(path) as ds:
            georef = ds.crs is not None or not ds.transform.is_identity
            return georef and not ds.subdatasets  # several pages are listed as subdatasets
    except Exception:
        return True


class RasterSource:
    """A raster read window by window (see :class:`roadfeat.scene.Source`).

    Bands 1-3 are RGB (a single band is repeated as grey); the dataset's
    mask (nodata value, alpha band or internal mask) marks the valid pixels.
    Only 8-bit rasters are read, as for other images.
    """

    def __init__(self, path):
        import rasterio

        self.path = Path(path)
        try:
            with _quiet_warnings():
                self.ds = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError as exc:
            msg = str(exc).splitlines()[0][:160] if str(exc) else "unreadable"
            raise InputError(self.path, f"not a readable raster ({msg})") from None
        ds = self.ds
        problem = None
        if ds.count not in (1, 3, 4):
            problem = f"{ds.count} bands: expected 1 (grey), 3 (RGB) or 4 (RGBA)"
        elif ds.dtypes[0] != "uint8":
            problem = (f"{ds.dtypes[0]} raster: only 8-bit rasters are supported; "
                       "convert to 8-bit RGB first")
        if problem:
            ds.close()
            raise InputError(self.path, problem)
        self.shape = (ds.height, ds.width)
        self.bands = [1, 1, 1] if ds.count == 1 else [1, 2, 3]
        self._all_valid = all(f == rasterio.enums.MaskFlags.all_valid for f in ds.mask_flag_enums[0])

    def _window(self, rows, cols):
        from rasterio.windows import Window

        return Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)

    def read(self, rows, cols) -> np.ndarray:
        try:
            arr = self.ds.read(self.bands, window=self._window(rows, cols))
        except Exception as exc:
            raise InputError(self.path, f"corrupt raster data ({str(exc).splitlines()[0][:120]})") from None
        return np.ascontiguousarray(np.moveaxis(arr, 0, -1))

    def valid(self, rows, cols):
        if self._all_valid:
            return None
        return self.ds.read_masks(1, window=self._window(rows, cols)) > 0

    @property
    def gsd(self) -> float | None:
        """Metres per pixel from the georeferencing, or None without it."""
        ds = self.ds
        if ds.crs is None or ds.transform.is_identity:
            return None
        px = math.sqrt(abs(ds.transform.a * ds.transform.e - ds.transform.b * ds.transform.d))
        if ds.crs.is_geographic:
            lat = (ds.bounds.top + ds.bounds.bottom) / 2
            return px * _EARTH_M_PER_DEG * math.sqrt(math.cos(math.radians(lat)))
        return px * ds.crs.linear_units_factor[1]

    @property
    def georef(self) -> dict:
        """CRS and transform for outputs on this grid (None for a plain TIFF)."""
        gsd = self.gsd
        return {"crs": self.ds.crs if gsd else None, "transform": self.ds.transform if gsd else None}

    def close(self):
        self.ds.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def _quiet_warnings():
    import rasterio.errors

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        yield


@contextlib.contextmanager
def geotiff_mask_writer(path, shape, georef: dict, block: int = 256):
    """Yield ``write(core_slices, mask)`` into a tiled, compressed, 1-band GeoTIFF.

    Values are 0/255; the file appears at ``path`` only when complete.
    """
    import rasterio
    from rasterio.windows import Window

    h, w = shape
    profile = dict(driver="GTiff", height=h, width=w, count=1, dtype="uint8", tiled=True,
                   blockxsize=block, blockysize=block, compress="deflate", predictor=2,
                   crs=georef.get("crs"), transform=georef.get("transform"))
    if profile["transform"] is None:
        del profile["transform"], profile["crs"]
    with atomic_path(path) as tmp, _quiet_warnings(), rasterio.open(tmp, "w", **profile) as ds:
        def write(core, mask):
            r, c = core
            win = Window(c.start, r.start, c.stop - c.start, r.stop - r.start)
            ds.write(np.where(mask, 255, 0).astype(np.uint8)[None], window=win)

        yield write


def pixel_to_world(georef: dict | None):
    """Map (row, col) arrays to (x, y) of pixel centres: in the CRS, or in pixels
    (x right, y down, as GDAL counts them) without one."""
    t = (georef or {}).get("transform")
    a, b, x0, d, e, y0 = (t.a, t.b, t.c, t.d, t.e, t.f) if t is not None else (1, 0, 0, 0, 1, 0)

    def f(rows, cols):
        c, r = np.asarray(cols, float) + 0.5, np.asarray(rows, float) + 0.5
        return a * c + b * r + x0, d * c + e * r + y0

    return f
