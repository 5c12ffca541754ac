"""Training's validation: threshold choice and the warning for a model that cannot separate."""

import json
import shutil

import pytest

from roadfeat.cli import main
from roadfeat.synth import write_scenes
from roadfeat.train import choose_threshold


def test_choose_threshold_best_mean_and_ties_nearest_half():
    t, table = choose_threshold({"a": [0.1, 0.5, 0.2], "b": [0.3, 0.3, 0.2]},
                                thresholds=(0.3, 0.5, 0.7))
    assert t == 0.5 and table[0.5] == pytest.approx(0.4)
    t, _ = choose_threshold({"a": [0.4, 0.4, 0.2]}, thresholds=(0.3, 0.5, 0.7))
    assert t == 0.5
    t, _ = choose_threshold({"a": [0.2, 0.4, 0.4]}, thresholds=(0.1, 0.6, 0.9))
    assert t == 0.6


def test_learned_and_unlearnable_labels_differ_in_the_warning(trained, tmp_path, caplog):
    card = json.loads((trained / "model" / "card.json").read_text())
    assert card["validation"]["mean_predicted_road_share"] < 0.5
    assert "warning" not in card["validation"]
    # Masks of other scenes: road-shaped labels that the images do not show.
    write_scenes(tmp_path / "img", 6, seed=5, size=256, prefix="s")
    write_scenes(tmp_path / "other", 6, seed=6, size=256, prefix="s")
    for a, b in zip(sorted((tmp_path / "img").glob("*_mask.png")),
                    sorted((tmp_path / "other").glob("*_mask.png"))):
        shutil.copyfile(b, a)
    assert main(["extract", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "feat"),
                 "--device", "cpu", "--pixels-per-image", "3000", "--quiet"]) == 0
    with caplog.at_level("WARNING", logger="roadfeat"):
        assert main(["train", "--features", str(tmp_path / "feat"), "--out",
                     str(tmp_path / "model"), "--device", "cpu", "--threads", "2",
                     "--quiet"]) == 0
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    assert card["validation"]["mean_predicted_road_share"] > 0.5
    assert "do not separate road" in card["validation"]["warning"]
    assert any("do not separate road" in r.getMessage() for r in caplog.records)
