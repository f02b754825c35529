"""Graph parts of :class:`zoo.CellGAT`: row blocks from the store, PCA, kNN, edge features, neighbour sampling.

* :class:`RowBlocks` - raw batches ``{modality, <modality>_mask, index}`` read
  block by block through :meth:`omicsdata.storage.Store.read_rows` (bounded
  memory; also the validation source of the trainer).
* :func:`fit_pca` - a PCA basis from a seeded subsample of training cells.
* :func:`knn` - exact k nearest neighbours by Euclidean distance, blockwise
  over queries and references (never a full ``n x n`` matrix).
* :class:`EdgeFeatureNet` - edge features of a pair of cells from their PCA
  embeddings, learned by the self-supervised pretext :func:`train_edge_pretext`
  (a real kNN edge vs. a corrupted pair).
* :class:`TorchNeighborSampler` - torch_geometric's ``NeighborSampler`` with a
  pure-torch sampling routine used when neither ``pyg-lib`` nor
  ``torch-sparse`` is installed (the compiled routines are used when they are).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch_geometric.typing as pyg_typing
from torch import nn
from torch_geometric.sampler import NeighborSampler, SamplerOutput

# --------------------------------------------------------------------------- row blocks


class RowBlocks:
    """Raw batches of ``rows`` (store row positions) of one modality, read in blocks from the store.

    With ``cache`` (a float32 tensor holding exactly those rows, raw) nothing is
    read again. Has ``set_epoch``/``__len__`` so the trainer can use it as a
    validation source.
    """

    def __init__(self, store, modality: str, rows: np.ndarray, block: int, device, cache: torch.Tensor | None = None):
        self.store, self.modality, self.rows = store, modality, np.asarray(rows, dtype=np.int64)
        self.block, self.device, self.cache = max(1, int(block)), torch.device(device), cache
        self.presence = np.asarray(store.presence(modality), dtype=bool)

    def set_epoch(self, epoch: int) -> None:
        """Row blocks come in a fixed order; nothing to reseed."""

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.block)

    def read(self, pos: np.ndarray) -> dict:
        """The raw batch of ``self.rows[pos]``."""
        rows = self.rows[pos]
        x = self.cache[torch.as_tensor(pos)] if self.cache is not None else \
            torch.from_numpy(self.store.read_rows(self.modality, rows))
        m = self.modality
        return {m: x.to(self.device, torch.float32), f"{m}_mask": torch.from_numpy(self.presence[rows]).to(self.device),
                "index": torch.from_numpy(rows).to(self.device)}

    def __iter__(self):
        for s in range(0, len(self.rows), self.block):
            yield self.read(np.arange(s, min(s + self.block, len(self.rows))))


# --------------------------------------------------------------------------- PCA and kNN


def fit_pca(x: torch.Tensor, n_pcs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean (p,), components (p, q))`` of the rows of ``x`` by randomized SVD, ``q = min(n_pcs, n, p)``."""
    x = x.double()
    mean = x.mean(0)
    q = int(max(1, min(n_pcs, x.shape[0] - 1, x.shape[1])))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        _, _, v = torch.pca_lowrank(x - mean, q=q, center=False, niter=6)
    finally:
        torch.random.set_rng_state(state)
    return mean.float(), v[:, :q].float().contiguous()


