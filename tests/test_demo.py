"""The README's demo command, at a small size: every stage runs and writes what it says."""

from __future__ import annotations

import json

from PIL import Image

from roadfeat.cli import main


def test_demo_writes_scores_and_overlays(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-train", "4", "--n-test", "2",
                 "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "evaluation.json").read_text())
    assert result["summary"]["n_images"] == 2
    assert f"mean per-image IoU {result['summary']['mean_iou']:.4f}" in printed
    # Four training scenes are few, but the roads of the synthetic scenes are easy.
    assert result["summary"]["mean_iou"] > 0.3
    assert (out / "model" / "card.json").exists()
    overlays = sorted((out / "overlays").glob("*_overlay.png"))
    assert len(overlays) == 2
    for p in overlays:
        sat = out / "test" / p.name.replace("_overlay.png", "_sat.jpg")
        with Image.open(p) as im, Image.open(sat) as image:
            # image | truth | prediction, side by side, 8-pixel gaps between
            assert im.size == (3 * image.width + 16, image.height)
