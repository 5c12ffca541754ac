"""The feature matrix as data: kinds x sources x scales -> stable names.

A spec is a JSON-able dict::

    {"version": 2, "working_gsd": 1.0,
     "features": [{"kind": "gabor", "sources": ["lum"], "wavelengths": [4, 8], "n_orient": 8},
                  ...],
     "context": [{"kind": "line_open", "sources": ["prob"], "lengths": [21, 41], "n_orient": 16},
                 ...],
     "support": {"length": 41, "n_orient": 16}}

Each entry names a *kind* from :data:`KINDS`; the kind turns the entry's
parameters into a list of feature names (without computing anything) and
computes the arrays in that order. ``features`` are filters of the image.
The optional ``context`` entries are filters of the first stage's road
probability (source ``prob``): a second booster sees the image features plus
these (auto-context, Tu & Bai 2010). The optional ``support`` is a final
supremum of openings of the probability by segments of ``length`` working
pixels, which keeps long structures and lowers short blobs.

The spec is saved with every feature set and model; :func:`validate_spec`
refuses one the code cannot reproduce. Features are computed at
``working_gsd`` metres per pixel, so one model serves imagery of several
resolutions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..backend import Backend, backend_of
from . import colour, gabor, hessian, lines, morphology, paths, smoothing, texture

SPEC_VERSION = 2
# Version 1 specs (no context, no support, no line_morph) still load: their
# models predict as they did.
READABLE_VERSIONS = (1, 2)
#: The one source that context entries filter: the first stage's road probability.
CONTEXT_SOURCES = ("prob",)

DEFAULT_SPEC: dict = {
    "version": SPEC_VERSION,
    "working_gsd": 1.0,
    "features": [
        {"kind": "colour", "sources": list(colour.CHANNELS)},
        {"kind": "gaussian", "sources": ["lum", "sat", "exg", "lab_b"], "sigmas": [2, 4, 8, 16]},
        {"kind": "local_std", "sources": ["lum"], "sigmas": [2, 4, 8]},
        {"kind": "gradient", "sources": ["lum"], "sigmas": [1, 2, 4]},
        {"kind": "hessian", "sources": ["lum"], "sigmas": [1, 2, 3, 5]},
        {"kind": "gabor", "sources": ["lum"], "wavelengths": [4, 8, 16], "n_orient": 8},
        # 81 m lines and the disc top-hats: +0.0079 and +0.0029 mean IoU on the
        # validation split (docs/RESULTS.md, sixteenth session).
        {"kind": "line", "sources": ["lum", "sat", "ridge_bright"], "lengths": [21, 41, 81],
         "n_orient": 12},
        # Line openings and closings of the saturation too, and at 81 m, and the
        # PanTex built-up index: +0.0141 mean IoU on the validation split
        # (docs/RESULTS.md, nineteenth session).
        {"kind": "line_morph", "sources": ["lum", "sat"], "lengths": [21, 41, 81],
         "n_orient": 16},
        {"kind": "disc_tophat", "sources": ["lum"], "diameters": [5, 9, 15]},
        {"kind": "pantex", "sources": ["lum"], "sigmas": [4, 16]},
    ],
    # The 161 m opening and the 32 and 64 m Gaussians, with 400 rounds: +0.0073
    # mean IoU on the validation split (docs/RESULTS.md, twenty-second session).
    "context": [
        {"kind": "channel", "sources": ["prob"]},
        {"kind": "line_open", "sources": ["prob"], "lengths": [21, 41, 81, 161], "n_orient": 16},
        {"kind": "gaussian", "sources": ["prob"], "sigmas": [4, 16, 32, 64]},
        {"kind": "line", "sources": ["prob"], "lengths": [41], "n_orient": 12},
    ],
    "support": {"length": 41, "n_orient": 16},
}

_HSV = ("hue_cos", "hue_sin", "sat", "val")
_LAB = ("lab_l", "lab_a", "lab_b")
# Derived sources: single channels that other kinds can filter.
_RIDGE_SIGMAS = (1.0, 2.0, 4.0)


class SpecError(ValueError):
    """A feature spec that this version of roadfeat cannot reproduce."""


class Sources:
    """Lazily computed, cached source channels of one RGB image in [0, 1].

    ``given`` adds named channels computed elsewhere (the context stage's
    ``prob``); without an image only those exist.
    """

    def __init__(self, rgb=None, given: dict | None = None):
        self.rgb = rgb
        self._cache: dict = dict(given or {})

    def __getitem__(self, name: str):
        if name not in self._cache:
            self._cache[name] = self._compute(name)
        return self._cache[name]

    # Intermediates that several kinds share, computed once per image.
    def smoothed(self, name: str, sigma: float):
        """Source ``name`` smoothed by a Gaussian of ``sigma``."""
        key = ("smoothed", name, float(sigma))
        if key not in self._cache:
            self._cache[key] = smoothing.local_mean(self[name], sigma)
        return self._cache[key]

    def hessian(self, name: str, sigma: float):
        """Hessian eigenvalues ``(l_max, l_min)`` of source ``name`` at ``sigma``."""
        key = ("hessian", name, float(sigma))
        if key not in self._cache:
            self._cache[key] = hessian.smoothed_hessian_eigenvalues(self.smoothed(name, sigma),
                                                                     sigma)
        return self._cache[key]

    def _compute(self, name: str):
        if self.rgb is None:
            raise SpecError(f"source {name!r} needs the image")
        # Channels that share one conversion are cached together.
        for group, convert in (_HSV, colour.rgb_to_hsv), (_LAB, colour.rgb_to_lab):
            if name in group:
                xp = backend_of(self.rgb).xp
                for n, arr in zip(group, convert(self.rgb)):
                    self._cache[n] = xp.ascontiguousarray(arr, dtype=xp.float32)
                return self._cache[name]
        if name in colour.CHANNELS:
            return colour.colour_channel(self.rgb, name)
        if name in ("ridge_bright", "ridge_dark"):
            xp = backend_of(self.rgb).xp
            best = None
            for s in _RIDGE_SIGMAS:
                br, dk = hessian.ridge_measures(*self.hessian("lum", s))
                r = br if name == "ridge_bright" else dk
                best = r if best is None else xp.maximum(best, r)
            return best
        raise SpecError(f"unknown source {name!r}")


SOURCE_NAMES = tuple(colour.CHANNELS) + ("ridge_bright", "ridge_dark")
#: Sources whose values lie in [0, 1], which threshold-decomposed kinds need.
UNIT_SOURCES = ("r", "g", "b", "lum", "sat", "val", "prob")


@dataclass(frozen=True)
class Kind:
    """A feature kind: its parameters, its names, and how to compute them."""

    params: tuple[str, ...]
    names: Callable[[dict], list[str]]
    compute: Callable[[Sources, dict], Iterator]
    #: How far (working pixels) an output pixel sees into its source.
    radius: Callable[[dict], int]
    #: Only sources in [0, 1] (:data:`UNIT_SOURCES`).
    unit_sources: bool = False
    #: The parameter listing scales that are computed one by one (None: all at once).
    scale: str | None = None


def _fmt(x) -> str:
    return f"{x:g}"


def _per_scale(prefixes, scale_key, tag):
    def names(e):
        return [f"{p}_{src}_{tag}{_fmt(s)}" for src in e["sources"] for s in e[scale_key]
                for p in prefixes]
    return names


def _colour_names(e):
    return [f"colour_{c}" for c in e["sources"]]


def _colour(src, e):
    for c in e["sources"]:
        yield src[c]


def _gaussian(src, e):
    for s in e["sources"]:
        for sig in e["sigmas"]:
            yield src.smoothed(s, sig)


def _local_std(src, e):
    for s in e["sources"]:
        for sig in e["sigmas"]:
            yield smoothing.local_std(src[s], sig, src.smoothed(s, sig))


def _pantex(src, e):
    for s in e["sources"]:
        for sig in e["sigmas"]:
            yield texture.pantex(src[s], sig)


def _gradient(src, e):
    for s in e["sources"]:
        for sig in e["sigmas"]:
            yield hessian.smoothed_gradient_magnitude(src.smoothed(s, sig), sig)


def _hessian(src, e):
    for s in e["sources"]:
        for sig in e["sigmas"]:
            lmax, lmin = src.hessian(s, sig)
            yield lmax
            yield lmin
            yield from hessian.ridge_measures(lmax, lmin)


def _gabor(src, e):
    for s in e["sources"]:
        for w in e["wavelengths"]:
            yield from gabor.orientation_summary(gabor.gabor_energy(src[s], w, e["n_orient"]))


def _line(src, e):
    for s in e["sources"]:
        for length in e["lengths"]:
            yield from lines.line_contrast(src[s], int(length), e["n_orient"])


def _line_morph(src, e):
    for s in e["sources"]:
        for length in e["lengths"]:
            yield from morphology.line_morphology(src[s], int(length), e["n_orient"])


def _disc_tophat(src, e):
    for s in e["sources"]:
        for d in e["diameters"]:
            yield from morphology.disc_tophats(src[s], int(d))


def _line_open(src, e):
    for s in e["sources"]:
        for length in e["lengths"]:
            yield morphology.line_openings(src[s], int(length), e["n_orient"])[0]


def _path_open(src, e):
    for s in e["sources"]:
        yield from paths.path_openings(src[s], [int(x) for x in e["lengths"]], int(e["levels"]))


def _channel(src, e):
    for s in e["sources"]:
        yield src[s]


def _gauss_radius(key, extra=0):
    # cv2.GaussianBlur's automatic kernel reaches 4 sigma.
    return lambda e: int(np.ceil(4 * max(e[key]))) + extra


def _gabor_radius(e):
    return max(gabor.gabor_kernel(float(w), 0.0).shape[0] // 2 for w in e["wavelengths"])


def _line_radius(e):
    # Line half-length plus the surround (sigma = length / 4, so 4 sigma = length).
    return int(max(e["lengths"])) + 1


def _morph_radius(e, key="lengths"):
    # Erosion then dilation, each by a footprint reaching size // 2.
    return 2 * (int(max(e[key])) // 2)


KINDS: dict[str, Kind] = {
    "colour": Kind(("sources",), _colour_names, _colour, lambda e: 0),
    "gaussian": Kind(("sources", "sigmas"), _per_scale(["gauss"], "sigmas", "s"), _gaussian,
                     _gauss_radius("sigmas"), scale="sigmas"),
    "local_std": Kind(("sources", "sigmas"), _per_scale(["std"], "sigmas", "s"), _local_std,
                      _gauss_radius("sigmas"), scale="sigmas"),
    "pantex": Kind(("sources", "sigmas"), _per_scale(["pantex"], "sigmas", "s"), _pantex,
                   _gauss_radius("sigmas", 2), scale="sigmas"),
    "gradient": Kind(("sources", "sigmas"), _per_scale(["grad"], "sigmas", "s"), _gradient,
                     _gauss_radius("sigmas", 1), scale="sigmas"),
    "hessian": Kind(("sources", "sigmas"),
                    _per_scale(["hess_lmax", "hess_lmin", "ridge_bright", "ridge_dark"],
                               "sigmas", "s"), _hessian, _gauss_radius("sigmas", 2),
                    scale="sigmas"),
    "gabor": Kind(("sources", "wavelengths", "n_orient"),
                  _per_scale(["gabor_max", "gabor_mean", "gabor_range"], "wavelengths", "w"),
                  _gabor, _gabor_radius, scale="wavelengths"),
    "line": Kind(("sources", "lengths", "n_orient"),
                 _per_scale(["line_max", "line_min", "line_aniso"], "lengths", "l"), _line,
                 _line_radius, scale="lengths"),
    "line_morph": Kind(("sources", "lengths", "n_orient"),
                       _per_scale(["lmorph_bright", "lmorph_dark", "lmorph_bright_aniso",
                                   "lmorph_dark_aniso"], "lengths", "l"), _line_morph,
                       _morph_radius, scale="lengths"),
    "disc_tophat": Kind(("sources", "diameters"),
                        _per_scale(["tophat_bright", "tophat_dark"], "diameters", "d"),
                        _disc_tophat, lambda e: _morph_radius(e, "diameters"), scale="diameters"),
    "line_open": Kind(("sources", "lengths", "n_orient"),
                      _per_scale(["lopen"], "lengths", "l"), _line_open, _morph_radius,
                      scale="lengths"),
    "path_open": Kind(("sources", "lengths", "levels"), _per_scale(["popen"], "lengths", "l"),
                      _path_open, lambda e: int(max(e["lengths"])), unit_sources=True),
    "channel": Kind(("sources",), lambda e: list(e["sources"]), _channel, lambda e: 0),
}

# Derived sources look this far before a kind filters them (Hessian at the largest sigma).
_SOURCE_RADIUS = {"ridge_bright": int(4 * max(_RIDGE_SIGMAS)) + 2,
                  "ridge_dark": int(4 * max(_RIDGE_SIGMAS)) + 2}


def default_spec() -> dict:
    return copy.deepcopy(DEFAULT_SPEC)


def _entry_names(entries, section: str, allowed) -> list[str]:
    if not isinstance(entries, list):
        raise SpecError(f"{section} must be a list of entries")
    names: list[str] = []
    for i, e in enumerate(entries):
        kind = KINDS.get(e.get("kind")) if isinstance(e, dict) else None
        if kind is None:
            raise SpecError(f"{section} entry {i}: unknown kind "
                            f"{e.get('kind') if isinstance(e, dict) else e!r}; known: {', '.join(KINDS)}")
        missing = [p for p in kind.params if p not in e]
        extra = [p for p in e if p not in kind.params and p != "kind"]
        if missing or extra:
            raise SpecError(f"{section} entry {i} ({e['kind']}): missing {missing}, unknown {extra}")
        bad = [s for s in e["sources"] if s not in allowed]
        if bad:
            raise SpecError(f"{section} entry {i} ({e['kind']}): unknown sources {bad}")
        bad = [s for s in e["sources"] if kind.unit_sources and s not in UNIT_SOURCES]
        if bad:
            raise SpecError(f"{section} entry {i} ({e['kind']}): sources {bad} are not in "
                            f"[0, 1]; this kind takes {', '.join(UNIT_SOURCES)}")
        names.extend(kind.names(e))
    return names


def _support(spec: dict) -> dict | None:
    sup = spec.get("support")
    if sup is None:
        return None
    if (not isinstance(sup, dict) or set(sup) != {"length", "n_orient"}
            or not all(isinstance(sup[k], int) and sup[k] > 0 for k in sup)):
        raise SpecError(f"support must be {{'length': int > 0, 'n_orient': int > 0}}, not {sup!r}")
    return sup


def validate_spec(spec: dict) -> list[str]:
    """Check that ``spec`` can be reproduced; return its image feature names.

    Raises
    ------
    SpecError
        With a one-line reason when it cannot.
    """
    if not isinstance(spec, dict) or "features" not in spec:
        raise SpecError("feature spec must be a dict with a 'features' list")
    if spec.get("version") not in READABLE_VERSIONS:
        raise SpecError(f"feature spec version {spec.get('version')!r} is not supported "
                        f"(this roadfeat reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    if spec["version"] == 1 and ({"context", "support"} & set(spec)):
        raise SpecError("a version 1 spec has no context or support; use version 2")
    gsd = spec.get("working_gsd")
    if not isinstance(gsd, (int, float)) or gsd <= 0:
        raise SpecError(f"working_gsd must be a positive number, not {gsd!r}")
    names = _entry_names(spec["features"], "feature", SOURCE_NAMES)
    context = _entry_names(spec.get("context", []), "context", CONTEXT_SOURCES)
    _support(spec)
    if len(set(names + context)) != len(names + context):
        raise SpecError("feature spec yields duplicate feature names")
    return names


def feature_names(spec: dict) -> list[str]:
    """Names of the image features (the first stage's columns)."""
    return validate_spec(spec)


def context_names(spec: dict) -> list[str]:
    """Names of the context features (empty for a one-stage spec)."""
    validate_spec(spec)
    return [n for e in spec.get("context", []) for n in KINDS[e["kind"]].names(e)]


def has_context(spec: dict) -> bool:
    return bool(spec.get("context"))


def without_context(spec: dict) -> dict:
    """The one-stage spec with the same image features (and support)."""
    out = copy.deepcopy(spec)
    out.pop("context", None)
    return out


def _radius(entries) -> int:
    return max((KINDS[e["kind"]].radius(e) + max(_SOURCE_RADIUS.get(s, 0) for s in e["sources"])
                for e in entries), default=0)


def receptive_radius(spec: dict) -> int:
    """How far, in working pixels, the model's probability at a pixel sees.

    The image features' reach, plus the context filters' reach over the
    first stage's probability, plus the support opening's. A window read with
    at least this halo computes the same probabilities in its interior as
    the whole image does.
    """
    validate_spec(spec)
    sup = _support(spec)
    return (_radius(spec["features"]) + _radius(spec.get("context", []))
            + (_morph_radius({"lengths": [sup["length"]]}) if sup else 0))


def working_shape(shape, input_gsd: float, working_gsd: float) -> tuple[int, int]:
    """Image shape after resampling from ``input_gsd`` to ``working_gsd``."""
    f = input_gsd / working_gsd
    return max(1, int(round(shape[0] * f))), max(1, int(round(shape[1] * f)))


def compute_features(rgb: np.ndarray, spec: dict, backend: Backend, input_gsd: float = 0.5,
                     needed=None, out=None):
    """Feature stack of one image.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 array
    spec : dict
        Feature spec (see module docstring).
    backend : Backend
        Where to compute; the result lives there too.
    input_gsd : float
        Metres per pixel of ``rgb``.
    needed : collection of str, optional
        Feature names to compute (see :func:`needed_names`); the rows of the
        others are zeros. All features by default.
    out : (F, h, w) float32 array, optional
        Where to write the stack (for instance the first rows of a larger
        stack that the context features complete); a new array by default.

    Returns
    -------
    stack : (F, h, w) float32 array, C-contiguous
        ``h, w`` is the working shape; ``stack.reshape(F, -1).T`` is the
        (pixels, features) matrix in Fortran order, without a copy.
    """
    names = validate_spec(spec)
    xp = backend.xp
    img = backend.asarray(rgb).astype(xp.float32) * (1.0 / 255.0)
    shape = working_shape(img.shape, input_gsd, spec["working_gsd"])
    if shape != img.shape[:2]:
        img = backend.resize(img, shape)
    return _stack(Sources(xp.ascontiguousarray(img)), spec["features"], len(names), shape, xp,
                  needed, out)


def _units(entries):
    """``(entry, names)`` for each source and scale of ``entries``: what is computed at once.

    Their names, in order, are the entries' names.
    """
    for e in entries:
        kind = KINDS[e["kind"]]
        for source in e["sources"]:
            for scale in e[kind.scale] if kind.scale else [None]:
                unit = dict(e, sources=[source])
                if kind.scale:
                    unit[kind.scale] = [scale]
                yield unit, kind.names(unit)


def _stack(src: Sources, entries, n: int, shape, xp, needed=None, out=None):
    """The (n, *shape) float32 stack of ``entries`` computed from ``src``, in name order.

    Written into ``out`` when given. Units with no name in ``needed`` (when
    given) are not computed; their rows are zeros.
    """
    if out is None:
        out = xp.empty((n,) + tuple(shape), dtype=xp.float32)
    elif out.shape != (n,) + tuple(shape) or out.dtype != xp.float32:
        raise ValueError(f"out must be float32 of shape {(n,) + tuple(shape)}, not "
                         f"{out.dtype} {out.shape}")
    i = 0
    for unit, names in _units(entries):
        if needed is None or not needed.isdisjoint(names):
            for j, arr in enumerate(KINDS[unit["kind"]].compute(src, unit)):
                out[i + j] = arr
        else:
            out[i:i + len(names)] = 0
        i += len(names)
    assert i == n, (i, n)
    return out


def needed_names(spec: dict, used) -> frozenset | None:
    """The feature names to compute so that the features named in ``used`` are right.

    A unit (one source at one scale of an entry) is computed whole, so this
    is every name of each unit that holds a used name. ``None`` (compute all)
    when that is everything.
    """
    used = set(used)
    entries = spec["features"] + spec.get("context", [])
    needed = frozenset(n for _, names in _units(entries) if not used.isdisjoint(names)
                       for n in names)
    return None if len(needed) == sum(len(names) for _, names in _units(entries)) else needed


def compute_context(prob, spec: dict, needed=None, out=None):
    """Context features of a first-stage probability map, (C, h, w) float32.

    ``prob`` is the (h, w) road probability at working resolution, on the
    backend the result should live on. ``needed`` and ``out`` as in
    :func:`compute_features`.
    """
    xp = backend_of(prob).xp
    src = Sources(given={"prob": xp.ascontiguousarray(prob, dtype=xp.float32)})
    return _stack(src, spec.get("context", []), len(context_names(spec)), prob.shape, xp, needed,
                  out)


def apply_support(prob, spec: dict):
    """The spec's support opening of a probability map (unchanged without one)."""
    sup = _support(spec)
    if sup is None:
        return prob
    return morphology.line_openings(prob, sup["length"], sup["n_orient"])[0]
