"""A LightGBM model as flat arrays, evaluated on whichever device holds the features.

LightGBM's text model is read into one set of node arrays for all trees
(split feature, threshold, decision type, children) and one of leaf values,
so that a feature stack on the GPU is scored there by one small CUDA kernel
and never copied to the host. :func:`predict_host` is its NumPy twin, run
over the same arrays and written to follow the same decisions step by step;
the tests hold both to ``Booster.predict``.

The decision at a node is LightGBM's ``NumericalDecision`` on the value
as its predictor reads a dense row (where ``|x| <= 1e-35f`` is stored as 0):
a NaN becomes 0
unless the node's missing type is NaN; a missing value (zero for missing
type Zero, NaN for missing type NaN) takes the default direction; otherwise
the row goes left when ``value <= threshold`` (in float64, as LightGBM
compares). Categorical splits and linear trees are refused: roadfeat trains
neither.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["Forest", "ForestError", "forest_of", "parse_model", "predict_host", "predict_device"]

# LightGBM's kZeroThreshold, a float constant (1e-35f) compared in float64:
# |x| at or below it is read as 0.
ZERO_THRESHOLD = float(np.float32(1e-35))
_CATEGORICAL = 1
_DEFAULT_LEFT = 2


class ForestError(ValueError):
    """A model these arrays cannot represent."""


@dataclass(frozen=True, eq=False)  # hashed by identity, for the device cache
class Forest:
    """All trees of one binary LightGBM model.

    Node ``j``'s children are node indices when ``>= 0`` and ``~leaf`` (that
    is ``-leaf - 1``) for a leaf; ``roots[t]`` is tree ``t``'s first node, or
    ``~leaf`` for a tree that is a single leaf.
    """

    roots: np.ndarray       # (T,) int32
    feature: np.ndarray     # (N,) int32
    threshold: np.ndarray   # (N,) float64
    decision: np.ndarray    # (N,) uint8: bit 1 default left, bits 2-3 missing type
    left: np.ndarray        # (N,) int32
    right: np.ndarray       # (N,) int32
    leaf_value: np.ndarray  # (L,) float64
    sigmoid: float          # probability = 1 / (1 + exp(-sigmoid * raw score))
    n_features: int

    @property
    def n_trees(self) -> int:
        return len(self.roots)


def _values(block: dict, key: str, dtype, n: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0, dtype)
    a = np.array(block[key].split(), dtype=np.float64 if dtype is np.float64 else np.int64)
    if len(a) != n:
        raise ForestError(f"tree field {key!r} has {len(a)} values, expected {n}")
    return a.astype(dtype)


def parse_model(text: str) -> Forest:
    """Read LightGBM's text model (``Booster.model_to_string()``) into a :class:`Forest`."""
    header, _, body = text.partition("\nTree=")
    head = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    objective = head.get("objective", "").split()
    if not objective or objective[0] != "binary":
        raise ForestError(f"only binary models are supported, not {head.get('objective')!r}")
    sigmoid = 1.0
    for part in objective[1:]:
        if part.startswith("sigmoid:"):
            sigmoid = float(part.split(":", 1)[1])
    n_features = int(head["max_feature_idx"]) + 1
    body = "Tree=" + body.split("\nend of trees", 1)[0]
    roots, nodes, leaves = [], [], []
    n_nodes = n_leaves = 0
    for chunk in body.split("Tree=")[1:]:
        block = dict(line.split("=", 1) for line in chunk.splitlines() if "=" in line)
        if int(block.get("is_linear", 0)):
            raise ForestError("linear trees are not supported")
        nl = int(block["num_leaves"])
        ni = nl - 1
        leaf = _values(block, "leaf_value", np.float64, nl)
        if ni == 0:
            roots.append(~n_leaves)
        else:
            dec = _values(block, "decision_type", np.int64, ni)
            if np.any(dec & _CATEGORICAL):
                raise ForestError("categorical splits are not supported")
            left = _values(block, "left_child", np.int64, ni)
            right = _values(block, "right_child", np.int64, ni)
            # Children to global indices: nodes shift by n_nodes, leaves by n_leaves.
            shift = (lambda c: np.where(c >= 0, c + n_nodes, ~(~c + n_leaves)))
            nodes.append((_values(block, "split_feature", np.int64, ni),
                          _values(block, "threshold", np.float64, ni), dec,
                          shift(left), shift(right)))
            roots.append(n_nodes)
        leaves.append(leaf)
        n_nodes += ni
        n_leaves += nl
    if not roots:
        raise ForestError("the model has no trees")
    cat = (lambda i, dt: np.ascontiguousarray(np.concatenate([n[i] for n in nodes]), dt)
           if nodes else np.zeros(0, dt))
    return Forest(np.asarray(roots, np.int32), cat(0, np.int32), cat(1, np.float64),
                  cat(2, np.uint8), cat(3, np.int32), cat(4, np.int32),
                  np.ascontiguousarray(np.concatenate(leaves), np.float64), sigmoid, n_features)


