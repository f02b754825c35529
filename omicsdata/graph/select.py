"""Choosing graph nodes (by gene list, pathway, top-k variance, k hops) and reading cells' rows."""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np
import pandas as pd

from .. import storage
from ..errors import SchemaMismatchError
from .topology import read_node_text, read_topology


def _match_names(mdata, modality: str, names: Iterable[str]) -> tuple[np.ndarray, list[str]]:
    var = mdata.mod[modality].var
    lut: dict[str, int] = {}
    cols = [pd.Index(var.index.astype(str))]
    if "name" in var.columns:
        cols.append(pd.Index(var["name"].astype(str)))
    for col in reversed(cols):  # ids win over names
        for i, v in enumerate(col):
            lut[v.lower()] = i
    found, missing = [], []
    for n in names:
        i = lut.get(str(n).lower())
        (found.append(i) if i is not None else missing.append(str(n)))
    return np.array(sorted(set(found)), dtype=np.int64), missing


def _row_variance(reader: "RowReader", rows: np.ndarray, block: int = 512, transform: str | None = "log1p") -> np.ndarray:
    s = s2 = None
    for start in range(0, len(rows), block):
        X = reader.read(rows[start:start + block])
        X = apply_transform(X, transform)
        s = X.sum(0) if s is None else s + X.sum(0)
        s2 = (X * X).sum(0) if s2 is None else s2 + (X * X).sum(0)
    n = max(len(rows), 1)
    mean = s / n
    return np.asarray(s2 / n - mean * mean).ravel()


def select_nodes(mdata, *, genes: Iterable[str] | None = None, pathway=None, top_k: int | None = None,
                 split: str | None = "train", hops: int = 0, modality: str = "expression",
                 transform: str | None = "log1p", rows=None) -> np.ndarray:
    """Pick graph nodes (store columns), sorted.

    genes:   entity ids or names (``var_names`` or ``var["name"]``, case-insensitive).
    pathway: a list of member ids/names, or a string matched (case-insensitive
             substring) against the node text ``name`` and ``description``.
    top_k:   the ``k`` entities with the largest variance (after ``transform``)
             over the cells of ``split`` (``None``: all cells) - computed on
             training cells by default so held-out cells do not steer it;
             ``rows`` (store row positions) overrides ``split``.
    hops:    then add every node within ``hops`` edges (k-hop neighbourhood).

    Criteria given together are intersected (e.g. top-k within a pathway).
    """
    st = storage.open(mdata)
    mdata = st.mudata
    n_nodes = st.reader(modality).shape[1]
    keep = np.arange(n_nodes, dtype=np.int64)
    if genes is not None:
        idx, missing = _match_names(mdata, modality, genes)
        if idx.size == 0:
            raise SchemaMismatchError(f"none of the {len(list(genes))} genes given match an entity of modality "
                                      f"'{modality}' (first missing: {missing[:5]})")
        if missing:
            warnings.warn(f"{len(missing)} of the genes given are not entities of '{modality}' "
                          f"(first: {missing[:5]}); they are skipped", stacklevel=2)
        keep = np.intersect1d(keep, idx)
    if pathway is not None:
        if isinstance(pathway, str):
            text = read_node_text(st, columns=["name", "description"])
            pat = pathway.lower()
            hit = (text["name"].astype(str).str.lower().str.contains(pat, regex=False)
                   | text["description"].astype(str).str.lower().str.contains(pat, regex=False))
            idx = np.flatnonzero(hit.to_numpy())
            if idx.size == 0:
                raise SchemaMismatchError(f"pathway '{pathway}': no node name or description mentions it")
        else:
            idx, missing = _match_names(mdata, modality, pathway)
            if idx.size == 0:
                raise SchemaMismatchError(f"pathway members match no entity of modality '{modality}'")
        keep = np.intersect1d(keep, idx)
    if top_k is not None:
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        if rows is None:
            rows = st.rows(split if "split" in st.obs else None)
        rows = np.asarray(rows, dtype=np.int64)
        reader = RowReader(st, modality)
        var = _row_variance(reader, rows, transform=transform)[keep]
        order = np.lexsort((keep, -var))  # largest variance first; ties by index
        keep = np.sort(keep[order[:top_k]])
    if hops > 0:
        import torch
        from torch_geometric.utils import k_hop_subgraph

        topo = read_topology(st, modality)
        subset, *_ = k_hop_subgraph(torch.from_numpy(keep), hops, torch.from_numpy(topo.edge_index),
                                    num_nodes=topo.num_nodes, flow="target_to_source")
        keep = np.union1d(keep, subset.numpy())
    return keep


def apply_transform(X: np.ndarray, transform: str | None) -> np.ndarray:
    """``None``: as stored; ``"log1p"``: log(1+x); ``"cp10k_log1p"``: scale each row to sum 1e4, then log1p."""
    if transform is None:
        return X
    if transform == "log1p":
        return np.log1p(np.maximum(X, 0), dtype=np.float32)
    if transform == "cp10k_log1p":
        s = X.sum(1, keepdims=True)
        return np.log1p(np.maximum(X, 0) * (1e4 / np.where(s > 0, s, 1)), dtype=np.float32)
    raise ValueError(f"unknown transform '{transform}' (use None, 'log1p' or 'cp10k_log1p')")


class RowReader:
    """Blocks of rows (any order) of one modality as dense float32: a view of :meth:`Store.read_rows`
    (store-backed data reads the Zarr arrays, in-memory data its matrix)."""

    def __init__(self, mdata, modality: str = "expression"):
        self.store, self.modality = storage.open(mdata), modality
        self.shape = self.store.reader(modality).shape

    def read(self, rows) -> np.ndarray:
        """Rows (store indices, any order) as a dense float32 ``[len(rows), n_features]`` array."""
        return self.store.read_rows(self.modality, rows)
