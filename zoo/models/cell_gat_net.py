"""The torch pieces of :class:`zoo.models.cell_gat.CellGAT`: its module, a preprocessor that lets
the sampled subgraph through, and the neighbour-sampled training batches."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..preprocess import Preprocessor
from .cell_graph import EdgeFeatureNet, RowBlocks, TorchNeighborSampler, knn


class GraphPreprocessor(Preprocessor):
    """The fitted :class:`Preprocessor` that also passes a sampled subgraph's ``graph_*`` keys through."""

    def __call__(self, raw: dict, alignment: dict | None = None) -> dict:
        out = super().__call__(raw, alignment)
        out.update({k: v for k, v in raw.items() if k.startswith("graph_")})
        return out


class CellGATNet(nn.Module):
    """Encoder, self-supervised edge features, residual GAT layers, head; plus the kNN index buffers."""

    def __init__(self, modality: str, n_features: int, n_classes: int, n_train: int, n_pcs: int, k: int,
                 hidden: int, heads: int, n_layers: int, edge_dim: int, dropout: float):
        from torch_geometric.nn import GATConv

        super().__init__()
        self.modality, self.k = modality, int(k)
        self.register_buffer("pca_mean", torch.zeros(n_features))
        self.register_buffer("pca_components", torch.zeros(n_features, n_pcs))
        self.register_buffer("index_z", torch.zeros(n_train, n_pcs))
        self.register_buffer("cache", torch.zeros(n_layers, n_train, hidden))
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ELU(), nn.Dropout(dropout))
        self.edge_features = EdgeFeatureNet(n_pcs, edge_dim)
        self.convs = nn.ModuleList(GATConv(hidden, hidden // heads, heads=heads, edge_dim=edge_dim, dropout=dropout,
                                           add_self_loops=True, fill_value="mean") for _ in range(n_layers))
        self.drop = nn.Dropout(dropout)
        self.embedding = nn.Identity()  # hook point: final per-cell representation (batch, hidden)
        self.head = nn.Linear(hidden, n_classes)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """PCA embedding of preprocessed cells (the kNN space)."""
        return (x - self.pca_mean) @ self.pca_components

    def layer(self, i: int, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """GAT layer ``i`` with a residual connection."""
        return h + self.drop(F.elu(self.convs[i](h, edge_index, edge_attr)))

    def _out(self, h: torch.Tensor) -> dict:
        emb = self.embedding(h)
        return {"logits": self.head(emb), "embedding": emb}

    def forward(self, inputs: dict) -> dict:
        """A sampled training subgraph (``graph_edge_index``, seeds first) or new cells attached to the index."""
        x = inputs[self.modality]
        if "graph_edge_index" in inputs:
            ei, n_seed = inputs["graph_edge_index"], int(inputs["graph_n_seed"])
            z = self.project(x)
            with torch.no_grad():
                ea = self.edge_features(z[ei[0]], z[ei[1]])
            h = self.encoder(x)
            for i in range(len(self.convs)):
                h = self.layer(i, h, ei, ea)
            return self._out(h[:n_seed])
        return self._out(self.attach(x))

    def attach(self, x: torch.Tensor) -> torch.Tensor:
        """Final representation of new cells, each linked to its ``k`` nearest training cells."""
        B = x.shape[0]
        z = self.project(x)
        nbr, _ = knn(z.detach(), self.index_z, self.k)
        uniq, inv = torch.unique(nbr, return_inverse=True)
        kk = nbr.shape[1]
        dst = torch.arange(B, device=x.device).repeat_interleave(kk)
        ei = torch.stack([B + inv.reshape(-1), dst])
        ea = self.edge_features(self.index_z[nbr.reshape(-1)], z[dst])
        h = self.encoder(x)
        for i in range(len(self.convs)):
            h = self.layer(i, torch.cat([h, self.cache[i][uniq]]), ei, ea)[:B]
        return h

    @torch.no_grad()
    def refresh_cache(self, blocks: RowBlocks, pre: Preprocessor, edge_index: torch.Tensor, chunk: int = 65536):
        """Recompute ``cache`` (each training cell's input to every GAT layer) on the full training graph.

        ``edge_index`` comes from :func:`~zoo.models.cell_graph.knn_edges` (edges grouped by target
        cell, ``k`` each), so targets are processed in chunks with all their edges.
        """
        was = self.training
        self.eval()
        h = torch.cat([self.encoder(pre(raw)[self.modality]) for raw in blocks])
        n, k = h.shape[0], edge_index.shape[1] // max(1, h.shape[0])
        for i in range(len(self.convs)):
            self.cache[i].copy_(h)
            if i == len(self.convs) - 1:
                break
            nxt = torch.empty_like(h)
            for a in range(0, n, chunk):
                b = min(n, a + chunk)
                ei = edge_index[:, a * k:b * k]
                ea = self.edge_features(self.index_z[ei[0]], self.index_z[ei[1]])
                nxt[a:b] = self.layer(i, h, ei, ea)[a:b]
            h = nxt
        self.train(was)


class GraphBatches:
    """Training batches: ``NeighborLoader`` subgraphs of the training kNN graph, node features from the store."""

    def __init__(self, blocks: RowBlocks, edge_index: torch.Tensor, seeds: np.ndarray, num_neighbors, batch_size: int,
                 seed: int):
        from torch_geometric.data import Data

        self.blocks, self.seeds = blocks, torch.as_tensor(seeds, dtype=torch.long)
        self.num_neighbors, self.batch_size, self.seed, self.epoch = list(num_neighbors), int(batch_size), seed, 0
        self.data = Data(edge_index=edge_index.cpu(), num_nodes=len(blocks.rows))
        self.sampler = TorchNeighborSampler(self.data, self.num_neighbors, seed=seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.seeds) / self.batch_size)

    def __iter__(self):
        from torch_geometric.loader import NeighborLoader

        s = int(self.seed) * 1_000_003 + self.epoch
        self.sampler.reseed(s)
        loader = NeighborLoader(self.data, self.num_neighbors, batch_size=self.batch_size, input_nodes=self.seeds,
                                shuffle=True, neighbor_sampler=self.sampler, generator=torch.Generator().manual_seed(s))
        dev = self.blocks.device
        for b in loader:
            raw = self.blocks.read(b.n_id.numpy())
            raw["index"] = raw["index"][:b.batch_size]
            raw["graph_edge_index"] = b.edge_index.to(dev)
            raw["graph_n_seed"] = int(b.batch_size)
            yield raw
