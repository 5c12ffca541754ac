"""Training stage: sampled feature rows -> LightGBM model + model card.

Validation uses whole held-out images, never random pixels of the training
images. The images are split into K folds; a model fit on the other folds
(with early stopping on the held-out fold's rows) predicts each held-out
image, so every training image gets an out-of-fold probability map. The
number of rounds is the median of the folds' early-stopping points, and the
probability threshold is the one with the best mean per-image IoU of the
post-processed out-of-fold masks (the challenge's score). The final model is
then fit on all images. Each finished fold is checkpointed, so a killed run
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import platform
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .backend import Backend
from .extract import MANIFEST, load_rows
from .features import SpecError, validate_spec
from .io import InputError, read_image, read_json, read_mask, write_json_atomic
from .metrics import confusion
from .model import RoadModel
from .postprocess import PostParams, postprocess
from .progress import progress

log = logging.getLogger("roadfeat")

THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.10, 0.91, 0.05), 2))
# Probability maps are costly: a few dozen images per fold pin the threshold.
MAX_SCORED_PER_FOLD = 20
CHECKPOINTS = ".folds"
# Bumped when a fold checkpoint gains fields, so older ones are redone.
CHECKPOINT_FORMAT = 2


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


def image_folds(ids: list[str], k: int, seed: int) -> list[list[str]]:
    """Split whole images into ``min(k, len(ids))`` seeded folds ([] below 2 images)."""
    ids = sorted(ids)
    k = min(k, len(ids))
    if k < 2:
        return []
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    return [sorted(order[i::k]) for i in range(k)]


def _lgbm_kwargs(params: GBMParams, seed: int, n_estimators: int, learner: str,
                 threads: int) -> dict:
    return dict(
        objective="binary", n_estimators=n_estimators, learning_rate=params.learning_rate,
        num_leaves=params.num_leaves, min_child_samples=params.min_child_samples,
        subsample=params.subsample, subsample_freq=1, colsample_bytree=params.colsample_bytree,
        reg_lambda=params.reg_lambda, random_state=seed, n_jobs=threads, deterministic=True,
        force_row_wise=True, verbose=-1, device_type=learner,
    )


def _classifier(params: GBMParams, seed: int, n_estimators: int, learner: str, threads: int):
    import lightgbm as lgb

    return lgb.LGBMClassifier(**_lgbm_kwargs(params, seed, n_estimators, learner, threads))


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
        n_estimators: int | None = None, threads: int | None = None, client=None):
    """Fit a LightGBM classifier.

    With ``eval_set`` the number of rounds is chosen on it (early stopping
    here; on Dask, the round with the lowest log loss, the model cut there).
    With a Dask ``client`` the rows are spread over its workers and fit by
    ``lightgbm.dask.DaskLGBMClassifier``.

    Returns
    -------
    booster : lightgbm.Booster
    best_iteration : int
    """
    import lightgbm as lgb

    n_estimators = n_estimators or params.n_estimators
    if client is not None:
        return _dask_fit(client, X, y, params, seed, learner, eval_set, n_estimators)
    clf = _classifier(params, seed, n_estimators, learner, threads or os.cpu_count() or 1)
    callbacks, kw = [], {}
    if eval_set is not None:
        callbacks.append(lgb.early_stopping(params.early_stopping_rounds, verbose=False))
        # lightgbm >= 4.7 names these eval_X / eval_y; older versions eval_set.
        if "eval_X" in inspect.signature(clf.fit).parameters:
            kw = {"eval_X": (eval_set[0],), "eval_y": (eval_set[1],)}
        else:
            kw = {"eval_set": [eval_set]}
    clf.fit(X, y, callbacks=callbacks, **kw)
    return clf.booster_, int(clf.best_iteration_ or n_estimators)


def _dask_fit(client, X, y, params, seed, learner, eval_set, n_estimators):
    import dask
    import dask.array as da
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMClassifier

    def spread(a, n):
        # Scatter one block per worker rather than embedding the rows in the graph.
        parts = np.array_split(a, n)
        futures = client.scatter(parts)
        return da.concatenate([da.from_delayed(dask.delayed(f), shape=p.shape, dtype=p.dtype)
                               for f, p in zip(futures, parts)])

    workers = client.scheduler_info()["workers"].values()
    n = max(1, min(len(workers), len(y)))
    clf = DaskLGBMClassifier(client=client, **_lgbm_kwargs(params, seed, n_estimators, learner,
                                                           None))
    with warnings.catch_warnings():
        # Each worker uses its own thread count, as intended.
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
        booster = clf.fit(spread(X, n), spread(y, n)).to_local().booster_
    if eval_set is None:
        return booster, n_estimators
    best = best_iteration(booster, *eval_set)
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), best


def best_iteration(booster, X, y) -> int:
    """Number of rounds with the lowest binary log loss on ``(X, y)``."""
    raw = np.zeros(len(y))
    losses = []
    for i in range(booster.current_iteration()):
        raw += booster.predict(X, start_iteration=i, num_iteration=1, raw_score=True)
        p = np.clip(1.0 / (1.0 + np.exp(-raw)), 1e-12, 1 - 1e-12)
        losses.append(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return int(np.argmin(losses)) + 1


# Validation masks marking more than this share of pixels as road are a
# classifier that cannot separate the classes, whatever their IoU.
DEGENERATE_ROAD_SHARE = 0.5


def scores_by_threshold(prob, truth, post: PostParams, gsd: float,
                        thresholds=THRESHOLDS) -> tuple[list[float], list[float]]:
    """IoU and predicted road share of the post-processed mask at each threshold."""
    counts = [confusion(postprocess(prob, t, post, gsd), truth) for t in thresholds]
    return [c.iou for c in counts], [(c.tp + c.fp) / truth.size for c in counts]


def choose_threshold(tables: dict, thresholds=THRESHOLDS) -> tuple[float, dict]:
    """Threshold with the best mean per-image IoU.

    ``tables`` maps image id -> IoU at each threshold. Ties go to the
    threshold nearest 0.5. Returns the threshold and ``{threshold: mean IoU}``.
    """
    mean = np.mean([tables[k] for k in sorted(tables)], axis=0)
    table = {float(t): float(m) for t, m in zip(thresholds, mean)}
    best = max(table, key=lambda t: (table[t], -abs(t - 0.5)))
    return best, table


def _versions() -> dict:
    import lightgbm
    import scipy
    import skimage

    return {"roadfeat": __version__, "lightgbm": lightgbm.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "python": platform.python_version()}


def _fold_key(manifest_key: str, ids, folds, params: GBMParams, post: PostParams,
              seed: int, how: str) -> str:
    blob = json.dumps([manifest_key, sorted(ids), folds, asdict(params), post.to_dict(), seed, how,
                       list(THRESHOLDS), MAX_SCORED_PER_FOLD, CHECKPOINT_FORMAT],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _validate_fold(i, folds, ids, X, y, groups, images, card, params, post, seed, learner,
                   threads, backend, gsd, quiet, client) -> dict:
    """Fit without fold ``i``, score its images; returns the fold's checkpoint."""
    held = np.isin(groups, [ids.index(k) for k in folds[i]])
    booster, best = fit(X[~held], y[~held], params, seed, learner, (X[held], y[held]),
                        threads=threads, client=client)
    interim = RoadModel(booster, card)
    scored = sorted(np.random.default_rng(seed + i).permutation(folds[i])[:MAX_SCORED_PER_FOLD])
    tables, shares = {}, {}
    for vid in progress(scored, f"validate fold {i + 1}/{len(folds)}", quiet):
        e = images[vid]
        rgb = read_image(e["image"])
        prob = interim.probability(rgb, backend, gsd, e["image"])
        tables[vid], shares[vid] = scores_by_threshold(prob, read_mask(e["mask"], rgb.shape),
                                                       post, gsd)
    return {"best_iteration": best, "iou": tables, "road_share": shares}


