"""A trained road model: LightGBM's native text models plus a JSON model card.

A model folder holds ``model.txt`` (the first stage, LightGBM's own format,
loadable by any LightGBM), ``context_model.txt`` when the spec has a context
stage (the second booster, on image features plus context features of the
first stage's probability), and ``card.json`` (feature spec, calibration,
threshold rule, post-processing, training data, validation scores, package
versions). :meth:`RoadModel.load` refuses a model whose spec this version of
roadfeat cannot reproduce.

The probability of road at a pixel is: stage 1, then stage 2 on the image
features and the context of stage 1 (if any), then the support opening (if
any), then Platt calibration (if validated), then per-image self-training
(if the card has ``adapt``; :mod:`roadfeat.adapt`), resampled to the input
grid.
The mask is that probability at the card's threshold: a number, or
``"expected-iou"`` for the per-image threshold of :mod:`roadfeat.calibration`
(the plug-in expected-IoU threshold, shifted by the card's learned
``threshold_rule`` where it has one).
"""

from __future__ import annotations

import hashlib
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .adapt import AdaptParams, adapt
from .backend import Backend, backend_of, to_host
from .calibration import ThresholdRule, apply_platt
from .card import EXPECTED_IOU, check_card
from .compiled_trees import attach
from .features import (SpecError, apply_support, compute_context, compute_features,
                       context_names, has_context, needed_names, validate_spec, working_shape)
from .io import InputError, read_json, write_bytes_atomic, write_json_atomic
from .postprocess import PostParams, postprocess

#: The model shipped inside the package (trained on the 362 labelled DeepGlobe
#: tiles of the project's data; its README.md says how to rebuild it).
DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "default_model"
MODEL_FILE = "model.txt"
CONTEXT_MODEL_FILE = "context_model.txt"
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
    """Boosters + card. Use :meth:`load` / :meth:`save`; predict with :meth:`predict`."""

    def __init__(self, booster, card: dict, context_booster=None):
        self.booster = booster
        self.context_booster = context_booster
        self.card = card
        self.names = validate_spec(card["spec"])
        if has_context(card["spec"]) and context_booster is None:
            raise ValueError("a spec with context needs the context booster")
        self.needed = self._needed()

    def _needed(self):
        """Feature names that predicting needs (None: all): those the trees split on.

        Self-training fits a new booster on every image feature, so with it all
        image features are needed.
        """
        boosters = [(self.booster, self.names)]
        if self.context_booster is not None:
            boosters.append((self.context_booster, self.names + context_names(self.card["spec"])))
        used = set(self.names) if self.card.get("adapt") else set()
        for booster, names in boosters:
            split = booster.feature_importance("split")
            used.update(n for n, k in zip(names, split) if k > 0)
        return needed_names(self.card["spec"], used)

    # ------------------------------------------------------------------ io
    @classmethod
    def load(cls, folder) -> "RoadModel":
        folder = Path(folder)
        card_path = folder / CARD_FILE
        if not folder.is_dir():
            raise InputError(folder, "model folder not found")
        card = read_json(card_path)
        check_card(card, card_path)
        try:
            names = validate_spec(card["spec"])
            extra = context_names(card["spec"])
        except SpecError as exc:
            raise InputError(card_path, f"cannot reproduce this model's features: {exc}") from None
        if names != card["feature_names"] or extra != card.get("context_names", []):
            raise InputError(card_path, "cannot reproduce this model's features: the spec now "
                                        "yields different feature names than it was trained with")
        booster = _load_booster(folder / MODEL_FILE, len(names))
        context = (_load_booster(folder / CONTEXT_MODEL_FILE, len(names) + len(extra))
                   if extra else None)
        return cls(booster, card, context)

    def save(self, folder) -> None:
        folder = Path(folder)
        write_bytes_atomic(folder / MODEL_FILE,
                           self.booster.model_to_string(num_iteration=-1).encode())
        if self.context_booster is not None:
            write_bytes_atomic(folder / CONTEXT_MODEL_FILE,
                               self.context_booster.model_to_string(num_iteration=-1).encode())
        write_json_atomic(folder / CARD_FILE, self.card)

    def fingerprint(self) -> str:
        """Hash of models and card, to tell whether outputs came from this model."""
        h = hashlib.sha256(self.booster.model_to_string().encode())
        if self.context_booster is not None:
            h.update(self.context_booster.model_to_string().encode())
        h.update(repr(sorted(self.card.items(), key=lambda kv: kv[0])).encode())
        return h.hexdigest()[:16]

    def with_threshold(self, threshold) -> "RoadModel":
        """The same model with another threshold (a number, or ``"expected-iou"``)."""
        return RoadModel(self.booster, dict(self.card, threshold=threshold), self.context_booster)

    def without_adapt(self) -> "RoadModel":
        """The same model without per-image self-training (for ablations)."""
        return RoadModel(self.booster, dict(self.card, adapt=None), self.context_booster)

    # ------------------------------------------------------------- predict
    @property
    def threshold(self):
        """The card's threshold: a float, or ``"expected-iou"``."""
        t = self.card["threshold"]
        return t if t == EXPECTED_IOU else float(t)

    @property
    def threshold_rule(self) -> ThresholdRule:
        """The learned shift of the expected-IoU threshold (none for older cards)."""
        return ThresholdRule.from_dict(self.card.get("threshold_rule"))

    def threshold_for(self, prob: np.ndarray) -> float:
        """The threshold for one probability map (the image's own under ``expected-iou``)."""
        t = self.threshold
        return self.threshold_rule.threshold(prob) if t == EXPECTED_IOU else t

    @property
    def post(self) -> PostParams:
        return PostParams.from_dict(self.card["post"])

    @property
    def adapt(self) -> AdaptParams | None:
        a = self.card.get("adapt")
        return AdaptParams.from_dict(a) if a else None

    @property
    def train_gsd(self) -> float:
        return float(self.card.get("train_gsd", 0.5))

    def probability(self, rgb: np.ndarray, backend: Backend, gsd: float | None = None,
                    where="image", timings: dict | None = None,
                    intermediates: dict | None = None) -> np.ndarray:
        """Road probability at the input's size, float32 (H, W).

        ``timings``, if given, accumulates seconds per stage (features,
        boosting). ``intermediates``, if given, receives the working-resolution
        ``stack`` of image features, the ``context`` features (two-stage
        models), the ``uncalibrated`` map before Platt scaling and the
        ``calibrated`` map before self-training, on the host.
        """
        gsd = self.train_gsd if gsd is None else gsd
        spec = self.card["spec"]
        # Features no tree uses stay zeros, unless the caller asks for the stacks.
        needed = self.needed if intermediates is None else None
        n = len(self.names)
        with _stage(timings, "features"):
            # One buffer for both stages: the context features complete the image
            # features' rows, so the second stage's stack is never a copy.
            shape = working_shape(rgb.shape[:2], gsd, spec["working_gsd"])
            stack = backend.xp.empty((n + len(context_names(spec)),) + shape,
                                     dtype=backend.xp.float32)
            image_stack = compute_features(rgb, spec, backend, gsd, needed, out=stack[:n])
        prob = self.stage_probability(self.booster, image_stack, where, timings)
        if self.context_booster is not None:
            with _stage(timings, "features"):
                ctx = compute_context(backend.asarray(prob), spec, needed, out=stack[n:])
            prob = self.stage_probability(self.context_booster, stack, where, timings)
            if intermediates is not None:
                intermediates["context"] = to_host(ctx)
            del stack, ctx
        with _stage(timings, "features"):
            prob = to_host(apply_support(backend.asarray(prob), spec))
        if intermediates is not None:
            intermediates["uncalibrated"] = prob
        cal = self.card.get("calibration")
        if cal:
            prob = apply_platt(prob, cal["a"], cal["b"])
        if intermediates is not None:
            intermediates.update(stack=to_host(image_stack), calibrated=prob)
        if self.adapt is not None:
            with _stage(timings, "boosting"):
                prob = adapt(image_stack, prob, self.adapt, spec, backend,
                             int(self.card.get("seed", 0)))
        return backend_resize_host(prob, rgb.shape[:2])

    @staticmethod
    def stage_probability(booster, stack, where="image", timings: dict | None = None):
        """One booster's probability map (h, w) of a (F, h, w) feature stack.

        Float32, on the stack's backend: a stack on the GPU is scored there.
        """
        with _stage(timings, "boosting"):
            backend = backend_of(stack)
            if not bool(backend.xp.isfinite(stack).all()):
                check_finite(to_host(stack), where)
            return backend.trees(booster, stack)

    def predict(self, rgb: np.ndarray, backend: Backend, gsd: float | None = None,
                where="image", timings: dict | None = None) -> np.ndarray:
        """Binary road mask (H, W) for one RGB image."""
        gsd = self.train_gsd if gsd is None else gsd
        prob = self.probability(rgb, backend, gsd, where, timings)
        with _stage(timings, "post-processing"):
            return postprocess(prob, self.threshold_for(prob), self.post, gsd)


