"""Pictures for people: prediction overlays and the feature-importance plot."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .io import write_png

# Overlay colours: true positive, false positive (predicted, not in truth), false negative.
TP, FP, FN = (40, 220, 40), (235, 40, 40), (40, 120, 255)


def overlay(rgb: np.ndarray, pred: np.ndarray, truth: np.ndarray | None = None,
            alpha: float = 0.6) -> np.ndarray:
    """Image | truth over image | prediction over image, side by side.

    With truth, the prediction panel colours hits green, false alarms red and
    misses blue; without, predicted road is green.
    """
    base = rgb.astype(np.float32)

    def paint(mask, colour, img):
        out = img.copy()
        out[mask] = (1 - alpha) * out[mask] + alpha * np.array(colour, np.float32)
        return out

    panels = [base]
    if truth is not None:
        panels.append(paint(truth, (255, 255, 0), base))
        p = paint(pred & truth, TP, base)
        p = paint(pred & ~truth, FP, p)
        p = paint(~pred & truth, FN, p)
    else:
        p = paint(pred, TP, base)
    panels.append(p)
    gap = np.full((rgb.shape[0], 8, 3), 255, np.float32)
    row = [panels[0]]
    for q in panels[1:]:
        row += [gap, q]
    return np.clip(np.concatenate(row, axis=1), 0, 255).astype(np.uint8)


def write_overlay(path, rgb, pred, truth=None, max_side: int = 512) -> None:
    img = overlay(rgb, pred, truth)
    scale = max_side / max(rgb.shape[:2])
    if scale < 1:
        im = Image.fromarray(img)
        im = im.resize((int(im.width * scale), int(im.height * scale)), Image.BILINEAR)
        img = np.asarray(im)
    write_png(path, img)


def importance_plot(gains: dict, path, top: int = 30, title: str = "") -> None:
    """Horizontal bar chart of the ``top`` features by total gain."""
    items = sorted(gains.items(), key=lambda kv: -kv[1])[:top]
    total = sum(gains.values()) or 1.0
    row_h, label_w, bar_w = 18, 230, 420
    h = row_h * (len(items) + 2)
    im = Image.new("RGB", (label_w + bar_w + 90, h), "white")
    d = ImageDraw.Draw(im)
    d.text((8, 4), f"feature importance{', ' + title if title else ''} (share of total gain), "
                   f"top {len(items)}", fill="black")
    vmax = items[0][1] if items else 1.0
    for i, (name, g) in enumerate(items):
        y = row_h * (i + 1) + 6
        d.text((8, y), name, fill="black")
        w = int(bar_w * g / vmax) if vmax > 0 else 0
        d.rectangle([label_w, y + 2, label_w + w, y + row_h - 4], fill=(60, 110, 200))
        d.text((label_w + w + 6, y), f"{100 * g / total:.1f}%", fill="black")
    write_png(path, np.asarray(im))
