"""Graph datasets whose samples share one topology (OmniCellTOSG cells).

Every cell is a graph over the *same* signaling network; only the node
features (that cell's abundances) differ. This module keeps that structure
instead of copying it per cell:

* **Storage.** A store holds the topology once, as Zarr arrays
  ``mod/<modality>/uns/graph/{edge_index,edge_type}`` (``edge_index`` int64
  ``[2, E]`` over the modality's columns; ``edge_type`` a bit code per edge,
  :data:`EDGE_KINDS`), and the node text as the Parquet table ``tables/nodes``.
  :func:`encode_topology` builds those arrays; :func:`read_topology` and
  :func:`read_node_text` read them back.

* **Subsetting.** 533k-node graphs are heavy; :func:`select_nodes` picks
  entities by a gene list, a pathway (text match on the node annotations, or
  a list of members) or the top-k most variable entities on the training
  split, optionally widened by k hops; :meth:`Topology.subgraph` returns the
  induced subgraph, relabelled (``torch_geometric.utils.subgraph``).

* **Batching.** :class:`CellGraphDataset` reads a batch of B cells as one
  dense block and yields a :class:`CellGraphBatch`: ``x`` of shape
  ``[B, N, F]`` and *one* ``edge_index`` ``[2, E]`` (the same tensor object
  in every batch, never copied). That is PyG's *static graph* layout:
  message-passing layers with static-graph support (``GCNConv``,
  ``GraphConv``, ``SAGEConv``, ...) take ``conv(batch.x, batch.edge_index)``
  directly and return ``[B, N, C]``. For layers without it (``GATConv``),
  :meth:`CellGraphBatch.to_pyg` builds the usual disjoint-union
  :class:`torch_geometric.data.Batch` (offset edge index) on the fly, for
  that batch only.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import FormatError, SchemaMismatchError, StoreError

#: Bit codes of ``edge_type``: an edge can be both (code 3).
EDGE_KINDS = {"internal": 1, "ppi": 2}
GRAPH_KEY = "graph"
NODES_TABLE = "nodes"


# -- topology encoding / storage ---------------------------------------------------------
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


def _store_root(store) -> str:
    if isinstance(store, (str, Path)):
        return str(store)
    path = getattr(store, "uns", {}).get("omicsdata_path")
    if path is None:
        raise StoreError("this MuData was not opened from an omicsdata store (no uns['omicsdata_path']); "
                         "pass the store path instead")
    return str(path)


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
    """Read the topology of ``modality`` from a store (path or MuData opened with :func:`omicsdata.load`)."""
    import zarr

    root = _store_root(store)
    try:
        g = zarr.open_group(root, mode="r", zarr_format=3)[f"mod/{modality}/uns/{GRAPH_KEY}"]
        ei = np.asarray(g["edge_index"][...], dtype=np.int64)
        et = np.asarray(g["edge_type"][...], dtype=np.uint8)
        n = int(np.asarray(g["n_nodes"][...]))
    except KeyError:
        raise StoreError(f"{root}: no graph stored for modality '{modality}' "
                         f"(expected mod/{modality}/uns/{GRAPH_KEY}/edge_index)") from None
    return Topology(ei, et, n, np.arange(n, dtype=np.int64)).only(kinds)


def read_node_text(store, columns: Sequence[str] | None = None, nodes=None) -> pd.DataFrame:
    """Node annotations (``entity_id``, ``name``, ``description``, ``biology``) from the store's Parquet table.

    ``nodes`` (column indices) keeps those rows, in that order.
    """
    import pyarrow.dataset as ds

    root = Path(_store_root(store))
    folder = root / "tables" / NODES_TABLE
    if not folder.is_dir():
        raise StoreError(f"{root}: no node text table (tables/{NODES_TABLE})")
    tab = ds.dataset(str(folder), format="parquet").to_table(columns=list(columns) if columns else None)
    df = tab.to_pandas()
    if nodes is not None:
        df = df.iloc[np.asarray(nodes, dtype=np.int64)].reset_index(drop=True)
    return df


# -- entity subsetting -----------------------------------------------------------------
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
    n_nodes = mdata.mod[modality].n_vars
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
            text = read_node_text(mdata, columns=["name", "description"])
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
            rows = np.arange(mdata.n_obs)
            if split is not None and "split" in mdata.obs:
                rows = np.flatnonzero(mdata.obs["split"].astype(str).to_numpy() == split)
        rows = np.asarray(rows, dtype=np.int64)
        reader = RowReader(mdata, modality)
        var = _row_variance(reader, rows, transform=transform)[keep]
        order = np.lexsort((keep, -var))  # largest variance first; ties by index
        keep = np.sort(keep[order[:top_k]])
    if hops > 0:
        import torch
        from torch_geometric.utils import k_hop_subgraph

        topo = read_topology(mdata, modality)
        subset, *_ = k_hop_subgraph(torch.from_numpy(keep), hops, torch.from_numpy(topo.edge_index),
                                    num_nodes=topo.num_nodes, flow="target_to_source")
        keep = np.union1d(keep, subset.numpy())
    return keep


# -- reading rows ------------------------------------------------------------------------
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
    """Read blocks of rows of one modality as dense float32, from the store's Zarr arrays
    (dense: zarr orthogonal selection; CSR: anndata's backed sparse dataset) or from memory."""

    def __init__(self, mdata, modality: str = "expression"):
        self.modality = modality
        adata = mdata.mod[modality]
        self.shape = adata.shape
        self._mem = None
        path = mdata.uns.get("omicsdata_path") if hasattr(mdata, "uns") else None
        X = adata.X
        in_memory = isinstance(X, np.ndarray) or sp.issparse(X)
        if in_memory or path is None:
            self._mem = X if (isinstance(X, np.ndarray) or sp.issparse(X)) else np.asarray(X)
            return
        import anndata as ad
        import zarr

        self._path = str(path)
        g = zarr.open_group(self._path, mode="r", zarr_format=3)[f"mod/{modality}"]
        enc = dict(g["X"].attrs).get("encoding-type", "array")
        if enc in ("csr_matrix", "csc_matrix"):
            self._sparse = ad.io.sparse_dataset(g["X"])
            self._dense = None
        else:
            self._dense = g["X"]
            self._sparse = None

    def read(self, rows) -> np.ndarray:
        """Rows (store indices, any order) as a dense float32 ``[len(rows), n_features]`` array."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        if self._mem is not None:
            block = self._mem[srt]
        elif self._sparse is not None:
            block = self._sparse[srt]
        else:
            block = self._dense.get_orthogonal_selection((srt, slice(None)))
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        out = np.empty_like(block, dtype=np.float32)
        out[order] = block
        return out


# -- batches -----------------------------------------------------------------------------
@dataclasses.dataclass
class CellGraphBatch:
    """B graphs over one shared topology.

    x:          float32 ``[B, N, F]`` node features (PyG static-graph layout)
    edge_index: int64 ``[2, E]``, the same tensor for every batch (not copied)
    y:          int64 ``[B]`` class codes (or ``None``)
    index:      int64 ``[B]`` store rows of the cells
    """

    x: "object"
    edge_index: "object"
    y: "object" = None
    index: "object" = None

    @property
    def num_graphs(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[1])

    def to(self, device, non_blocking: bool = False) -> "CellGraphBatch":
        mv = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return CellGraphBatch(mv(self.x), mv(self.edge_index), mv(self.y), mv(self.index))

    def to_pyg(self):
        """The disjoint-union :class:`torch_geometric.data.Batch` of this batch (offset edge
        index of ``B*E`` edges, built now), for layers without static-graph support."""
        import torch
        from torch_geometric.data import Batch

        B, N = self.num_graphs, self.num_nodes
        E = self.edge_index.shape[1]
        offs = torch.arange(B, device=self.edge_index.device) * N
        ei = (self.edge_index.view(2, 1, E) + offs.view(1, B, 1)).reshape(2, B * E)  # one pass, graph-major
        batch = torch.arange(B, device=self.x.device).repeat_interleave(N)
        ptr = torch.arange(B + 1, device=self.x.device) * N
        out = Batch(x=self.x.reshape(B * N, -1), edge_index=ei, batch=batch, ptr=ptr)
        if self.y is not None:
            out.y = self.y
        out._num_graphs = B
        return out


class CellGraphDataset:
    """Map-style dataset of cell graphs from a store: item ``i`` is cell ``rows[i]``.

    Index it with a *list* of positions to read a whole batch in one go
    (``DataLoader(ds, sampler=BatchSampler(...), batch_size=None)`` does
    that; :meth:`loader` builds it). Map-style, so ``DataLoader`` workers and
    a ``DistributedSampler`` split it without further sharding code.

    mdata:     a store opened with :func:`omicsdata.load` (lazy) or in memory
    split:     keep the cells of this split (``obs["split"]``); ``None``: all
    label:     obs column to predict; cells with a missing label are dropped;
               classes are the sorted labels of the *whole* store (``classes_``)
    nodes:     store columns to keep (:func:`select_nodes`); ``None``: all
    kinds:     edge kinds to keep (``"internal"``, ``"ppi"``); ``None``: all
    transform: see :func:`apply_transform` (``"log1p"`` by default)
    """

    def __init__(self, mdata, split: str | None = None, label: str | None = None, nodes=None,
                 kinds: Iterable[str] | None = None, transform: str | None = "log1p",
                 modality: str = "expression", classes: Sequence | None = None, topology: Topology | None = None):
        import torch

        self.modality = modality
        if modality not in mdata.mod:
            raise SchemaMismatchError(f"the data has no modality '{modality}' (has: {', '.join(mdata.mod)})")
        obs = mdata.obs
        mask = np.ones(mdata.n_obs, dtype=bool)
        if split is not None:
            if "split" not in obs:
                raise SchemaMismatchError("obs has no 'split' column; pass split=None")
            mask &= obs["split"].astype(str).to_numpy() == split
        pres = f"has_{modality}"
        if pres in obs:
            mask &= obs[pres].to_numpy(dtype=bool)
        self.label = label
        if label is not None:
            if label not in obs:
                raise SchemaMismatchError(f"obs has no label column '{label}' (columns: {', '.join(map(str, obs.columns))})")
            lab = obs[label]
            ok = lab.notna().to_numpy() & (lab.astype(str).str.strip() != "").to_numpy()
            mask &= ok
            self.classes_ = np.array(sorted(map(str, lab[ok].unique())) if classes is None else list(classes), dtype=object)
            lut = {c: i for i, c in enumerate(self.classes_)}
            self._codes = lab.astype(str).map(lambda v: lut.get(v, -1)).to_numpy(dtype=np.int64)
            mask &= self._codes >= 0
        else:
            self.classes_ = None
            self._codes = None
        self.rows = np.flatnonzero(mask)
        topo = topology if topology is not None else read_topology(mdata, modality, kinds)
        n_all = mdata.mod[modality].n_vars
        if topo.num_nodes != n_all and topology is None:
            raise SchemaMismatchError(f"stored graph has {topo.num_nodes} nodes, modality '{modality}' {n_all} columns")
        if nodes is not None:
            topo = topo.subgraph(nodes)
        self.topology = topo
        self.nodes = None if nodes is None else np.asarray(nodes, dtype=np.int64)
        self.edge_index = torch.from_numpy(topo.edge_index)  # shared by every batch
        self.transform = transform
        self.reader = RowReader(mdata, modality)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def num_nodes(self) -> int:
        return self.topology.num_nodes

    def features(self, positions) -> np.ndarray:
        """Dense ``[B, N]`` features of the cells at ``positions`` (transformed, node-subset)."""
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        X = apply_transform(self.reader.read(rows), self.transform)
        if self.nodes is not None:
            X = X[:, self.nodes]
        return np.ascontiguousarray(X, dtype=np.float32)

    def __getitem__(self, positions) -> CellGraphBatch:
        import torch

        pos = np.atleast_1d(np.asarray(positions, dtype=np.int64))  # an int is a batch of one
        X = torch.from_numpy(self.features(pos)).unsqueeze(-1)
        rows = self.rows[pos]
        y = torch.from_numpy(self._codes[rows]) if self._codes is not None else None
        return CellGraphBatch(X, self.edge_index, y, torch.from_numpy(rows))

    def loader(self, batch_size: int = 32, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
               num_workers: int = 0, sampler=None, **kw):
        """A :class:`torch.utils.data.DataLoader` yielding :class:`CellGraphBatch` of ``batch_size`` cells.

        ``sampler`` (e.g. ``DistributedSampler(ds)``) replaces the default
        sequential/seeded-random order.
        """
        import torch
        from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

        if sampler is None:
            if shuffle:
                g = torch.Generator()
                g.manual_seed(seed)
                sampler = RandomSampler(range(len(self)), generator=g)
            else:
                sampler = SequentialSampler(range(len(self)))
        bs = BatchSampler(sampler, batch_size, drop_last)
        return DataLoader(self, sampler=bs, batch_size=None, num_workers=num_workers, **kw)
