"""Training stage: sampled feature rows -> LightGBM model(s) + model card.

Validation uses whole held-out images, never random pixels of the training
images. The images are split into K folds; a model fit on the other folds
(with early stopping on the held-out fold's rows) predicts the probability
map of each held-out image, up to :data:`MAPS_PER_FOLD` of them per fold (its
trees compiled first when they map many, as at prediction).

With a context stage in the spec (auto-context, Tu & Bai 2010), the second
booster is trained on rows of image features plus context features of those
out-of-fold maps, never of maps from a model that saw the image: otherwise
stage 2 would learn to trust a stage 1 that is more confident on its own
training images than it will be on new ones. Stage 2 is validated by the
same folds, which gives its own out-of-fold maps.

The last stage's out-of-fold maps (after the support opening) fit the Platt
calibration and then the threshold rule, and the validation score is the
mean per-image IoU (the challenge's score) of their post-processed masks at
each image's threshold under that rule (:mod:`roadfeat.calibration`), after the per-image
self-training that prediction applies (:mod:`roadfeat.adapt`). The number
of rounds of each stage is the median of its folds' early-stopping points;
the final boosters are fit on all images. Each finished fold is
checkpointed, so a killed run resumes where it stopped.
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
from .adapt import AdaptParams, adapt as adapt_map
from .backend import Backend, to_host
from .calibration import IoUCurve, PlattCounts, apply_platt, fit_threshold_rule
from .compiled_trees import attach
from .extract import MANIFEST, load_rows
from .features import (SpecError, apply_support, compute_context, compute_features,
                       context_names, has_context, validate_spec, without_context)
from .io import (InputError, read_image, read_json, read_mask, write_json_atomic,
                 write_npz_atomic)
from .metrics import confusion
from .model import EXPECTED_IOU, RoadModel, backend_resize_host
from .postprocess import PostParams, postprocess
from .progress import progress
from .sampling import downsample_labels

log = logging.getLogger("roadfeat")

# Out-of-fold maps are costly (features of the whole image): this many
# images per fold fit the calibration, train the context stage and score.
# 40 rather than 20: +0.0145 mean IoU on the validation split (the context
# stage and the threshold rule learn from 160 images, not 80; docs/RESULTS.md).
MAPS_PER_FOLD = 40
# Fixed thresholds (on the calibrated probability) scored in validation, for the card.
FIXED_THRESHOLDS = tuple(float(round(t, 2)) for t in np.arange(0.05, 0.61, 0.05))
CHECKPOINTS = ".folds"
#: A fold model that maps at least this many images is compiled first
#: (:mod:`roadfeat.compiled_trees`, as at prediction): LightGBM's own predict
#: takes 3 to 7 s per 1024² tile for 250 to 400 trees, and a compile about as
#: long as ten of those.
COMPILE_FROM_MAPS = 10
#: Image folds of validation. Each fold's model, whose out-of-fold maps train
#: the context stage and fit the calibration, should be as close as can be
#: to the final model fit on all images: 8 folds (leave-one-out up to 8
#: images) beat 3 by 0.028 mean IoU over three seeds (docs/RESULTS.md).
DEFAULT_FOLDS = 8
#: Above this many images, :data:`FOLDS_WHEN_MANY` folds: each fold's model is
#: then already fit on hundreds of images, and a fold costs a whole fit.
MANY_IMAGES = 64
FOLDS_WHEN_MANY = 4
#: Training rows kept in all (an equal share per image, at most the shard's
#: rows): bounds the time and memory of a fit whatever the number of images.
ROW_BUDGET = 2_000_000
# Bumped when a fold checkpoint changes, so older ones are redone.
CHECKPOINT_FORMAT = 4


@dataclass(frozen=True)
class GBMParams:
    """LightGBM settings (scikit-learn API names)."""

    # Larger trees at a higher rate: +0.0183 mean IoU with the 81 m lines and
    # top-hats on the validation split (docs/RESULTS.md, sixteenth session). A
    # cap of 400 rounds, not 200 (early stopping takes about 240), with the
    # larger context: +0.0073 (twenty-second session).
    n_estimators: int = 400
    learning_rate: float = 0.1
    num_leaves: int = 255
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 40
    #: Random split thresholds: the trees fit less to the look of the few
    #: training images (+0.016 mean IoU over three seeds, docs/RESULTS.md).
    extra_trees: bool = True


def default_folds(n_images: int) -> int:
    """Folds for ``n_images`` labelled images: :data:`DEFAULT_FOLDS`, fewer when many."""
    return DEFAULT_FOLDS if n_images <= MANY_IMAGES else FOLDS_WHEN_MANY


def rows_per_image(n_images: int, budget: int = ROW_BUDGET) -> int:
    """Rows kept per image so that ``n_images`` images fill ``budget`` rows."""
    return max(1, budget // max(1, n_images))


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
        reg_lambda=params.reg_lambda, extra_trees=params.extra_trees, random_state=seed,
        n_jobs=threads, deterministic=True, force_row_wise=True, verbose=-1, device_type=learner,
    )


def _classifier(params: GBMParams, seed: int, n_estimators: int, learner: str, threads: int):
    import lightgbm as lgb

    return lgb.LGBMClassifier(**_lgbm_kwargs(params, seed, n_estimators, learner, threads))


def choose_learner(backend: Backend) -> str:
    """The LightGBM learner: the CPU's, with one log line on a GPU backend.

    LightGBM's OpenCL ``gpu`` learner ran on an H200 but took 1.8x the CPU
    learner's time (16 cores, 1M rows x 86 features), and the PyPI wheel has no
    ``cuda`` learner (docs/GPU.md, 2026-12-04).
    """
    if backend.name == "gpu":
        log.info("training on LightGBM's CPU learner: its OpenCL GPU learner measured "
                 "1.8x slower (docs/GPU.md)")
    return "cpu"


def _progress_callback(bar):
    def update(env):
        bar.update(1)
    update.order = 100  # after early stopping, which may end the fit
    return update


def fit(X, y, params: GBMParams, seed: int, learner: str = "cpu", eval_set=None,
        n_estimators: int | None = None, threads: int | None = None, client=None,
        desc: str = "boosting", quiet: bool = True):
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
    from .progress import round_bar

    with round_bar(n_estimators, desc, quiet) as bar:
        callbacks.append(_progress_callback(bar))
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


def _versions() -> dict:
    import cv2
    import lightgbm
    import scipy
    import skimage

    return {"roadfeat": __version__, "lightgbm": lightgbm.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "opencv": cv2.__version__,
            "python": platform.python_version()}


def _fold_key(manifest_key: str, ids, folds, params: GBMParams, post: PostParams,
              seed: int, how: str, spec: dict, maps_per_fold: int) -> str:
    blob = json.dumps([manifest_key, sorted(ids), folds, asdict(params), post.to_dict(), seed, how,
                       spec, maps_per_fold, CHECKPOINT_FORMAT],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _checkpointed(path: Path, key: str, work) -> tuple[int, dict]:
    """``work()`` -> (best_iteration, {id: map}), or its checkpoint when one matches ``key``."""
    if path.exists():
        try:
            with np.load(path) as z:
                if str(z["key"]) == key:
                    return int(z["best"]), {str(k): z[f"map{j}"] for j, k in enumerate(z["ids"])}
        except Exception:  # a damaged checkpoint is redone
            pass
    best, maps = work()
    ids = sorted(maps)
    write_npz_atomic(path, key=np.array(key), best=np.array(best), ids=np.array(ids),
                     **{f"map{j}": maps[k] for j, k in enumerate(ids)})
    return best, maps


@dataclass
class _Fit:
    """What every fold needs: the rows, the images, and how to fit and predict."""

    ids: list
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    idx: np.ndarray
    images: dict
    spec: dict
    params: GBMParams
    seed: int
    learner: str
    threads: int | None
    backend: Backend
    gsd: float
    quiet: bool
    client: object
    folds: list
    maps_per_fold: int = MAPS_PER_FOLD
    #: Where fold models are compiled (None: LightGBM predicts their maps).
    compile_dir: Path | None = None

    def __post_init__(self):
        # The images each fold scores (all of them up to maps_per_fold); a
        # larger number keeps the smaller one's images and adds to them.
        self.scored = [sorted(np.random.default_rng(self.seed + i).permutation(f)
                              [:self.maps_per_fold]) for i, f in enumerate(self.folds)]

    def fit(self, X, y, eval_set=None, n_estimators=None, desc="boosting"):
        return fit(X, y, self.params, self.seed, self.learner, eval_set, n_estimators,
                   self.threads, self.client, desc, self.quiet)

    def rows(self, image_id):
        sel = self.groups == self.ids.index(image_id)
        return self.X[sel], self.y[sel], self.idx[sel]

    def maps(self, booster, i: int, stage: str, context_of=None) -> dict:
        """Probability maps of fold ``i``'s scored images by ``booster``.

        With ``context_of`` (id -> first-stage map) the booster is the
        context stage and sees the image features plus that map's context.
        """
        out = {}
        if self.compile_dir is not None and len(self.scored[i]) >= COMPILE_FROM_MAPS:
            # Compiled into the checkpoint folder, which training removes at the end.
            where = self.compile_dir / f"{stage.replace(' ', '')}-fold-{i}"
            where.mkdir(parents=True, exist_ok=True)
            attach(booster, where)
        for k in progress(self.scored[i], f"{stage}, fold {i + 1}/{len(self.folds)}", self.quiet):
            path = self.images[k]["image"]
            stack = compute_features(read_image(path), self.spec, self.backend, self.gsd)
            if context_of is not None:
                ctx = compute_context(self.backend.asarray(context_of[k]), self.spec)
                stack = self.backend.xp.concatenate([stack, ctx])
            out[k] = to_host(RoadModel.stage_probability(booster, stack, path))
        return out

    def context_rows(self, image_id, first_stage_map) -> tuple[np.ndarray, np.ndarray]:
        """Stage-2 rows of one image: its sampled image features plus their context."""
        X, y, idx = self.rows(image_id)
        ctx = to_host(compute_context(self.backend.asarray(first_stage_map), self.spec))
        return np.hstack([X, ctx.reshape(ctx.shape[0], -1)[:, idx].T]), y


def _stage1_fold(f: _Fit, i: int):
    held = np.isin(f.groups, [f.ids.index(k) for k in f.folds[i]])
    booster, best = f.fit(f.X[~held], f.y[~held], (f.X[held], f.y[held]),
                          desc=f"stage 1 rounds, fold {i + 1}/{len(f.folds)}")
    return best, f.maps(booster, i, "stage 1")


def _stage2_fold(f: _Fit, i: int, rows2: dict, first: dict):
    def stack(ids):
        return (np.concatenate([rows2[k][0] for k in ids]),
                np.concatenate([rows2[k][1] for k in ids]))

    others = [k for j, s in enumerate(f.scored) if j != i for k in s]
    booster, best = f.fit(*stack(others), stack(f.scored[i]),
                          desc=f"stage 2 rounds, fold {i + 1}/{len(f.folds)}")
    return best, f.maps(booster, i, "stage 2", context_of=first)


def _validate(f: _Fit, maps: dict, post: PostParams,
              adapt: AdaptParams | None) -> tuple[dict, dict, dict]:
    """Calibrate on the out-of-fold ``maps`` and fit the threshold rule on them;
    score each image at its own threshold."""
    working = {k: to_host(apply_support(f.backend.asarray(m), f.spec)) for k, m in maps.items()}
    truths = {k: read_mask(f.images[k]["mask"], f.images[k]["shape"]) for k in sorted(maps)}
    counts = PlattCounts()
    for k, m in working.items():
        counts.add(m, downsample_labels(truths[k], m.shape))
    a, b = counts.fit()
    probs = {}
    for k in progress(sorted(maps), "validate", f.quiet):
        prob = apply_platt(working[k], a, b)
        if adapt is not None:
            path = f.images[k]["image"]
            stack = compute_features(read_image(path), f.spec, f.backend, f.gsd)
            prob = adapt_map(stack, prob, adapt, f.spec, f.backend, f.seed)
        probs[k] = backend_resize_host(prob, truths[k].shape)
    curves = {k: IoUCurve(probs[k], truths[k]) for k in sorted(probs)}
    rule, _ = fit_threshold_rule(list(curves.values()))
    per = {}
    for k, prob in probs.items():
        plug_in = curves[k].plug_in
        t = rule.apply(plug_in, curves[k].share)
        c = confusion(postprocess(prob, t, post, f.gsd), truths[k])
        fixed = [confusion(postprocess(prob, u, post, f.gsd), truths[k]).iou
                 for u in FIXED_THRESHOLDS]
        per[k] = {"iou": c.iou, "threshold": t, "road_share": (c.tp + c.fp) / truths[k].size,
                  "fixed_iou": fixed,
                  "plug_in_iou": (c.iou if plug_in == t else
                                  confusion(postprocess(prob, plug_in, post, f.gsd), truths[k]).iou)}
    fit_on = f"out-of-fold maps of {len(maps)} training images"
    return ({"method": "platt", "a": a, "b": b, "fit_on": fit_on},
            dict(rule.to_dict(), fit_on=fit_on), per)


def train(features_dir, out_dir, backend: Backend, params: GBMParams = GBMParams(),
          post: PostParams = PostParams(), seed: int = 0, folds: int | None = None,
          threads: int | None = None, quiet: bool = False,
          image_ids: list | None = None, client=None,
          adapt: AdaptParams | None = None, extra_features=None,
          row_budget: int | None = ROW_BUDGET,
          maps_per_fold: int = MAPS_PER_FOLD) -> RoadModel:
    """Train a road model from a features folder and save it to ``out_dir``.

    ``folds`` is the number of image folds used to choose the number of
    rounds, train the context stage and fit the calibration (fewer than 2
    images: one stage, no calibration, threshold 0.5; None:
    :func:`default_folds`). ``row_budget`` caps the training rows in all,
    an equal share of each image's sampled rows (None: every row).
    ``maps_per_fold`` is how many of each fold's images get an out-of-fold
    map: those maps train the context stage, fit the calibration and the
    threshold rule, and are scored. ``image_ids``
    restricts training to some of the folder's images (for
    cross-validation); by default all are used. ``adapt`` is the per-image
    self-training that prediction applies (None: none); it needs the
    calibration, so a model without validation folds has none. It is off
    by default: on the validation split of 362 DeepGlobe tiles it moved the
    mean IoU by +0.002 +- 0.005 (docs/RESULTS.md) at 1.4 s more per tile. With a Dask
    ``client`` every fit runs on its workers (:func:`fit`); the model files
    are the same kind as without.

    ``extra_features`` is a second features folder (same spec; any gsd)
    whose rows join every first-stage fit, but whose images are never held
    out, scored, calibrated on or used by the context stage: for masks that
    are not ground truth, such as a model's own masks of unlabelled tiles
    (pseudo-labels), which would flatter any score computed on them.
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
    folds = default_folds(len(ids)) if folds is None else folds
    image_folds_ = image_folds(ids, folds, seed)
    spec = manifest["spec"]
    if has_context(spec) and not image_folds_:
        log.info("the context stage needs out-of-fold maps of at least 2 images; "
                 "training the first stage only")
        spec = without_context(spec)
    learner = choose_learner(backend)
    per_image = None if row_budget is None else rows_per_image(len(ids), row_budget)
    X, y, groups, idx = load_rows(features_dir, ids, per_image, seed)
    extra = _extra_rows(extra_features, manifest, set(ids), per_image, seed)
    if len(np.unique(y)) < 2:
        raise InputError(features_dir, "training rows hold only one class; need road and background")

    card = {
        "roadfeat_version": __version__, "spec": spec, "feature_names": names,
        "context_names": context_names(spec), "train_gsd": gsd, "threshold": 0.5,
        "post": post.to_dict(), "adapt": None, "seed": seed, "gbm": asdict(params),
        "learner": learner, "versions": _versions(),
        "fit_on": ("this process" if client is None else
                   f"Dask, {len(client.scheduler_info()['workers'])} workers"),
        "training_data": {"features": str(features_dir.resolve()), "images": len(ids),
                          "image_ids": ids, "rows": int(len(y)), "road_rows": int(y.sum()),
                          "sampling": manifest["sampling"], "rows_per_image_kept": per_image},
    }
    extra_ids, extra_key = [], ""
    if extra is not None:
        extra_ids, eX, ey, egroups, eidx, extra_key = extra
        card["training_data"]["extra_first_stage"] = {
            "features": str(Path(extra_features).resolve()), "images": len(extra_ids),
            "image_ids": extra_ids, "rows": int(len(ey)), "road_rows": int(ey.sum())}
        X, y = np.concatenate([X, eX]), np.concatenate([y, ey])
        groups, idx = np.concatenate([groups, egroups + len(ids)]), np.concatenate([idx, eidx])
    f = _Fit(ids + extra_ids, X, y, groups, idx, images, spec, params, seed, learner, threads,
             backend, gsd, quiet, client, image_folds_, maps_per_fold, out_dir / CHECKPOINTS)
    val, n_rounds, context = {}, params.n_estimators, None
    if image_folds_:
        key = _fold_key(manifest.get("key", "") + extra_key, f.ids, image_folds_, params, post,
                        seed, f"{learner}/{'dask' if client is not None else 'local'}"
                        f"/rows {per_image}", spec, maps_per_fold)
        state = out_dir / CHECKPOINTS
        k = len(image_folds_)
        s1 = [_checkpointed(state / f"stage1-fold-{i}.npz", key, lambda i=i: _stage1_fold(f, i))
              for i in range(k)]
        first = {img: m for _, maps in s1 for img, m in maps.items()}
        n_rounds = max(1, int(np.median([b for b, _ in s1])))
        last = first
        if has_context(spec):
            rows2 = {img: f.context_rows(img, m) for img, m in first.items()}
            s2 = [_checkpointed(state / f"stage2-fold-{i}.npz", key,
                                lambda i=i: _stage2_fold(f, i, rows2, first)) for i in range(k)]
            last = {img: m for _, maps in s2 for img, m in maps.items()}
            n_context = max(1, int(np.median([b for b, _ in s2])))
            X2 = np.concatenate([rows2[img][0] for img in sorted(rows2)])
            y2 = np.concatenate([rows2[img][1] for img in sorted(rows2)])
            context, _ = f.fit(X2, y2, None, n_context, desc="stage 2 rounds, all images")
            card["context_rounds"] = n_context
        card["calibration"], card["threshold_rule"], per = _validate(f, last, post, adapt)
        card["adapt"] = adapt.to_dict() if adapt is not None else None
        card["threshold"] = EXPECTED_IOU
        share = float(np.mean([r["road_share"] for r in per.values()]))
        val = {"method": f"{k}-fold cross-validation by image; calibration and threshold "
                         "rule fit on the same out-of-fold maps; each image at its own "
                         "threshold",
               "folds": image_folds_, "scored_images": sorted(per),
               "best_iterations": [b for b, _ in s1],
               "mean_iou": float(np.mean([r["iou"] for r in per.values()])),
               # The same maps at the plug-in expected-IoU threshold, without the rule's shift.
               "plug_in_mean_iou": float(np.mean([r["plug_in_iou"] for r in per.values()])),
               "per_image_iou": {img: r["iou"] for img, r in sorted(per.items())},
               "per_image_threshold": {img: r["threshold"] for img, r in sorted(per.items())},
               "mean_predicted_road_share": share}
        if extra_ids:
            # DeepGlobe pseudo-labels: 0.31-0.36 here, 0.28 on unseen tiles (docs/RESULTS.md).
            val["caveat"] = ("every fold also trained on the extra rows; if their masks came "
                             "from a model fit on these labelled images (pseudo-labels), they "
                             "carry the held-out images' labels and this score is optimistic")
        # The best one fixed threshold after post-processing, for `predict --threshold`.
        fixed = np.mean([r["fixed_iou"] for r in per.values()], axis=0)
        val["fixed_threshold_mean_iou"] = {str(t): float(v) for t, v in zip(FIXED_THRESHOLDS, fixed)}
        val["best_fixed_threshold"] = FIXED_THRESHOLDS[int(np.argmax(fixed))]
        val["best_fixed_mean_iou"] = float(fixed.max())
        if has_context(spec):
            val["context_best_iterations"] = [b for b, _ in s2]
        if share > DEGENERATE_ROAD_SHARE:
            val["warning"] = (f"held-out masks mark {100 * share:.0f}% of pixels as road: "
                              "the features do not separate road from background on these "
                              "images; train on more labelled images")
            log.warning("%s: %s", out_dir, val["warning"])
    booster, _ = f.fit(X, y, None, n_rounds, desc="stage 1 rounds, all images")
    card["n_rounds"] = n_rounds
    card["validation"] = val
    card["feature_importance_gain"] = _gains(booster, names)
    from .report import importance_plot
    if context is not None:
        card["context_feature_importance_gain"] = _gains(context, names + card["context_names"])
        importance_plot(card["context_feature_importance_gain"],
                        out_dir / "context_importance.png", title="context stage")
    model = RoadModel(booster, card, context)
    model.save(out_dir)
    importance_plot(card["feature_importance_gain"], out_dir / "feature_importance.png",
                    title="first stage")
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
    return model


def _extra_rows(extra_features, manifest: dict, labelled: set, per_image=None, seed=0):
    """(ids, X, y, groups, idx, key) of the extra first-stage rows, or None."""
    if extra_features is None:
        return None
    path = Path(extra_features) / MANIFEST
    extra = read_json(path)
    # Features live on the spec's working grid, so images of another gsd may join.
    if extra.get("spec") != manifest["spec"]:
        raise InputError(path, "extra features made with another feature spec than the "
                               "training features; extract them with the same --config")
    ids = sorted(extra["images"])
    both = sorted(labelled & set(ids))
    if both:
        raise InputError(path, f"images {both} are also among the training features; "
                               "an image is either labelled or extra, not both")
    if not ids:
        raise InputError(path, "no images were extracted")
    return (ids, *load_rows(Path(extra_features), ids, per_image, seed), extra.get("key", ""))


def _gains(booster, names) -> dict:
    return {n: float(g) for n, g in zip(names, booster.feature_importance("gain"))}
