"""The demo: synthetic scenes -> extract -> train -> predict -> evaluate -> overlays."""

from __future__ import annotations

from pathlib import Path

from .backend import get_backend
from .evaluate import evaluate
from .extract import extract
from .features import default_spec
from .io import mask_path_for, read_image, read_mask, write_json_atomic
from .model import RoadModel
from .predict import predict_folder
from .report import write_overlay
from .synth import write_scenes
from .train import train


def run_demo(out: Path, n_train: int = 16, n_test: int = 6, seed: int = 0,
             device: str = "auto", quiet: bool = False) -> dict:
    """Run the whole pipeline on synthetic data under ``out``; return the evaluation."""
    out = Path(out)
    backend = get_backend(device)
    train_dir, test_dir = out / "train", out / "test"
    write_scenes(train_dir, n_train, seed=seed, prefix="train")
    test_ids = write_scenes(test_dir, n_test, seed=seed + 1000, prefix="test")
    extract(train_dir, out / "features", default_spec(), backend, quiet=quiet)
    train(out / "features", out / "model", backend, seed=seed, quiet=quiet)
    model = RoadModel.load(out / "model")
    pred_dir = out / "pred"
    predict_folder(model, test_dir, pred_dir, backend, quiet=quiet)
    # The truth masks sit beside the test images.
    result = evaluate(pred_dir, test_dir)
    for k in test_ids:
        image = test_dir / f"{k}_sat.jpg"
        rgb = read_image(image)
        pred = read_mask(pred_dir / f"{k}_mask.png", rgb.shape)
        write_overlay(out / "overlays" / f"{k}_overlay.png", rgb, pred,
                      read_mask(mask_path_for(image), rgb.shape))
    write_json_atomic(out / "evaluation.json", result)
    return result
