"""From road probabilities to a clean binary mask.

Threshold, then remove small components, fill small holes, and bridge gaps
between road ends that point at each other (after the SpaceNet-3 winning
post-processing: ends closer than ``bridge_short_m`` are joined whenever they
belong to different pieces; ends up to ``bridge_long_m`` apart only when both
point at each other within ``bridge_angle_deg``). Bridges are drawn at the
local road width, because the score is IoU of areas, not of centre lines.

Sizes are in metres and converted with the image's ground sample distance,
so the same parameters serve 0.5 m and 1 m imagery. Post-processing runs on
the host: it is sparse, geometric work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize


@dataclass(frozen=True)
class PostParams:
    """Post-processing parameters (lengths in metres, areas in m^2)."""

    min_area_m2: float = 60.0
    max_hole_m2: float = 30.0
    bridge: bool = True
    bridge_short_m: float = 8.0
    bridge_long_m: float = 40.0
    bridge_angle_deg: float = 25.0
    trace_m: float = 6.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PostParams":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def remove_small_components(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Drop 8-connected components smaller than ``min_area`` pixels."""
    if min_area <= 1 or not mask.any():
        return mask.copy()
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[lab]


def fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill background holes of at most ``max_area`` pixels not touching the border."""
    if max_area <= 0:
        return mask.copy()
    n, lab, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    inner = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    fill = inner & (stats[:, cv2.CC_STAT_AREA] <= max_area)
    fill[0] = False
    return mask | fill[lab]


_NBR = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.float32)
_STEPS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def skeleton_endpoints(skel: np.ndarray) -> np.ndarray:
    """(k, 2) row/col coordinates of skeleton pixels with exactly one neighbour."""
    nb = cv2.filter2D(skel.astype(np.float32), -1, _NBR, borderType=cv2.BORDER_CONSTANT)
    return np.argwhere(skel & (nb == 1))


def _trace(skel: np.ndarray, start, steps: int) -> list[tuple[int, int]]:
    """Walk ``steps`` pixels along the skeleton from an end point."""
    h, w = skel.shape
    path = [tuple(start)]
    seen = {path[0]}
    r, c = path[0]
    for _ in range(steps):
        nxt = [(r + dr, c + dc) for dr, dc in _STEPS
               if 0 <= r + dr < h and 0 <= c + dc < w and skel[r + dr, c + dc]
               and (r + dr, c + dc) not in seen]
        if len(nxt) != 1:  # junction or end of the line
            break
        r, c = nxt[0]
        path.append((r, c))
        seen.add((r, c))
    return path


def find_bridges(mask: np.ndarray, short_px: float, long_px: float, angle_deg: float,
                 trace_px: int = 12) -> list[tuple[tuple[int, int], tuple[int, int], int]]:
    """Gaps to bridge: ``[((r0, c0), (r1, c1), width_px), ...]``.

    Only end points of *different* connected pieces are joined, each end at
    most once, the closest pairs first.
    """
    if not mask.any():
        return []
    skel = skeletonize(mask)
    ends = skeleton_endpoints(skel)
    if len(ends) < 2:
        return []
    _, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    # A zero border keeps distances finite when the mask fills the image.
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    dirs, widths = [], []
    for e in ends:
        path = _trace(skel, e, trace_px)
        back = np.array(path[-1], float)
        d = e - back
        n = np.hypot(*d)
        dirs.append(d / n if n > 0 else np.zeros(2))
        widths.append(2.0 * max(dist[p] for p in path))
    dirs = np.array(dirs)
    comp = lab[ends[:, 0], ends[:, 1]]
    pairs = sorted(cKDTree(ends).query_pairs(long_px, output_type="ndarray").tolist(),
                   key=lambda p: np.hypot(*(ends[p[0]] - ends[p[1]])))
    cos_max = np.cos(np.deg2rad(angle_deg))
    used = set()
    out = []
    for i, j in pairs:
        if i in used or j in used or comp[i] == comp[j]:
            continue
        v = (ends[j] - ends[i]).astype(float)
        d = np.hypot(*v)
        if d > short_px:
            u = v / d
            # Both ends must point at each other.
            if dirs[i] @ u < cos_max or dirs[j] @ -u < cos_max:
                continue
        used.update((i, j))
        w = int(np.clip(round(min(widths[i], widths[j])), 1, max(1, 2 * short_px)))
        out.append((tuple(int(x) for x in ends[i]), tuple(int(x) for x in ends[j]), w))
    return out


def bridge_gaps(mask: np.ndarray, short_px: float, long_px: float, angle_deg: float,
                trace_px: int = 12) -> np.ndarray:
    """Mask with gaps between facing road ends drawn in at road width.

    Bridging only adds pixels: every road pixel of ``mask`` stays road.
    """
    out = mask.astype(np.uint8).copy()
    for (r0, c0), (r1, c1), w in find_bridges(mask, short_px, long_px, angle_deg, trace_px):
        cv2.line(out, (c0, r0), (c1, r1), 1, thickness=w, lineType=cv2.LINE_8)
    return out.astype(bool) | mask


def postprocess(prob: np.ndarray, threshold: float, params: PostParams,
                gsd: float = 0.5) -> np.ndarray:
    """Binary road mask from a probability map.

    Parameters
    ----------
    prob : (H, W) float array
        Road probability.
    threshold : float
    params : PostParams
    gsd : float
        Metres per pixel of ``prob``.
    """
    px2 = 1.0 / (gsd * gsd)
    mask = np.asarray(prob) >= threshold
    mask = remove_small_components(mask, int(round(params.min_area_m2 * px2)))
    mask = fill_small_holes(mask, int(round(params.max_hole_m2 * px2)))
    if params.bridge:
        mask = bridge_gaps(mask, params.bridge_short_m / gsd, params.bridge_long_m / gsd,
                           params.bridge_angle_deg, max(2, int(round(params.trace_m / gsd))))
    return mask
