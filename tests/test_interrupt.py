"""kill -9 during extract, train and predict; the same command again finishes the job.

Each test runs the command once uninterrupted (the reference), then once in a
subprocess that is SIGKILLed as soon as its first durable output appears, then
again to completion, and compares the outputs byte for byte.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roadfeat.cli import main
from roadfeat.synth import write_scenes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

CLI = "import sys; from roadfeat.cli import main; sys.exit(main(sys.argv[1:]))"


def killed_run(args, first_output: Path, pattern: str, timeout: float = 120.0) -> None:
    """Start the CLI, SIGKILL it once ``first_output`` holds a ``pattern`` file."""
    proc = subprocess.Popen([sys.executable, "-c", CLI, *map(str, args), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not (first_output.is_dir() and any(first_output.glob(pattern))):
        assert proc.poll() is None, "the command ended before it wrote anything"
        assert time.monotonic() - t0 < timeout
        time.sleep(0.005)
    still_running = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert still_running, "the command finished before it could be killed"


def files(folder: Path, pattern: str) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.glob(pattern))}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    write_scenes(root / "img", 10, seed=5, size=320, prefix="k")
    return root / "img"


@pytest.fixture(scope="module")
def reference(scenes, tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    assert main(["extract", "--images", str(scenes), "--out", str(root / "feat"),
                 "--pixels-per-image", "3000", "--quiet"]) == 0
    assert main(["train", "--features", str(root / "feat"), "--out", str(root / "model"),
                 "--threads", "2", "--folds", "3", "--quiet"]) == 0
    assert main(["predict", "--model", str(root / "model"), "--images", str(scenes),
                 "--out", str(root / "pred"), "--quiet"]) == 0
    return root


def test_extract_killed_then_rerun_equals_uninterrupted(scenes, reference, tmp_path):
    args = ["extract", "--images", scenes, "--out", tmp_path / "feat", "--pixels-per-image", 3000]
    killed_run(args, tmp_path / "feat" / "shards", "*.npz")
    assert len(files(tmp_path / "feat" / "shards", "*.npz")) < 10
    assert main([*map(str, args), "--quiet"]) == 0
    assert files(tmp_path / "feat" / "shards", "*.npz") == \
        files(reference / "feat" / "shards", "*.npz")


def test_train_killed_then_rerun_equals_uninterrupted(reference, tmp_path):
    args = ["train", "--features", reference / "feat", "--out", tmp_path / "model",
            "--threads", 2, "--folds", 3]
    killed_run(args, tmp_path / "model" / ".folds", "stage1-fold-*.npz")
    assert not (tmp_path / "model" / "model.txt").exists()
    assert main([*map(str, args), "--quiet"]) == 0
    assert files(tmp_path / "model", "*.txt") == files(reference / "model", "*.txt")
    assert files(tmp_path / "model", "card.json") == files(reference / "model", "card.json")
    assert (tmp_path / "model" / "card.json").exists()
    assert not (tmp_path / "model" / ".folds").exists()


def test_predict_killed_then_rerun_equals_uninterrupted(scenes, reference, tmp_path):
    args = ["predict", "--model", reference / "model", "--images", scenes, "--out", tmp_path / "p"]
    killed_run(args, tmp_path / "p", "*_mask.png")
    assert len(files(tmp_path / "p", "*_mask.png")) < 10
    assert main([*map(str, args), "--quiet"]) == 0
    assert files(tmp_path / "p", "*_mask.png") == files(reference / "pred", "*_mask.png")
