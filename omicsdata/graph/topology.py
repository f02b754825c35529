"""One topology shared by every sample: encoding, the :class:`Topology` object, reading it from a store."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .. import storage
from ..errors import FormatError, SchemaMismatchError, StoreError
from ..storage.layout import GRAPH_KEY, table_dir

#: Bit codes of ``edge_type``: an edge can be both (code 3).
EDGE_KINDS = {"internal": 1, "ppi": 2}
NODES_TABLE = "nodes"
__all__ = ["EDGE_KINDS", "GRAPH_KEY", "NODES_TABLE"]


def check_edge_index(arr, n_nodes: int, where: str) -> np.ndarray:
    """Validate a COO edge index (``[2, E]`` integers in ``[0, n_nodes)``); return it as int64."""
    a = np.asarray(arr)
    if a.ndim != 2 or a.shape[0] != 2:
        raise FormatError(where, f"edge index must have shape [2, E], got {list(a.shape)}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise FormatError(where, f"edge index must hold integers, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and (a.min() < 0 or a.max() >= n_nodes):
        raise FormatError(where, f"edge index holds node {int(a.max()) if a.max() >= n_nodes else int(a.min())} "
                                 f"outside [0, {n_nodes}) (the number of entities)")
    return a


def _keys(ei: np.ndarray, n: int) -> np.ndarray:
    return ei[0] * np.int64(n) + ei[1]


def encode_topology(edge_index, n_nodes: int, parts: dict[str, np.ndarray] | None = None,
                    where: str = "edge_index") -> dict[str, np.ndarray]:
    """The arrays a store keeps for one topology.

    ``edge_index`` is stored once; ``parts`` (``{"internal": ei, "ppi": ei}``)
    only contribute a per-edge bit code (:data:`EDGE_KINDS`), so an edge
    listed in both the union and a part is not stored twice. Edges of a part
    missing from the union are appended (the union is then their union).
    """
    ei = check_edge_index(edge_index, n_nodes, where)
    etype = np.zeros(ei.shape[1], dtype=np.uint8)
    for kind, part in (parts or {}).items():
        if kind not in EDGE_KINDS:
            raise ValueError(f"unknown edge kind '{kind}' (known: {', '.join(EDGE_KINDS)})")
        p = check_edge_index(part, n_nodes, f"{kind} edge index")
        keys, pkeys = _keys(ei, n_nodes), _keys(p, n_nodes)
        etype[np.isin(keys, pkeys)] |= EDGE_KINDS[kind]
        extra = np.unique(pkeys[~np.isin(pkeys, keys)])
        if extra.size:
            ei = np.concatenate([ei, np.stack([extra // n_nodes, extra % n_nodes])], axis=1)
            etype = np.concatenate([etype, np.full(extra.size, EDGE_KINDS[kind], np.uint8)])
    return {"edge_index": ei, "edge_type": etype, "n_nodes": np.int64(n_nodes)}

@dataclasses.dataclass
class Topology:
    """One graph shared by every sample.

    ``edge_index`` int64 ``[2, E]`` over ``num_nodes`` nodes; ``edge_type``
    bit codes (:data:`EDGE_KINDS`); ``node_index`` maps each node to its
    column in the store (identity unless this is a subgraph).
    """

    edge_index: np.ndarray
    edge_type: np.ndarray
    num_nodes: int
    node_index: np.ndarray

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def only(self, kinds: Iterable[str] | None) -> "Topology":
        """Keep the edges of the given kinds (``"internal"``, ``"ppi"``); ``None`` keeps all."""
        if kinds is None:
            return self
        bits = 0
        for k in kinds:
            if k not in EDGE_KINDS:
                raise ValueError(f"unknown edge kind '{k}' (known: {', '.join(EDGE_KINDS)})")
            bits |= EDGE_KINDS[k]
        keep = (self.edge_type & bits) != 0
        return Topology(self.edge_index[:, keep], self.edge_type[keep], self.num_nodes, self.node_index)

    def subgraph(self, nodes) -> "Topology":
        """The subgraph induced by ``nodes`` (indices into this topology), relabelled 0..k-1 in that order."""
        import torch
        from torch_geometric.utils import subgraph

        nodes = np.asarray(nodes, dtype=np.int64)
        if nodes.size and (nodes.min() < 0 or nodes.max() >= self.num_nodes):
            raise SchemaMismatchError(f"subgraph nodes must lie in [0, {self.num_nodes})")
        # subgraph() relabels by sorted position; map to the caller's order afterwards.
        order = np.argsort(nodes, kind="stable")
        ei, et = subgraph(torch.from_numpy(np.sort(nodes)), torch.from_numpy(self.edge_index),
                          edge_attr=torch.from_numpy(self.edge_type.astype(np.int64)), relabel_nodes=True,
                          num_nodes=self.num_nodes)
        ei = order[ei.numpy()] if nodes.size else ei.numpy()
        return Topology(np.ascontiguousarray(ei, dtype=np.int64), et.numpy().astype(np.uint8), int(nodes.size),
                        self.node_index[nodes])


def read_topology(store, modality: str = "expression", kinds: Iterable[str] | None = None) -> Topology:
    """Read the topology of ``modality`` from a store (path, name, or MuData opened with :func:`omicsdata.load`)."""
    g = storage.open(store).graph_arrays(modality)
    n = g["n_nodes"]
    return Topology(g["edge_index"], g["edge_type"], n, np.arange(n, dtype=np.int64)).only(kinds)


def read_node_text(store, columns: Sequence[str] | None = None, nodes=None) -> pd.DataFrame:
    """Node annotations (``entity_id``, ``name``, ``description``, ``biology``) from the store's Parquet table.

    ``nodes`` (column indices) keeps those rows, in that order.
    """
    import pyarrow.dataset as ds

    root = Path(storage.open(store).require_path())
    folder = root / table_dir(NODES_TABLE)
    if not folder.is_dir():
        raise StoreError(f"{root}: no node text table ({table_dir(NODES_TABLE)})")
    tab = ds.dataset(str(folder), format="parquet").to_table(columns=list(columns) if columns else None)
    df = tab.to_pandas()
    if nodes is not None:
        df = df.iloc[np.asarray(nodes, dtype=np.int64)].reset_index(drop=True)
    return df
