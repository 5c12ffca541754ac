"""Synthetic DeepGlobe-like scenes, so tests and the demo need no download.

Each scene has textured fields, straight and curved roads of several widths
and surfaces with junctions and dead ends, buildings with shadows, trees
(some over roads: the mask still marks the road, as DeepGlobe's does),
cloud shadows and JPEG compression. Scenes are drawn at a nominal 0.5 m per
pixel.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .io import write_bytes_atomic, write_mask

FIELD_COLOURS = np.array([[70, 110, 50], [95, 125, 60], [120, 140, 70], [140, 120, 80],
                          [160, 140, 100], [110, 95, 70], [150, 150, 90], [85, 100, 60]],
                         np.float32)
ROAD_COLOURS = np.array([[105, 105, 110], [135, 130, 125], [170, 150, 120], [190, 185, 175],
                         [150, 125, 95]], np.float32)
ROOF_COLOURS = np.array([[170, 80, 60], [200, 200, 200], [120, 120, 130], [150, 140, 120]],
                        np.float32)


def _smooth_noise(rng, shape, scale: float) -> np.ndarray:
    n = rng.standard_normal(shape).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), scale)
    return n / (n.std() + 1e-6)


def _fields(rng, size: int) -> np.ndarray:
    img = np.zeros((size, size, 3), np.float32)
    img[:] = FIELD_COLOURS[rng.integers(len(FIELD_COLOURS))]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for _ in range(rng.integers(6, 14)):
        poly = rng.uniform(-0.2, 1.2, (rng.integers(3, 6), 2)) * size
        hull = cv2.convexHull(poly.astype(np.int32))
        m = np.zeros((size, size), np.uint8)
        cv2.fillPoly(m, [hull], 1)
        colour = FIELD_COLOURS[rng.integers(len(FIELD_COLOURS))] + rng.normal(0, 8, 3)
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
        rows = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period)
        tex = colour[None, None] * (1 + rng.uniform(0, 0.08) * rows[..., None])
        img[m > 0] = tex[m > 0]
    img += 10 * _smooth_noise(rng, (size, size), 6)[..., None]
    img += rng.normal(0, 5, img.shape).astype(np.float32)
    return img


def _road_path(rng, size: int, anchors: list) -> np.ndarray:
    """A straight or curved polyline across the scene, or branching from ``anchors``."""
    if anchors and rng.random() < 0.45:
        p0 = anchors[rng.integers(len(anchors))]
    else:
        side = rng.integers(4)
        t = rng.uniform(0, size)
        p0 = np.array([[0, t], [size, t], [t, 0], [t, size]][side], np.float64)
    # Head for a point inside the scene, so the road crosses it.
    target = rng.uniform(0.2, 0.8, 2) * size
    ang = np.arctan2(*(target - p0)[::-1]) + rng.normal(0, 0.3)
    length = rng.uniform(0.5, 1.5) * size
    p2 = p0 + length * np.array([np.cos(ang), np.sin(ang)])
    if rng.random() < 0.5:  # curved: quadratic Bezier
        mid = (p0 + p2) / 2 + rng.normal(0, 0.25 * length, 2)
        t = np.linspace(0, 1, 60)[:, None]
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * mid + t ** 2 * p2
    else:
        pts = np.stack([p0, p2])
    return pts


def make_scene(rng: np.random.Generator, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic scene: (RGB uint8 (size, size, 3), road mask bool)."""
    img = _fields(rng, size)
    mask = np.zeros((size, size), np.uint8)
    anchors: list = []
    for _ in range(rng.integers(2, 6)):
        pts = _road_path(rng, size, anchors)
        width = int(rng.integers(5, 16))
        colour = ROAD_COLOURS[rng.integers(len(ROAD_COLOURS))] + rng.normal(0, 6, 3)
        ipts = np.round(pts * 16).astype(np.int32)[None]
        layer = np.zeros((size, size), np.uint8)
        cv2.polylines(layer, ipts, False, 1, width, cv2.LINE_AA, shift=4)
        road = layer > 0
        shade = 1 + 0.06 * _smooth_noise(rng, (size, size), 3)
        img[road] = colour * shade[road, None]
        mask |= layer
        anchors.extend(pts[rng.integers(len(pts), size=2)])
    mask = mask > 0
    # Buildings near roads, with shadows.
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)
    near = np.argwhere((dist > 10) & (dist < 40))
    for _ in range(int(rng.integers(0, 25)) if len(near) else 0):
        cy, cx = near[rng.integers(len(near))]
        w, h = rng.integers(8, 24, 2)
        box = cv2.boxPoints(((float(cx), float(cy)), (float(w), float(h)), float(rng.uniform(0, 90))))
        shadow = (box + np.array([4, 4])).astype(np.int32)
        sm = np.zeros((size, size), np.uint8)
        cv2.fillPoly(sm, [shadow], 1)
        img[sm > 0] *= 0.55
        roof = ROOF_COLOURS[rng.integers(len(ROOF_COLOURS))] + rng.normal(0, 8, 3)
        cv2.fillPoly(img, [box.astype(np.int32)], roof.tolist())
    # Trees, clustered, some over roads.
    for _ in range(int(rng.integers(20, 120))):
        cy, cx = rng.integers(0, size, 2)
        r = int(rng.integers(3, 9))
        cv2.circle(img, (int(cx + 3), int(cy + 3)), r, (25, 35, 25), -1)
        g = np.array([40, 75, 35], np.float32) + rng.normal(0, 10, 3)
        cv2.circle(img, (int(cx), int(cy)), r, g.tolist(), -1)
    # Cloud shadows.
    img *= (1 - 0.25 * np.clip(_smooth_noise(rng, (size, size), 40), 0, None))[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    rgb = np.clip(img, 0, 255).astype(np.uint8)
    return rgb, mask


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def write_scenes(out_dir, n: int, seed: int = 0, size: int = 512, prefix: str = "synth") -> list[str]:
    """Write ``n`` scenes as ``<prefix>-NNNN_sat.jpg`` / ``_mask.png``; return their ids."""
    out_dir = Path(out_dir)
    ids = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        rgb, mask = make_scene(rng, size)
        image_id = f"{prefix}-{seed:03d}-{i:04d}"
        write_bytes_atomic(out_dir / f"{image_id}_sat.jpg", jpeg_bytes(rgb, int(rng.integers(60, 92))))
        write_mask(out_dir / f"{image_id}_mask.png", mask)
        ids.append(image_id)
    return ids
