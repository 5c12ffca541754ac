"""Road masks to road-network lines and graphs.

The mask is thinned to its skeleton, which skan (the ``geo`` extra) splits
into paths between junctions and ends. Short spurs (a junction to an end,
shorter than ``spur_m``) are pruned, isolated bits shorter than that are
dropped, and each path is simplified (Douglas-Peucker) and carries its mean
road width from the distance transform.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.measure import approximate_polygon
from skimage.morphology import skeletonize

_ISOLATED, _ENDPOINT_TO_JUNCTION = 0, 1


@dataclass
class Line:
    """One road centre line: ``rows``/``cols`` in pixels, sizes in metres."""

    rows: np.ndarray
    cols: np.ndarray
    width_m: float
    length_m: float


def _summarize(sk):
    from skan import summarize

    # skan's own pandas calls warn on pandas 3; nothing a user can act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return summarize(sk, separator="_")


def _skeleton_paths(skel: np.ndarray, spur_px: float):
    from skan import Skeleton

    sk = Skeleton(skel)
    for _ in range(3):  # pruning a spur can leave a new one behind
        s = _summarize(sk)
        spurs = s.index[(s["branch_type"] == _ENDPOINT_TO_JUNCTION)
                        & (s["branch_distance"] < spur_px)].to_numpy()
        if len(spurs) == 0 or len(spurs) == sk.n_paths:
            break
        sk = sk.prune_paths(spurs)
    s = _summarize(sk)
    short_isolated = (s["branch_type"] == _ISOLATED) & (s["branch_distance"] < spur_px)
    return [sk.path_coordinates(i) for i in s.index[~short_isolated]]


def _runs_inside(coords: np.ndarray, keep) -> list[np.ndarray]:
    """Pieces of a path inside the ``keep`` box, each reaching one pixel past it."""
    if keep is None:
        return [coords]
    (r, c) = keep
    inside = ((coords[:, 0] >= r.start) & (coords[:, 0] < r.stop)
              & (coords[:, 1] >= c.start) & (coords[:, 1] < c.stop))
    runs, i, n = [], 0, len(coords)
    while i < n:
        if not inside[i]:
            i += 1
            continue
        j = i
        while j < n and inside[j]:
            j += 1
        # One pixel beyond each side, so lines of neighbouring windows meet.
        runs.append(coords[max(0, i - 1):min(n, j + 1)])
        i = j
    return runs


def trace_lines(mask: np.ndarray, gsd: float, spur_m: float = 10.0, tolerance_px: float = 1.0,
                keep: tuple[slice, slice] | None = None, offset=(0, 0)) -> list[Line]:
    """Centre lines of a boolean road mask.

    Parameters
    ----------
    mask : (H, W) bool array
    gsd : float
        Metres per pixel.
    spur_m : float
        Spurs (junction to end) and isolated pieces shorter than this are dropped.
    tolerance_px : float
        Douglas-Peucker tolerance for simplification.
    keep : (row slice, col slice), optional
        Keep only the parts of lines inside this box (a window's core).
    offset : (row, col)
        Added to the output coordinates (the window's origin in the scene).
    """
    if not mask.any():
        return []
    skel = skeletonize(mask)
    if np.count_nonzero(skel) < 2:
        return []
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2,
                                 cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    spur_px = spur_m / gsd
    lines = []
    for path in _skeleton_paths(skel, spur_px):
        for run in _runs_inside(path, keep):
            steps = np.hypot(*np.diff(run, axis=0).T)
            length = float(steps.sum())
            if length < 1.0:
                continue
            ri, ci = run[:, 0].astype(int), run[:, 1].astype(int)
            # A centre pixel d from the background lies in a road 2d - 1 pixels wide.
            width = max(1.0, 2.0 * float(dist[ri, ci].mean()) - 1.0) * gsd
            simple = approximate_polygon(run.astype(float), tolerance_px)
            lines.append(Line(simple[:, 0] + offset[0], simple[:, 1] + offset[1],
                              width, length * gsd))
    return lines


def lines_to_geojson(lines: list[Line], to_world, crs_name: str | None = None) -> dict:
    """A GeoJSON FeatureCollection of LineStrings.

    ``to_world(rows, cols) -> (xs, ys)`` maps pixels to output coordinates
    (see :func:`roadfeat.geo.pixel_to_world`). With a projected CRS the
    collection names it in a ``crs`` member, as GDAL reads it.
    """
    feats = []
    for line in lines:
        xs, ys = to_world(line.rows, line.cols)
        feats.append({"type": "Feature",
                      "geometry": {"type": "LineString",
                                   "coordinates": [[round(float(x), 3), round(float(y), 3)]
                                                   for x, y in zip(xs, ys)]},
                      "properties": {"width_m": round(line.width_m, 2),
                                     "length_m": round(line.length_m, 2)}})
    fc = {"type": "FeatureCollection", "features": feats}
    if crs_name:
        fc["crs"] = {"type": "name", "properties": {"name": crs_name}}
    return fc


def lines_to_graph(lines: list[Line], gsd: float):
    """A networkx graph: nodes at line ends (pixel position ``pos``), edges with
    ``length`` in metres and their ``rows``/``cols`` geometry."""
    import networkx as nx

    g = nx.Graph()
    for line in lines:
        a = (int(round(line.rows[0])), int(round(line.cols[0])))
        b = (int(round(line.rows[-1])), int(round(line.cols[-1])))
        if a == b:
            continue  # a closed loop adds no path between distinct places
        for n in (a, b):
            g.add_node(n, pos=n)
        length = float(np.hypot(np.diff(line.rows), np.diff(line.cols)).sum()) * gsd
        if not g.has_edge(a, b) or g.edges[a, b]["length"] > length:
            g.add_edge(a, b, length=length, rows=np.asarray(line.rows), cols=np.asarray(line.cols))
    return g


def mask_to_graph(mask: np.ndarray, gsd: float, spur_m: float = 10.0):
    """Road graph of a boolean mask (see :func:`trace_lines`, :func:`lines_to_graph`)."""
    return lines_to_graph(trace_lines(mask, gsd, spur_m), gsd)
