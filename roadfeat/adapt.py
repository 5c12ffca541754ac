"""Per-image self-training: adapt the model's road map to one image's own look.

Roads differ in colour and texture from tile to tile (asphalt in one, red
earth in the next), and a model fit on a few tiles knows only their looks.
Each image therefore also gets a small booster of its own, fit on a random
sample of its pixels labelled by the model's own mask (the calibrated map at
the image's expected-IoU threshold). Pixels that look like this image's
confident roads rise; pixels the model marked but that look unlike the rest
of the image's roads fall. The result is the mean of the model's map and the
self-trained one (both through the support opening), with ``weight`` on the
latter.

The labels are sampled at the image's own road share, not class-balanced,
so the self-trained map is on the same scale as the calibrated one and the
expected-IoU threshold still applies to the mix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .backend import to_host
from .calibration import expected_iou_threshold


@dataclass(frozen=True)
class AdaptParams:
    """Per-image self-training settings."""

    weight: float = 0.5
    rows: int = 40000
    rounds: int = 100
    leaves: int = 15
    learning_rate: float = 0.1
    min_child_samples: int = 50

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AdaptParams":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def self_train(stack, prob: np.ndarray, params: AdaptParams = AdaptParams(),
               seed: int = 0, threads: int | None = None) -> np.ndarray:
    """Road map of a booster fit on one image's own pixels, labelled by ``prob``.

    Parameters
    ----------
    stack : (F, h, w) array
        The image's feature stack (any backend).
    prob : (h, w) array
        The model's calibrated road probability on the same grid.
    params : AdaptParams
    seed : int
        Seed of the pixel sample and of the booster.

    Returns
    -------
    (h, w) float32 array on the host; ``prob`` itself when its mask is
    empty or covers the whole image (nothing to learn from).
    """
    import lightgbm as lgb

    prob = np.asarray(to_host(prob), dtype=np.float32)
    labels = (prob >= expected_iou_threshold(prob)).ravel()
    if labels.all() or not labels.any():
        return prob
    stack = to_host(stack)
    X = stack.reshape(stack.shape[0], -1).T
    rng = np.random.default_rng(seed)
    rows = rng.choice(labels.size, size=min(params.rows, labels.size), replace=False)
    rows.sort()
    y = labels[rows]
    if y.all() or not y.any():
        return prob
    clf = lgb.LGBMClassifier(
        objective="binary", n_estimators=params.rounds, num_leaves=params.leaves,
        learning_rate=params.learning_rate, min_child_samples=params.min_child_samples,
        subsample=0.8, subsample_freq=1, colsample_bytree=0.5, random_state=seed,
        n_jobs=threads, deterministic=True, force_row_wise=True, verbose=-1)
    clf.fit(np.ascontiguousarray(X[rows], dtype=np.float32), y)
    return clf.predict_proba(X)[:, 1].astype(np.float32).reshape(prob.shape)


def adapt(image_stack, prob: np.ndarray, params: AdaptParams, spec: dict, backend,
          seed: int = 0) -> np.ndarray:
    """``prob`` mixed with its self-trained map, after the spec's support opening.

    Returns ``(1 - weight) * prob + weight * support(self_train(...))``, float32 on the host.
    """
    from .features import apply_support

    own = self_train(image_stack, prob, params, seed)
    own = to_host(apply_support(backend.asarray(own), spec))
    return ((1 - params.weight) * np.asarray(prob) + params.weight * own).astype(np.float32)
