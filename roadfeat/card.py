"""The model card's fields, checked for type and range when a model is loaded.

A card with a wrong value type would otherwise fail with a traceback in the
middle of a folder (issue #28). :func:`check_card` raises one
:class:`~roadfeat.io.InputError` naming the card and the field instead, and
refuses keys no version of roadfeat has written.
"""

from __future__ import annotations

from numbers import Integral, Real

from .io import InputError

#: The threshold value that means "each image's own expected-IoU threshold".
EXPECTED_IOU = "expected-iou"
#: Keys every card has.
REQUIRED = ("spec", "feature_names", "threshold", "post")


def _number(lo=None, hi=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, Real) or v != v:
            return "must be a number"
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return f"must be {lo} to {hi}"
        return None
    return check


def _integer(lo=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, Integral):
            return "must be an integer"
        if lo is not None and v < lo:
            return f"must be at least {lo}"
        return None
    return check


def _kind(*types, null=False):
    names = " or ".join(t.__name__.replace("dict", "an object").replace("list", "a list")
                        .replace("str", "a string") for t in types)
    def check(v):
        if v is None and null:
            return None
        return None if isinstance(v, types) else f"must be {names}{' or null' if null else ''}"
    return check


def _threshold(v):
    return None if v == EXPECTED_IOU else (
        _number(0, 1)(v) and f"must be a number in [0, 1] or {EXPECTED_IOU!r}")


def _names(v):
    if not isinstance(v, list) or not all(isinstance(n, str) for n in v):
        return "must be a list of strings"
    return None


def _fields(numbers: dict, **kinds):
    """An object whose listed fields, where present, are numbers in range or of a kind."""
    def check(v):
        if v is None:
            return None
        if not isinstance(v, dict):
            return "must be an object or null"
        for k, rule in {**numbers, **kinds}.items():
            if k in v:
                why = rule(v[k])
                if why:
                    return f"field {k!r} {why}"
        return None
    return check


_POST = {"min_area_m2": _number(0), "max_hole_m2": _number(0), "bridge_short_m": _number(0),
         "bridge_long_m": _number(0), "bridge_angle_deg": _number(0, 180), "trace_m": _number(0)}
_ADAPT = {"weight": _number(0, 1), "rows": _integer(1), "rounds": _integer(1),
          "leaves": _integer(2), "learning_rate": _number(0), "min_child_samples": _integer(1)}

#: Every key any version of roadfeat has written, with its check.
FIELDS = {
    "spec": _kind(dict),
    "feature_names": _names,
    "context_names": _names,
    "threshold": _threshold,
    "post": lambda v: _kind(dict)(v) or _fields(_POST, bridge=_kind(bool))(v),
    "adapt": _fields(_ADAPT),
    "calibration": _fields({"a": _number(), "b": _number()}),
    "threshold_rule": _fields({"shift": _number(-1, 1), "slope": _number(), "centre": _number(0, 1)},
                              fit_on=_kind(str)),
    "train_gsd": _number(0.05, 10),
    "seed": _integer(),
    "n_rounds": _integer(1),
    "context_rounds": _integer(1),
    "best_iteration": _integer(1),
    "gbm": _kind(dict),
    "learner": _kind(str),
    "fit_on": _kind(str),
    "roadfeat_version": _kind(str),
    "versions": _kind(dict),
    "training_data": _kind(dict),
    "validation": _kind(dict),
    "refit_on_all_images": _kind(bool),
    "feature_importance_gain": _kind(dict),
    "context_feature_importance_gain": _kind(dict),
}


def check_card(card, path) -> None:
    """Refuse a card that is not an object, lacks a required key, has an unknown
    key, or holds a value of the wrong type or range: one line naming ``path``."""
    if not isinstance(card, dict):
        raise InputError(path, "model card must be a JSON object")
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise InputError(path, f"model card has no {missing[0]!r}")
    unknown = sorted(set(card) - set(FIELDS))
    if unknown:
        raise InputError(path, f"model card has unknown keys {unknown} (made by another "
                               "program, or edited by hand?)")
    for key, rule in FIELDS.items():
        if key in card:
            why = rule(card[key])
            if why:
                raise InputError(path, f"model card's {key!r} {why}, not {card[key]!r:.60}")
