"""A trained road model: LightGBM's native text model plus a JSON model card.

A model folder holds ``model.txt`` (LightGBM's own format, loadable by any
LightGBM) and ``card.json`` (feature spec, threshold, post-processing,
training data, validation scores, package versions). :meth:`RoadModel.load`
refuses a model whose spec this version of roadfeat cannot reproduce.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .backend import Backend, to_host
from .features import SpecError, compute_features, validate_spec
from .io import InputError, read_json, write_bytes_atomic, write_json_atomic
from .postprocess import PostParams, postprocess

MODEL_FILE = "model.txt"
CARD_FILE = "card.json"


def feature_matrix(stack) -> np.ndarray:
    """(F, h, w) stack -> (h*w, F) matrix view in Fortran order (no copy)."""
    stack = to_host(stack)
    return stack.reshape(stack.shape[0], -1).T


def check_finite(X: np.ndarray, where) -> None:
    """Refuse NaN or infinite values before they reach the classifier."""
    if not np.isfinite(X).all():
        bad = int(np.count_nonzero(~np.isfinite(X)))
        raise InputError(where, f"{bad} NaN or infinite feature values")


class RoadModel:
    """Booster + card. Use :meth:`load` / :meth:`save`; predict with :meth:`predict`."""

    def __init__(self, booster, card: dict):
        self.booster = booster
        self.card = card
        self.names = validate_spec(card["spec"])

    # ------------------------------------------------------------------ io
    @classmethod
    def load(cls, folder) -> "RoadModel":
        import lightgbm as lgb

        folder = Path(folder)
        card_path, model_path = folder / CARD_FILE, folder / MODEL_FILE
        if not folder.is_dir():
            raise InputError(folder, "model folder not found")
        card = read_json(card_path)
        for key in ("spec", "feature_names", "threshold", "post"):
            if key not in card:
                raise InputError(card_path, f"model card has no {key!r}")
        try:
            names = validate_spec(card["spec"])
        except SpecError as exc:
            raise InputError(card_path, f"cannot reproduce this model's features: {exc}") from None
        if names != card["feature_names"]:
            raise InputError(card_path, "cannot reproduce this model's features: the spec now "
                                        "yields different feature names than it was trained with")
        if not model_path.exists():
            raise InputError(model_path, "file not found")
        try:
            booster = lgb.Booster(model_file=str(model_path))
        except Exception as exc:
            raise InputError(model_path, f"not a valid LightGBM model ({str(exc).splitlines()[0][:120]})") from None
        if booster.num_feature() != len(names):
            raise InputError(model_path, f"model expects {booster.num_feature()} features but its "
                                         f"card's spec yields {len(names)}")
        return cls(booster, card)

    def save(self, folder) -> None:
        folder = Path(folder)
        text = self.booster.model_to_string(num_iteration=-1)
        write_bytes_atomic(folder / MODEL_FILE, text.encode())
        write_json_atomic(folder / CARD_FILE, self.card)

    def fingerprint(self) -> str:
        """Hash of model and card, to tell whether outputs came from this model."""
        h = hashlib.sha256(self.booster.model_to_string().encode())
        h.update(repr(sorted(self.card.items(), key=lambda kv: kv[0])).encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------- predict
    @property
    def threshold(self) -> float:
        return float(self.card["threshold"])

    @property
    def post(self) -> PostParams:
        return PostParams.from_dict(self.card["post"])

    @property
    def train_gsd(self) -> float:
        return float(self.card.get("train_gsd", 0.5))

    def probability(self, rgb: np.ndarray, backend: Backend, gsd: float | None = None,
                    where="image", timings: dict | None = None) -> np.ndarray:
        """Road probability at the input's size, float32 (H, W).

        ``timings``, if given, accumulates seconds per stage (features, boosting).
        """
        gsd = self.train_gsd if gsd is None else gsd
        with _stage(timings, "features"):
            stack = to_host(compute_features(rgb, self.card["spec"], backend, gsd))
        with _stage(timings, "boosting"):
            f, h, w = stack.shape
            X = feature_matrix(stack)
            check_finite(X, where)
            prob = self.booster.predict(X).astype(np.float32).reshape(h, w)
            return backend_resize_host(prob, rgb.shape[:2])

    def predict(self, rgb: np.ndarray, backend: Backend, gsd: float | None = None,
                where="image", timings: dict | None = None) -> np.ndarray:
        """Binary road mask (H, W) for one RGB image."""
        gsd = self.train_gsd if gsd is None else gsd
        prob = self.probability(rgb, backend, gsd, where, timings)
        with _stage(timings, "post-processing"):
            return postprocess(prob, self.threshold, self.post, gsd)


@contextmanager
def _stage(timings: dict | None, name: str):
    t = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t


def backend_resize_host(prob: np.ndarray, shape) -> np.ndarray:
    """Bring a working-resolution map back to the input grid (bilinear)."""
    import cv2

    if prob.shape == tuple(shape):
        return prob
    return cv2.resize(prob, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
