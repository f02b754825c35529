"""Decision trees as plain arrays, evaluated in numpy (what ``rsf`` and ``gbsa`` save instead of pickles).

A forest of ``T`` scikit-learn trees (each ``estimator.tree_``) is packed into
one set of node arrays, concatenated tree after tree:

``children_left``, ``children_right`` (int64, -1 at a leaf, indices already
offset into the packed arrays), ``feature`` (int64), ``threshold`` (float64)
and ``roots`` (int64, the first node of each tree). Node values are kept by the
model (one scalar or one row per node).

Traversal follows scikit-learn's ``Tree.apply``: the input is cast to float32
first (its ``DTYPE``), and a sample goes left when ``X[:, feature] <= threshold``.
Inputs must be free of NaN (the zoo's preprocessing fills missing values).
"""
from __future__ import annotations

import numpy as np

from omicsdata.errors import SchemaMismatchError

NODE_ARRAYS = ("children_left", "children_right", "feature", "threshold", "roots")


def pack(trees) -> dict[str, np.ndarray]:
    """The packed node arrays of scikit-learn ``Tree`` objects (``est.tree_`` of each estimator)."""
    left, right, feat, thr, roots = [], [], [], [], []
    offset = 0
    for t in trees:
        cl, cr = t.children_left.astype(np.int64), t.children_right.astype(np.int64)
        left.append(np.where(cl >= 0, cl + offset, -1))
        right.append(np.where(cr >= 0, cr + offset, -1))
        feat.append(t.feature.astype(np.int64))
        thr.append(t.threshold.astype(np.float64))
        roots.append(offset)
        offset += t.node_count
    return {"children_left": np.concatenate(left), "children_right": np.concatenate(right),
            "feature": np.concatenate(feat), "threshold": np.concatenate(thr),
            "roots": np.asarray(roots, dtype=np.int64)}


def check(arrays: dict, n_features: int) -> None:
    """Raise :class:`SchemaMismatchError` unless ``arrays`` are a consistent packed forest."""
    missing = [k for k in NODE_ARRAYS if k not in arrays]
    if missing:
        raise SchemaMismatchError(f"tree arrays missing: {missing}")
    n = arrays["children_left"].shape[0]
    for k in ("children_right", "feature", "threshold"):
        if arrays[k].shape != (n,):
            raise SchemaMismatchError(f"tree array '{k}' has shape {arrays[k].shape}, expected ({n},)")
    cl, cr, f = arrays["children_left"], arrays["children_right"], arrays["feature"]
    inner = cl >= 0
    if np.any(cl >= n) or np.any(cr >= n) or np.any((cr >= 0) != inner):
        raise SchemaMismatchError("tree arrays: a child index is out of range or a node has one child")
    if np.any(f[inner] < 0) or np.any(f[inner] >= n_features):
        raise SchemaMismatchError(f"tree arrays: a split feature is outside 0..{n_features - 1}")
    r = arrays["roots"]
    if r.ndim != 1 or np.any(r < 0) or np.any(r >= max(n, 1)):
        raise SchemaMismatchError("tree arrays: a root index is out of range")


def apply(arrays: dict, X: np.ndarray) -> np.ndarray:
    """Leaf index (into the packed arrays) of every sample in every tree: (n_samples, n_trees)."""
    X = np.asarray(X, dtype=np.float32).astype(np.float64)
    cl, cr = arrays["children_left"], arrays["children_right"]
    f, thr = arrays["feature"], arrays["threshold"]
    node = np.broadcast_to(arrays["roots"][None, :], (X.shape[0], arrays["roots"].shape[0])).copy()
    rows = np.arange(X.shape[0])[:, None]
    for _ in range(cl.shape[0] + 1):  # depth is bounded by the node count
        inner = cl[node] >= 0
        if not inner.any():
            return node
        go_left = X[rows, np.where(inner, f[node], 0)] <= thr[node]
        node = np.where(inner, np.where(go_left, cl[node], cr[node]), node)
    raise SchemaMismatchError("tree arrays contain a cycle")