def train(features_dir, out_dir, backend: Backend, params: GBMParams = GBMParams(),
          post: PostParams = PostParams(), seed: int = 0, folds: int = 3,
          threads: int | None = None, quiet: bool = False,
          image_ids: list | None = None, client=None) -> RoadModel:
    """Train a road model from a features folder and save it to ``out_dir``.

    ``folds`` is the number of image folds used to choose the number of
    rounds and the threshold (fewer than 2 images: no validation, threshold
    0.5). ``image_ids`` restricts training to some of the folder's images
    (for cross-validation); by default all are used. With a Dask ``client``
    every fit runs on its workers (:func:`fit`); the model files are the same
    kind as without.
    """
    features_dir, out_dir = Path(features_dir), Path(out_dir)
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
    ids = sorted(images)
    image_folds_ = image_folds(ids, folds, seed)
    learner = choose_learner(backend)
    X, y, groups = load_rows(features_dir, ids)
    if len(np.unique(y)) < 2:
        raise InputError(features_dir, "training rows hold only one class; need road and background")

    card = {
        "roadfeat_version": __version__, "spec": manifest["spec"], "feature_names": names,
        "train_gsd": gsd, "threshold": 0.5, "post": post.to_dict(), "seed": seed,
        "gbm": asdict(params), "learner": learner, "versions": _versions(),
        "fit_on": ("this process" if client is None else
                   f"Dask, {len(client.scheduler_info()['workers'])} workers"),
        "training_data": {"features": str(features_dir.resolve()), "images": len(ids),
                          "image_ids": ids, "rows": int(len(y)), "road_rows": int(y.sum()),
                          "sampling": manifest["sampling"]},
    }
    val, n_rounds = {}, params.n_estimators
    if image_folds_:
        state_dir = out_dir / CHECKPOINTS
        key = _fold_key(manifest.get("key", ""), ids, image_folds_, params, post, seed,
                        f"{learner}/{'dask' if client is not None else 'local'}")
        results = []
        for i in range(len(image_folds_)):
            ckpt = state_dir / f"fold-{i}.json"
            done = read_json(ckpt) if ckpt.exists() else {}
            if done.get("key") != key:
                done = {"key": key, **_validate_fold(i, image_folds_, ids, X, y, groups, images,
                                                     card, params, post, seed, learner, threads,
                                                     backend, gsd, quiet, client)}
                write_json_atomic(ckpt, done)
            results.append(done)
        tables = {k: v for r in results for k, v in r["iou"].items()}
        thr, table = choose_threshold(tables)
        at = THRESHOLDS.index(thr)
        n_rounds = max(1, int(np.median([r["best_iteration"] for r in results])))
        card["threshold"] = thr
        share = float(np.mean([r["road_share"][k][at] for r in results for k in r["road_share"]]))
        val = {"method": f"{len(image_folds_)}-fold cross-validation by image",
               "folds": image_folds_, "best_iterations": [r["best_iteration"] for r in results],
               "mean_iou": table[thr], "mean_iou_by_threshold": table,
               "per_image_iou": {k: tables[k][at] for k in sorted(tables)},
               "mean_predicted_road_share": share}
        if share > DEGENERATE_ROAD_SHARE:
            val["warning"] = (f"held-out masks mark {100 * share:.0f}% of pixels as road: "
                              "the features do not separate road from background on these "
                              "images; train on more labelled images")
            log.warning("%s: %s", out_dir, val["warning"])
    booster, _ = fit(X, y, params, seed, learner, None, n_rounds, threads, client)
    card["n_rounds"] = n_rounds
    card["validation"] = val
    gains = booster.feature_importance("gain")
    card["feature_importance_gain"] = {n: float(g) for n, g in zip(names, gains)}
    model = RoadModel(booster, card)
    model.save(out_dir)
    from .report import importance_plot
    importance_plot(card["feature_importance_gain"], out_dir / "feature_importance.png")
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
    return model
