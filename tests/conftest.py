"""Shared fixtures: synthetic scenes made once per session, real data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from roadfeat.synth import write_scenes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def synth_dirs(tmp_path_factory):
    """Small synthetic train and test folders (256 px scenes)."""
    root = tmp_path_factory.mktemp("synth")
    write_scenes(root / "train", 8, seed=1, size=256, prefix="tr")
    write_scenes(root / "test", 3, seed=2, size=256, prefix="te")
    return root / "train", root / "test"


@pytest.fixture(scope="session")
def deepglobe_dir():
    d = SHARED / "deepglobe" / "train"
    if not d.is_dir():
        pytest.skip(f"real data not present at {d}")
    return d