@torch.no_grad()
def knn(query: torch.Tensor, ref: torch.Tensor, k: int, exclude_self: bool = False, block: int = 4096
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, distances)`` (n_query, k) of the ``k`` nearest ``ref`` rows of each query row.

    ``exclude_self``: ``query`` is ``ref`` and a row is not its own neighbour.
    Blockwise over queries and references, so memory is ``block x block``.
    """
    k_eff = min(int(k), ref.shape[0] - (1 if exclude_self else 0))
    if k_eff < 1:
        raise ValueError(f"kNN needs at least {k} reference cells, got {ref.shape[0]}")
    out_i, out_d = [], []
    for qs in range(0, query.shape[0], block):
        q = query[qs:qs + block]
        best_d = torch.full((q.shape[0], 0), math.inf, device=q.device)
        best_i = torch.zeros((q.shape[0], 0), dtype=torch.long, device=q.device)
        for rs in range(0, ref.shape[0], 8 * block):
            r = ref[rs:rs + 8 * block]
            d = torch.cdist(q, r)
            if exclude_self:
                qi = torch.arange(qs, qs + q.shape[0], device=q.device)
                hit = (qi >= rs) & (qi < rs + r.shape[0])
                d[hit.nonzero().squeeze(1), (qi[hit] - rs)] = math.inf
            kk = min(k_eff, d.shape[1])
            dd, ii = torch.topk(d, kk, dim=1, largest=False)
            best_d = torch.cat([best_d, dd], 1)
            best_i = torch.cat([best_i, ii + rs], 1)
            if best_d.shape[1] > k_eff:
                best_d, sel = torch.topk(best_d, k_eff, dim=1, largest=False)
                best_i = best_i.gather(1, sel)
        order = best_d.argsort(1)
        out_d.append(best_d.gather(1, order))
        out_i.append(best_i.gather(1, order))
    return torch.cat(out_i), torch.cat(out_d)


def knn_edges(nbr: torch.Tensor) -> torch.Tensor:
    """``edge_index`` (2, n*k) from a neighbour table (n, k): messages flow neighbour -> cell."""
    n, k = nbr.shape
    dst = torch.arange(n, device=nbr.device).repeat_interleave(k)
    return torch.stack([nbr.reshape(-1), dst])


# --------------------------------------------------------------------------- edge features


class EdgeFeatureNet(nn.Module):
    """Edge features of a pair of cells from their PCA embeddings: ``MLP([|z_i - z_j|, z_i * z_j])``.

    Symmetric in the two cells. ``pretext`` scores "real kNN edge" vs.
    "corrupted pair" for the self-supervised stage.
    """

    def __init__(self, n_pcs: int, edge_dim: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * n_pcs, hidden), nn.ELU(), nn.Linear(hidden, edge_dim), nn.Tanh())
        self.pretext = nn.Linear(edge_dim, 1)

    def forward(self, z_src: torch.Tensor, z_dst: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([(z_src - z_dst).abs(), z_src * z_dst], 1))


def _pretext_pairs(nbr: torch.Tensor, n_pairs: int, gen: torch.Generator):
    """Positive kNN pairs and as many corrupted ones (half random cells, half neighbours of neighbours)."""
    n, k = nbr.shape
    i = torch.randint(0, n, (n_pairs,), generator=gen)
    pos_j = nbr[i, torch.randint(0, k, (n_pairs,), generator=gen)]
    half = n_pairs // 2
    rand_j = torch.randint(0, n, (half,), generator=gen)
    hop2 = nbr[pos_j[half:], torch.randint(0, k, (n_pairs - half,), generator=gen)]
    neg_j = torch.cat([rand_j, hop2])
    direct = (nbr[i] == neg_j.unsqueeze(1)).any(1) | (neg_j == i)  # a corrupted pair that is a real edge: drop
    src = torch.cat([pos_j, neg_j[~direct]])
    dst = torch.cat([i, i[~direct]])
    y = torch.cat([torch.ones(n_pairs), torch.zeros(int((~direct).sum()))])
    return src, dst, y


def train_edge_pretext(net: EdgeFeatureNet, z: torch.Tensor, nbr: torch.Tensor, epochs: int, lr: float,
                       seed: int, batch: int = 4096) -> dict:
    """Train ``net`` to tell real kNN edges from corrupted pairs; returns held-out pretext accuracy.

    ``z``: training cells' PCA embeddings (n, q); ``nbr``: their kNN table
    (n, k). 20% of a fresh draw of pairs is held out for the accuracy.
    """
    gen = torch.Generator().manual_seed(int(seed))
    dev = z.device
    nbr_c = nbr.cpu()
    n_pairs = max(batch, min(nbr.numel(), 200_000))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    lossf = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(int(epochs)):
        src, dst, y = _pretext_pairs(nbr_c, n_pairs, gen)
        perm = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), batch):
            sel = perm[s:s + batch]
            logit = net.pretext(net(z[src[sel].to(dev)], z[dst[sel].to(dev)])).squeeze(1)
            loss = lossf(logit, y[sel].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    src, dst, y = _pretext_pairs(nbr_c, max(1000, n_pairs // 5), gen)
    with torch.no_grad():
        pred = net.pretext(net(z[src.to(dev)], z[dst.to(dev)])).squeeze(1) > 0
    acc = float((pred.cpu().float() == y).float().mean())
    return {"pretext_accuracy": acc, "pretext_positive_share": float(y.mean()), "pretext_pairs": int(len(y))}


# --------------------------------------------------------------------------- neighbour sampling


class TorchNeighborSampler(NeighborSampler):
    """``NeighborSampler`` for homogeneous graphs that falls back to a pure-torch routine.

    Directional sampling without replacement, hop by hop: every node reached
    in the previous hop draws up to ``num_neighbors[h]`` of its incoming edges
    uniformly (``-1``: all). Seed nodes come first in the output, then new
    nodes in order of discovery, as the compiled routines return them.
    """

    def __init__(self, data, num_neighbors, seed: int = 0, **kw):
        import warnings

        with warnings.catch_warnings():  # torch_geometric warns that the compiled routines are absent
            warnings.simplefilter("ignore", UserWarning)
            super().__init__(data, num_neighbors, **kw)
        self.generator = torch.Generator().manual_seed(int(seed))

    def reseed(self, seed: int) -> None:
        """Restart the fallback routine's random stream (one seed per epoch)."""
        self.generator.manual_seed(int(seed))

    def _sample(self, seed, seed_time=None, **kwargs):
        if isinstance(seed, dict) or pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE:
            return super()._sample(seed, seed_time, **kwargs)
        colptr, row = self.colptr, self.row
        n_nodes = colptr.numel() - 1
        local = torch.full((n_nodes,), -1, dtype=torch.long)
        nodes = seed.to(torch.long)
        local[nodes] = torch.arange(nodes.numel())
        frontier = nodes
        rows, cols, edges = [], [], []
        n_nodes_hop, n_edges_hop = [nodes.numel()], []
        for fanout in self.num_neighbors.get_mapped_values():
            start, deg = colptr[frontier], colptr[frontier + 1] - colptr[frontier]
            if frontier.numel() == 0 or int(deg.sum()) == 0:
                n_nodes_hop.append(0)
                n_edges_hop.append(0)
                frontier = frontier[:0]
                continue
            seg = torch.repeat_interleave(torch.arange(frontier.numel()), deg)
            first = torch.cumsum(deg, 0) - deg
            e = start[seg] + (torch.arange(seg.numel()) - first[seg])
            if fanout >= 0:
                key = seg.double() + torch.rand(seg.numel(), generator=self.generator, dtype=torch.float64)
                order = key.argsort()
                e, seg = e[order], seg[order]
                keep = (torch.arange(seg.numel()) - first[seg]) < fanout
                e, seg = e[keep], seg[keep]
            src = row[e].to(torch.long)
            new = src[local[src] < 0]
            if new.numel():
                uniq, inv = np.unique(new.numpy(), return_index=True)
                new = torch.from_numpy(uniq[np.argsort(inv)])
                local[new] = torch.arange(nodes.numel(), nodes.numel() + new.numel())
                nodes = torch.cat([nodes, new])
            rows.append(local[src])
            cols.append(local[frontier[seg]])
            edges.append(e)
            n_nodes_hop.append(new.numel())
            n_edges_hop.append(e.numel())
            frontier = new
        cat = (lambda t: torch.cat(t) if t else torch.zeros(0, dtype=torch.long))
        return SamplerOutput(node=nodes, row=cat(rows), col=cat(cols), edge=cat(edges), batch=None,
                             num_sampled_nodes=n_nodes_hop, num_sampled_edges=n_edges_hop)
