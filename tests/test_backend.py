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