def _load_booster(path: Path, n_features: int):
    import lightgbm as lgb

    if not path.exists():
        raise InputError(path, "file not found")
    # LightGBM prints its own parse errors to stderr; catch the common cases first.
    text = path.read_bytes()
    if text.split(b"\n", 1)[0].strip() != b"tree":
        raise InputError(path, "not a valid LightGBM model (no 'tree' header line)")
    if b"\nend of trees" not in text:
        raise InputError(path, "not a valid LightGBM model (truncated: no 'end of trees' line)")
    try:
        booster = lgb.Booster(model_str=text.decode())
    except Exception as exc:
        raise InputError(path, f"not a valid LightGBM model ({str(exc).splitlines()[0][:120]})") from None
    attach(booster, path.parent)
    if booster.num_feature() != n_features:
        raise InputError(path, f"model expects {booster.num_feature()} features but its "
                               f"card's spec yields {n_features}")
    return booster


@contextmanager
def _stage(timings: dict | None, name: str):
    t = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            _finish_device_work()
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t


def _finish_device_work() -> None:
    """Wait for queued GPU work, so that a stage's time is its own (timed runs only)."""
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        try:
            cupy.cuda.get_current_stream().synchronize()
        except Exception:  # CuPy installed without a usable GPU: nothing is queued
            pass


def backend_resize_host(prob: np.ndarray, shape) -> np.ndarray:
    """Bring a working-resolution map back to the input grid (bilinear)."""
    import cv2

    if prob.shape == tuple(shape):
        return prob
    return cv2.resize(prob, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