def forest_of(booster) -> Forest:
    """The :class:`Forest` of a ``lightgbm.Booster``, parsed once and kept on it."""
    forest = getattr(booster, "_roadfeat_forest", None)
    if forest is None:
        forest = parse_model(booster.model_to_string(num_iteration=-1))
        booster._roadfeat_forest = forest
    return forest


def predict_host(forest: Forest, X: np.ndarray) -> np.ndarray:
    """Probabilities of rows ``X`` (features, rows) with NumPy: the kernel's twin.

    Returns float64 ``(rows,)``.
    """
    X = np.asarray(X)
    if X.shape[0] != forest.n_features:
        raise ForestError(f"{X.shape[0]} features given, the model has {forest.n_features}")
    n = X.shape[1]
    raw = np.zeros(n)
    for root in forest.roots:
        node = np.full(n, root, dtype=np.int64)
        rows = np.arange(n) if root >= 0 else np.zeros(0, np.int64)
        while rows.size:
            nd = node[rows]
            v = X[forest.feature[nd], rows].astype(np.float64)
            v[np.abs(v) <= ZERO_THRESHOLD] = 0.0
            d = forest.decision[nd]
            missing = (d >> 2) & 3
            v = np.where(np.isnan(v) & (missing != 2), 0.0, v)
            default = (((missing == 1) & (np.abs(v) <= ZERO_THRESHOLD))
                       | ((missing == 2) & np.isnan(v)))
            go_left = np.where(default, (d & _DEFAULT_LEFT) != 0, v <= forest.threshold[nd])
            node[rows] = np.where(go_left, forest.left[nd], forest.right[nd])
            rows = rows[node[rows] >= 0]
        raw += forest.leaf_value[~node]
    return 1.0 / (1.0 + np.exp(-forest.sigmoid * raw))


_KERNEL = r"""
extern "C" __global__
void forest_predict(const float* X, const long long n, const int n_trees,
                    const int* roots, const int* feature, const double* threshold,
                    const unsigned char* decision, const int* left, const int* right,
                    const double* leaf_value, const double sigmoid, float* out)
{
    const long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= n) return;
    double raw = 0.0;
    for (int t = 0; t < n_trees; ++t) {
        int node = roots[t];
        while (node >= 0) {
            double v = (double)X[(long long)feature[node] * n + i];
            if (fabs(v) <= (double)1e-35f) v = 0.0;
            const unsigned char d = decision[node];
            const int missing = (d >> 2) & 3;
            if (isnan(v) && missing != 2) v = 0.0;
            bool go_left;
            if ((missing == 1 && fabs(v) <= (double)1e-35f) || (missing == 2 && isnan(v)))
                go_left = (d & 2) != 0;
            else
                go_left = v <= threshold[node];
            node = go_left ? left[node] : right[node];
        }
        raw += leaf_value[-node - 1];
    }
    out[i] = (float)(1.0 / (1.0 + exp(-sigmoid * raw)));
}
"""


@functools.lru_cache(maxsize=1)
def _kernel():
    import cupy

    return cupy.RawKernel(_KERNEL, "forest_predict")


@functools.lru_cache(maxsize=8)
def _on_device(forest: Forest):
    import cupy

    return tuple(cupy.asarray(a) for a in (forest.roots, forest.feature, forest.threshold,
                                            forest.decision, forest.left, forest.right,
                                            forest.leaf_value))


def predict_device(forest: Forest, X):
    """Probabilities of rows ``X`` (features, rows), a CuPy array, on the GPU.

    Returns float32 ``(rows,)`` on the device.
    """
    import cupy

    X = cupy.ascontiguousarray(X, dtype=cupy.float32)
    if X.shape[0] != forest.n_features:
        raise ForestError(f"{X.shape[0]} features given, the model has {forest.n_features}")
    n = X.shape[1]
    out = cupy.empty(n, dtype=cupy.float32)
    if n:
        threads = 256
        _kernel()(((n + threads - 1) // threads,), (threads,),
                  (X, np.int64(n), np.int32(forest.n_trees), *_on_device(forest),
                   np.float64(forest.sigmoid), out))
    return out
