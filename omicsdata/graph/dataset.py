"""Batches of cell graphs over one shared topology: :class:`CellGraphDataset` and :class:`CellGraphBatch`."""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

from .. import storage
from ..errors import SchemaMismatchError
from .select import RowReader, apply_transform
from .topology import Topology, read_topology


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
        st = storage.open(mdata)
        if modality not in st.modalities:
            raise SchemaMismatchError(f"the data has no modality '{modality}' (has: {', '.join(st.modalities)})")
        obs = st.obs
        mask = np.zeros(st.n_obs, dtype=bool)
        mask[st.rows(split)] = True
        mask &= st.presence(modality)
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
        topo = topology if topology is not None else read_topology(st, modality, kinds)
        n_all = st.reader(modality).shape[1]
        if topo.num_nodes != n_all and topology is None:
            raise SchemaMismatchError(f"stored graph has {topo.num_nodes} nodes, modality '{modality}' {n_all} columns")
        if nodes is not None:
            topo = topo.subgraph(nodes)
        self.topology = topo
        self.nodes = None if nodes is None else np.asarray(nodes, dtype=np.int64)
        self.edge_index = torch.from_numpy(topo.edge_index)  # shared by every batch
        self.transform = transform
        self.reader = RowReader(st, modality)

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
