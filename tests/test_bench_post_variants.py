"""The post-processing variants of benchmarks/bench_post_variants.py."""

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).parents[1] / "benchmarks" / "bench_post_variants.py"
_SPEC = importlib.util.spec_from_file_location("bench_post_variants", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _road_with_a_square():
    mask = np.zeros((80, 120), bool)
    mask[38:43, 5:115] = True  # a road 5 pixels wide
    mask[20:60, 50:70] = True  # a 40 x 20 blob on it (a car park)
    return mask


def test_cap_width_keeps_the_road_and_trims_the_blob():
    mask = _road_with_a_square()
    capped = bench.cap_width(mask, 2.0)
    assert not (capped & ~mask).any()  # only removes
    assert capped[38:43, 5:45].all() and capped[38:43, 75:115].all()
    assert capped[20:60, 50:70].sum() < 0.7 * mask[20:60, 50:70].sum()


def test_redraw_gives_the_road_its_median_width():
    mask = np.zeros((60, 100), bool)
    mask[28:33, 10:90] = True
    skel, width = bench.skeleton_and_median_width(mask)
    assert width == 5 and skel[30, 20:80].all()
    out = bench.redraw_at_median_width(mask)
    inter, union = (out & mask).sum(), (out | mask).sum()
    assert inter / union > 0.85
    assert not bench.redraw_at_median_width(np.zeros((5, 5), bool)).any()


def test_faint_pieces_are_dropped_and_confident_ones_kept():
    mask = np.zeros((40, 40), bool)
    mask[5:10, 5:35] = True
    mask[25:30, 5:35] = True
    prob = np.where(mask, 0.3, 0.0).astype(np.float32)
    prob[5:10, 5:35] = 0.8
    out = bench.drop_faint_components(mask, prob, 0.5)
    assert out[5:10, 5:35].all() and not out[25:30].any()


def test_no_maps_is_a_one_line_error(tmp_path, capsys):
    assert bench.main(["--maps", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err


def test_a_map_without_its_mask_is_a_one_line_error(tmp_path, capsys):
    np.savez_compressed(tmp_path / "7.npz", prob=np.zeros((4, 4), np.float32), threshold=0.5)
    assert bench.main(["--maps", str(tmp_path), "--val", str(tmp_path / "val")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "7_mask.png" in err


def test_a_broken_map_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "7.npz").write_bytes(b"not a zip")
    assert bench.main(["--maps", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "7.npz" in err
