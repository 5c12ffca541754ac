import numpy as np
import pytest

from roadfeat.backend import backend_of, get_backend, gpu_available, to_host


def test_cpu_backend_and_array_dispatch():
    bk = get_backend("cpu")
    assert bk.name == "cpu" and bk.xp is np
    assert backend_of(np.zeros(3)) is bk
    assert isinstance(to_host(np.ones(2)), np.ndarray)


def test_auto_falls_back_without_a_gpu(caplog):
    ok, why = gpu_available()
    if ok:
        pytest.skip("a GPU is present; fallback not exercised")
    with caplog.at_level("INFO", logger="roadfeat"):
        bk = get_backend("auto")
    assert bk.name == "cpu"
    assert any("backend: CPU" in r.message for r in caplog.records)


def test_forcing_gpu_without_one_is_a_clear_error():
    if gpu_available()[0]:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no working GPU"):
        get_backend("gpu")


def test_bad_device_name():
    with pytest.raises(ValueError, match="auto, cpu or gpu"):
        get_backend("tpu")


@pytest.mark.skipif(gpu_available()[0], reason="a GPU works here; the benchmark would run")
def test_gpu_benchmark_says_no_gpu_in_one_line_and_exits_2(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_gpu.py"), "--model",
                           str(tmp_path), "--images", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench_gpu: no working GPU here")


def test_the_gpu_gaussian_recipe_equals_opencv_on_the_cpu():
    # The GPU filters with OpenCV's kernel through convolve1d (reflect); SciPy's
    # convolve1d is what cupyx.scipy.ndimage mirrors, so check the recipe here.
    import scipy.ndimage as ndi

    from roadfeat.backend import gaussian_kernel

    img = np.random.default_rng(0).random((64, 80)).astype(np.float32)
    cpu = get_backend("cpu")
    for sigma in (1, 2.5, 8):
        k = gaussian_kernel(sigma)
        assert k.dtype == np.float32 and abs(float(k.sum()) - 1) < 1e-5
        recipe = ndi.convolve1d(ndi.convolve1d(img, k, axis=0, mode="reflect"), k, axis=1,
                                mode="reflect")
        np.testing.assert_allclose(recipe, cpu.gaussian(img, sigma), atol=2e-6)


def test_pmap_yields_every_result_in_order_and_features_equal_serial(monkeypatch):
    import roadfeat.backend as backend
    from roadfeat.features import compute_features
    from roadfeat.features.spec import DEFAULT_SPEC
    from roadfeat.synth import make_scene

    bk = get_backend("cpu")
    assert list(bk.pmap(lambda x: x * x, range(11))) == [x * x for x in range(11)]
    rgb, _ = make_scene(np.random.default_rng(5), 128)
    threaded = compute_features(rgb, DEFAULT_SPEC, bk, 0.5)
    monkeypatch.setattr(backend, "cpu_threads", lambda: 1)
    serial = compute_features(rgb, DEFAULT_SPEC, bk, 0.5)
    np.testing.assert_array_equal(threaded, serial)


def _morph_many_twin(img, footprints, take_max, per_fp=False):
    """The GPU's ``morph_many`` kernel in NumPy: offsets, clamped indices, min or max."""
    from roadfeat.backend import footprint_offsets

    dy, dx, start = footprint_offsets(footprints)
    h, w = img.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for f in range(len(footprints)):
        src = img[f] if per_fp else img
        vals = [src[np.clip(yy + dy[k], 0, h - 1), np.clip(xx + dx[k], 0, w - 1)]
                for k in range(start[f], start[f + 1])]
        out.append(np.max(vals, 0) if take_max else np.min(vals, 0))
    return np.stack(out)


def test_the_gpu_line_morphology_recipe_equals_opencv_on_the_cpu():
    """The kernel's offsets and clamped borders give OpenCV's openings and closings."""
    from roadfeat.features.morphology import _padded, line_closings, line_footprint, line_openings

    img = np.random.default_rng(2).random((40, 33)).astype(np.float32)
    for length in (5, 11):
        fps = [line_footprint(length, np.pi * i / 8) for i in range(8)]
        padded, inner = _padded(img, 2 * (length // 2))
        for close, ref in ((False, line_openings), (True, line_closings)):
            first = _morph_many_twin(padded, fps, take_max=close)
            second = _morph_many_twin(first, fps, take_max=not close, per_fp=True)
            sup, inf = ref(img, length, 8)
            np.testing.assert_array_equal(second.max(0)[inner], sup)
            np.testing.assert_array_equal(second.min(0)[inner], inf)


@pytest.mark.parametrize("kernel, works", [("raises", False), ("wrong", False), ("right", True)])
def test_the_gpu_line_morphology_kernel_is_checked_before_use(monkeypatch, caplog, kernel,
                                                             works):
    """A kernel that fails or disagrees with cupyx is replaced, with one log line."""
    import sys
    import types

    from roadfeat import backend

    cpu = get_backend("cpu")

    def fake_kernel(padded, footprints, close):
        if kernel == "raises":
            raise RuntimeError("nvrtc: compilation failed")
        sup, inf = cpu.morph_range(padded, footprints, close)
        return (sup + 1, inf) if kernel == "wrong" else (sup, inf)

    # NumPy stands in for CuPy, and the CPU's streamed recipe for cupyx's.
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(asarray=np.asarray))
    monkeypatch.setattr(backend, "_kernel_morph_range", fake_kernel)
    monkeypatch.setattr(backend, "_streamed_gpu_morph_range", lambda: cpu.morph_range)
    backend._morph_kernel_works.cache_clear()
    try:
        with caplog.at_level("INFO", logger="roadfeat"):
            assert backend._morph_kernel_works() is works
    finally:
        backend._morph_kernel_works.cache_clear()
    logged = [r.getMessage() for r in caplog.records if "one-launch kernel" in r.getMessage()]
    assert len(logged) == (0 if works else 1)
