"""Shared fixtures: synthetic scenes and a model trained on them, made once per session."""

from __future__ import annotations

import os

import pytest

from roadfeat.cli import main
from roadfeat.synth import write_scenes


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Compiled trees of the shipped model go to a cache of this session, not the user's."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def synth_dirs(tmp_path_factory):
    """Small synthetic train and test folders (256 px scenes)."""
    root = tmp_path_factory.mktemp("synth")
    write_scenes(root / "train", 8, seed=1, size=256, prefix="tr")
    write_scenes(root / "test", 3, seed=2, size=256, prefix="te")
    return root / "train", root / "test"


@pytest.fixture(scope="session")
def trained(synth_dirs, tmp_path_factory):
    """A folder with ``feat`` and ``model`` made by the CLI from the synthetic train scenes."""
    train_dir, _ = synth_dirs
    root = tmp_path_factory.mktemp("cli")
    assert main(["extract", "--images", str(train_dir), "--out", str(root / "feat"),
                 "--device", "cpu", "--pixels-per-image", "4000", "--quiet"]) == 0
    assert main(["train", "--features", str(root / "feat"), "--out", str(root / "model"),
                 "--device", "cpu", "--threads", "2", "--quiet"]) == 0
    return root


@pytest.fixture(scope="session")
def plain_model(trained):
    """The trained model without per-image self-training, saved beside it.

    Self-training, like the per-image threshold, adapts to each window's own
    pixels, so the tests that compare windows with the whole image use this.
    """
    from roadfeat.model import RoadModel

    RoadModel.load(trained / "model").without_adapt().save(trained / "plain")
    return trained / "plain"
