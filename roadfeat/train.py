"""Training stage: sampled feature rows -> LightGBM model + model card.

Validation uses whole held-out images, never random pixels of the training
images: the number of boosting rounds is chosen by early stopping on their
rows, and the probability threshold by the mean per-image IoU of their
post-processed masks (the challenge's score). The final model is then refit
on all images with that number of rounds.
"""

from __future__ import annotations

import inspect
import logging
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .backend import Backend
from .extract import MANIFEST, load_rows
from .features import SpecError, validate_spec
from .io import InputError, read_image, read_json, read_mask
from .metrics import confusion
from .model import RoadModel
from .postprocess import PostParams, postprocess
from .progress import progress

log = logging.getLogger("roadfeat")

THRESHOLDS = tuple(np.round(np.arange(0.20, 0.86, 0.05), 2))


@dataclass(frozen=True)
class GBMParams:
    """LightGBM settings (scikit-learn API names)."""

    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 40


def split_images(ids: list[str], val_fraction: float, seed: int) -> tuple[list, list]:
    """Hold out whole images for validation (seeded; at least one when n >= 2)."""
    ids = sorted(ids)
    if len(ids) < 2 or val_fraction <= 0:
        return ids, []
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_val = min(len(ids) - 1, max(1, int(round(val_fraction * len(ids)))))
    return sorted(order[n_val:]), sorted(order[:n_val])


def _classifier(params: GBMParams, seed: int, n_estimators: int, learner: str, threads: int):
    import lightgbm as lgb

    return lgb.LGBMClassifier(
        objective="binary", n_estimators=n_estimators, learning_rate=params.learning_rate,
        num_leaves=params.num_leaves, min_child_samples=params.min_child_samples,
        subsample=params.subsample, subsample_freq=1, colsample_bytree=params.colsample_bytree,
        reg_lambda=params.reg_lambda, random_state=seed, n_jobs=threads, deterministic=True,
        force_row_wise=True, verbose=-1, device_type=learner,
    )


def choose_learner(backend: Backend) -> str:
    """``gpu`` when LightGBM's GPU learner works here, else ``cpu`` (with a log line)."""
    if backend.name != "gpu":
        return "cpu"
    try:
        rng = np.random.default_rng(0)
        X = rng.random((256, 4))
        _classifier(GBMParams(), 0, 2, "gpu", 1).fit(X, (X[:, 0] > 0.5).astype(int))
        return "gpu"
    except Exception as exc:
        log.info("LightGBM GPU learner unavailable (%s); training on the CPU",
                 str(exc).splitlines()[0][:100])
        return "cpu"


def fit(X, y, params: GBMParams, seed: int, learner: str = "cpu", eval_set=None,
        n_estimators: int | None = None, threads: int | None = None):
    """Fit a LightGBM classifier; returns the fitted estimator."""
    import lightgbm as lgb

    threads = threads or os.cpu_count() or 1
    clf = _classifier(params, seed, n_estimators or params.n_estimators, learner, threads)
    callbacks = []
    if eval_set is not None:
        callbacks.append(lgb.early_stopping(params.early_stopping_rounds, verbose=False))
    kw = {}
    if eval_set is not None:
        # lightgbm >= 4.7 names these eval_X / eval_y; older versions eval_set.
        if "eval_X" in inspect.signature(clf.fit).parameters:
            kw = {"eval_X": (eval_set[0],), "eval_y": (eval_set[1],)}
        else:
            kw = {"eval_set": [eval_set]}
    clf.fit(X, y, callbacks=callbacks, **kw)
    return clf


def choose_threshold(probs: list, truths: list, post: PostParams, gsd: float,
                     thresholds=THRESHOLDS) -> tuple[float, dict]:
    """Threshold with the best mean per-image IoU after post-processing.

    Returns the threshold and ``{threshold: mean IoU}``.
    """
    table = {}
    for t in thresholds:
        ious = [confusion(postprocess(p, t, post, gsd), m).iou for p, m in zip(probs, truths)]
        table[float(t)] = float(np.mean(ious))
    best = max(table, key=lambda t: (table[t], -abs(t - 0.5)))
    return best, table


def _versions() -> dict:
    import lightgbm
    import scipy
    import skimage

    return {"roadfeat": __version__, "lightgbm": lightgbm.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "python": platform.python_version()}


def train(features_dir, out_dir, backend: Backend, params: GBMParams = GBMParams(),
          post: PostParams = PostParams(), seed: int = 0, val_fraction: float = 0.2,
          refit: bool = True, threads: int | None = None, quiet: bool = False,
          image_ids: list | None = None) -> RoadModel:
    """Train a road model from a features folder and save it to ``out_dir``.

    ``image_ids`` restricts training to some of the folder's images (for
    cross-validation); by default all are used.
    """
    features_dir = Path(features_dir)
    manifest = read_json(features_dir / MANIFEST)
    try:
        names = validate_spec(manifest["spec"])
    except (SpecError, KeyError) as exc:
        raise InputError(features_dir / MANIFEST, f"features made with a spec this roadfeat "
                                                  f"cannot reproduce: {exc}") from None
    if names != manifest.get("feature_names"):
        raise InputError(features_dir / MANIFEST, "features made with another feature spec "
                                                  "(names differ); re-run extract")
    images = manifest["images"]
    if image_ids is not None:
        missing = sorted(set(image_ids) - set(images))
        if missing:
            raise InputError(features_dir / MANIFEST, f"no extracted rows for images {missing}")
        images = {k: images[k] for k in image_ids}
    if not images:
        raise InputError(features_dir / MANIFEST, "no images were extracted")
    gsd = float(manifest["gsd"])
    train_ids, val_ids = split_images(list(images), val_fraction, seed)
    learner = choose_learner(backend)
    X, y = load_rows(features_dir, train_ids)
    if len(np.unique(y)) < 2:
        raise InputError(features_dir, "training rows hold only one class; need road and background")

    card = {
        "roadfeat_version": __version__, "spec": manifest["spec"], "feature_names": names,
        "train_gsd": gsd, "threshold": 0.5, "post": post.to_dict(), "seed": seed,
        "gbm": asdict(params), "learner": learner, "versions": _versions(),
        "training_data": {"features": str(features_dir.resolve()), "images": len(images),
                          "train_images": train_ids, "val_images": val_ids,
                          "rows": int(sum(e["n"] for e in images.values())),
                          "sampling": manifest["sampling"]},
    }
    val = {}
    n_rounds = params.n_estimators
    if val_ids:
        Xv, yv = load_rows(features_dir, val_ids)
        clf = fit(X, y, params, seed, learner, (Xv, yv), threads=threads)
        n_rounds = max(1, int(clf.best_iteration_ or params.n_estimators))
        interim = RoadModel(clf.booster_, card)
        probs, truths = [], []
        for vid in progress(val_ids, "validate", quiet):
            e = images[vid]
            rgb = read_image(e["image"])
            probs.append(interim.probability(rgb, backend, gsd, e["image"]))
            truths.append(read_mask(e["mask"], rgb.shape))
        thr, table = choose_threshold(probs, truths, post, gsd)
        card["threshold"] = thr
        val = {"images": val_ids, "best_iteration": n_rounds, "mean_iou": table[thr],
               "mean_iou_by_threshold": table}
    if refit or not val_ids:
        Xall, yall = (np.concatenate([X, Xv]), np.concatenate([y, yv])) if val_ids else (X, y)
        clf = fit(Xall, yall, params, seed, learner, None, n_rounds, threads)
    card["n_rounds"] = n_rounds
    card["validation"] = val
    card["refit_on_all_images"] = bool(refit or not val_ids)
    gains = clf.booster_.feature_importance("gain")
    card["feature_importance_gain"] = {n: float(g) for n, g in zip(names, gains)}
    model = RoadModel(clf.booster_, card)
    model.save(out_dir)
    from .report import importance_plot
    importance_plot(card["feature_importance_gain"], Path(out_dir) / "feature_importance.png")
    return model
