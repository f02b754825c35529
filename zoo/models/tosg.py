"""``zoo.TOSGClassifier``: a graph classifier over cell text-omic signaling graphs (OmniCellTOSG).

Every cell is a graph over one shared signaling network (``omicsdata.graph``);
the node feature is the cell's (preprocessed) abundance of that entity,
concatenated with a learned per-node embedding (so the model knows *which*
gene it is looking at, as the shared graph is otherwise symmetric in
identity). Architecture::

    abundance [B, N, 1] ++ node embedding [N, d]  -> Linear + ReLU (projection)
    -> n_layers x (GCNConv | GATConv) + ReLU + dropout     (torch_geometric)
    -> mean ++ attention pooling over nodes                (graph pooling, AttentionalAggregation)
    -> MLP head -> logits [B, C]

Data path: the zoo's own (fit / predict / score / save_pretrained work as for
every estimator). The batch of B cells is reshaped to PyG's static-graph
layout ``[B, N, F]`` with *one* ``edge_index`` buffer (never copied per cell);
``GCNConv`` runs on it directly. ``GATConv`` has no static-graph support, so
with ``conv="gat"`` each batch is turned into the disjoint union (offset
``edge_index`` of ``B*E`` edges) on the fly.

Entity subsetting (to keep 533k-node graphs tractable): ``nodes`` (entity
ids), ``genes`` / ``pathway`` / ``top_k`` / ``hops`` as in
:func:`omicsdata.graph.select_nodes` (top-k variance on the training rows
only); the model runs on the induced subgraph.

``explain`` returns node and edge importances from
``torch_geometric.explain`` (GNNExplainer by default).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from omicsdata.errors import SchemaMismatchError

from ..estimator import Estimator
from ..registry import register_model


class TOSGNet(nn.Module):
    """The torch module of :class:`TOSGClassifier` (input: the zoo batch dict)."""

    def __init__(self, modality: str, n_nodes: int, n_edges: int, n_classes: int, conv: str = "gcn",
                 hidden: int = 32, n_layers: int = 2, node_emb: int = 8, heads: int = 2, dropout: float = 0.1):
        super().__init__()
        from torch_geometric.nn import GATConv, GCNConv

        self.modality, self.conv_kind = modality, conv
        self.register_buffer("node_index", torch.zeros(n_nodes, dtype=torch.long))
        self.register_buffer("edge_index", torch.zeros(2, n_edges, dtype=torch.long))
        self.emb = nn.Embedding(n_nodes, node_emb) if node_emb else None
        self.proj = nn.Linear(1 + (node_emb or 0), hidden)
        if conv == "gcn":
            self.convs = nn.ModuleList([GCNConv(hidden, hidden) for _ in range(n_layers)])
        elif conv == "gat":
            if hidden % heads:
                raise SchemaMismatchError(f"TOSGClassifier: hidden ({hidden}) must be a multiple of heads ({heads})")
            self.convs = nn.ModuleList([GATConv(hidden, hidden // heads, heads=heads) for _ in range(n_layers)])
        else:
            raise SchemaMismatchError(f"TOSGClassifier: conv must be 'gcn' or 'gat', got {conv!r}")
        self.drop = nn.Dropout(dropout)
        from torch_geometric.nn import AttentionalAggregation

        # attention pooling: a gate per node (it sees the node embedding, so it can learn *which* nodes matter)
        self.attn_pool = AttentionalAggregation(nn.Linear(hidden, 1))
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_classes))

    def graph_logits(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x`` [B, N, 1] (or [N, 1] for one graph) over the shared ``edge_index`` -> logits [B, C]."""
        if x.dim() == 2:
            x = x.unsqueeze(0)
        B, N, _ = x.shape
        h = x
        if self.emb is not None:
            h = torch.cat([h, self.emb.weight.unsqueeze(0).expand(B, -1, -1)], -1)
        h = torch.relu(self.proj(h))
        if self.conv_kind == "gcn":  # PyG static graph: [B, N, C] with one edge_index
            for conv in self.convs:
                h = self.drop(torch.relu(conv(h, edge_index)))
            batch = torch.arange(B, device=h.device).repeat_interleave(N)  # B*N ints: no edge copies
            pooled = torch.cat([h.mean(1), self.attn_pool(h.reshape(B * N, -1), batch, dim_size=B)], -1)
        else:  # GAT: disjoint union built for this batch only
            from torch_geometric.nn import global_mean_pool

            E = edge_index.shape[1]
            offs = torch.arange(B, device=h.device) * N
            ei = (edge_index.view(2, 1, E) + offs.view(1, B, 1)).reshape(2, B * E)
            batch = torch.arange(B, device=h.device).repeat_interleave(N)
            h = h.reshape(B * N, -1)
            for conv in self.convs:
                h = self.drop(torch.relu(conv(h, ei)))
            pooled = torch.cat([global_mean_pool(h, batch, B), self.attn_pool(h, batch, dim_size=B)], -1)
        return self.head(pooled)

    def forward(self, inputs: dict) -> dict:
        X = inputs[self.modality].index_select(1, self.node_index)
        return {"logits": self.graph_logits(X.unsqueeze(-1), self.edge_index)}


class _OneGraph(nn.Module):
    """``(x [N, 1], edge_index) -> logits [1, C]``: the signature torch_geometric.explain expects."""

    def __init__(self, net: TOSGNet):
        super().__init__()
        self.net = net

    def forward(self, x, edge_index):
        return self.net.graph_logits(x, edge_index)


@register_model("tosg")
class TOSGClassifier(Estimator):
    """GNN classifier of cell graphs on any obs label (``label_col``), e.g. disease, cell type, organ.

    Parameters
    ----------
    label_col: obs column to predict (default ``"disease"``).
    modality: the graph-node modality (``"expression"``).
    conv: ``"gcn"`` (static shared-topology batches) or ``"gat"``.
    hidden, n_layers, heads, node_emb, dropout: architecture (``node_emb=0``: no node identity).
    nodes, genes, pathway, top_k, hops: entity subset (see module docstring).
    edge_kinds: edge kinds to use (``["internal", "ppi"]``), ``None``: all.
    Other parameters: see :class:`zoo.Estimator`.
    """

    task_names = ("classification",)  # issue 12: zoo.list_models(task=...) filters on this

    def __init__(self, label_col="disease", modality="expression", conv="gcn", hidden=32, n_layers=2, heads=2,
                 node_emb=8, dropout=0.1, nodes=None, genes=None, pathway=None, top_k=None, hops=0,
                 edge_kinds=None, batch_size=32, max_epochs=30, patience=8, lr=1e-2, weight_decay=1e-4,
                 val_fraction=0.15, device="auto", use_stream=False, random_state=0, progress=False):
        super().__init__(modalities=[modality], time_col=None, event_col=None, label_col=label_col,
                         batch_size=batch_size, max_epochs=max_epochs, patience=patience, lr=lr,
                         weight_decay=weight_decay, val_fraction=val_fraction, device=device,
                         use_stream=use_stream, random_state=random_state, progress=progress)
        self.modality = modality
        self.conv = conv
        self.hidden = hidden
        self.n_layers = n_layers
        self.heads = heads
        self.node_emb = node_emb
        self.dropout = dropout
        self.nodes = nodes
        self.genes = genes
        self.pathway = pathway
        self.top_k = top_k
        self.hops = hops
        self.edge_kinds = edge_kinds

    # -- graph resolution (on the training rows) -----------------------------------------------
    def fit_schema_extra(self, mdata, rows: np.ndarray) -> dict:
        from omicsdata import graph as G

        var_names = mdata.mod[self.modality].var_names
        if self.nodes is not None:
            pos = pd.Index(var_names).get_indexer([str(n) for n in self.nodes])
            if (pos < 0).any():
                missing = [n for n, p in zip(self.nodes, pos) if p < 0][:5]
                raise SchemaMismatchError(f"TOSGClassifier: nodes not among the '{self.modality}' entities: {missing}")
            idx = np.unique(pos)
        elif any(v is not None for v in (self.genes, self.pathway, self.top_k)) or self.hops:
            idx = G.select_nodes(mdata, genes=self.genes, pathway=self.pathway, top_k=self.top_k, hops=self.hops,
                                 modality=self.modality, rows=rows)
        else:
            idx = np.arange(len(var_names))
        topo = G.read_topology(mdata, self.modality, self.edge_kinds).subgraph(idx)
        self._graph = (idx, topo.edge_index)
        return {"graph": {"modality": self.modality, "nodes": [str(var_names[i]) for i in idx],
                          "n_edges": int(topo.num_edges), "edge_kinds": self.edge_kinds}}

    def build_module(self) -> torch.nn.Module:
        g = self.schema_["graph"]
        feats = self.schema_["modalities"][self.modality]["features"]
        net = TOSGNet(self.modality, len(g["nodes"]), g["n_edges"], self.n_classes_, conv=self.conv,
                      hidden=self.hidden, n_layers=self.n_layers, node_emb=self.node_emb, heads=self.heads,
                      dropout=self.dropout)
        graph = getattr(self, "_graph", None)
        if graph is not None:  # fitting; from_pretrained fills the buffers from model.safetensors
            net.node_index.copy_(torch.as_tensor(graph[0]))
            net.edge_index.copy_(torch.as_tensor(graph[1]))
        else:
            pos = pd.Index(feats).get_indexer(g["nodes"])
            net.node_index.copy_(torch.as_tensor(pos))
        return net

    # -- explanations -----------------------------------------------------------------------------
    def explain(self, data, split=None, cells=None, n_cells: int = 4, algorithm=None, epochs: int = 100,
                target: str | int | None = None, **kw) -> dict:
        """Node and edge importances from :mod:`torch_geometric.explain`, averaged over cells.

        cells: obs positions (within ``split``) to explain; default the first ``n_cells``.
        algorithm: a ``torch_geometric.explain`` algorithm (default ``GNNExplainer(epochs)``).
        target: explain this class (name or index) instead of the predicted one.

        Returns ``{"nodes": DataFrame(node, entity, name, importance),
        "edges": DataFrame(source, target, source_entity, target_entity, importance),
        "explanations": [torch_geometric.explain.Explanation per cell], "cells": obs names}``,
        both frames sorted by importance (descending).
        """
        from torch_geometric.explain import Explainer, GNNExplainer

        from .. import data as zdata

        self._check_fitted()
        mdata = zdata.resolve(data)
        rows = zdata.select_rows(mdata, split)
        pick = rows[:n_cells] if cells is None else rows[np.asarray(cells, dtype=np.int64)]
        net = self.module_
        net.eval()
        src = zdata.batches(mdata, None, [self.modality], len(pick), device=self.device_, use_stream=False, rows=pick)
        from ..align import align_mudata

        alignment = align_mudata(self.schema_["modalities"], mdata, min_overlap=self.min_overlap,
                                 where="TOSGClassifier.explain")
        align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
        inputs = self.preprocessor_(next(iter(src)), align)
        X = inputs[self.modality].index_select(1, net.node_index).unsqueeze(-1)
        explainer = Explainer(model=_OneGraph(net), algorithm=algorithm or GNNExplainer(epochs=epochs, **kw),
                              explanation_type="model" if target is None else "phenomenon",
                              node_mask_type="attributes", edge_mask_type="object",
                              model_config=dict(mode="multiclass_classification", task_level="graph",
                                                return_type="raw"))
        if target is not None and not isinstance(target, (int, np.integer)):
            target = list(self.classes_).index(str(target))
        torch.manual_seed(int(self.random_state or 0))
        exps, nsum, esum = [], None, None
        for i in range(X.shape[0]):
            kwargs = {} if target is None else {"target": torch.tensor([int(target)], device=X.device)}
            e = explainer(X[i], net.edge_index, **kwargs)
            exps.append(e)
            nm = e.node_mask.detach().sum(-1).cpu().numpy()
            em = e.edge_mask.detach().cpu().numpy()
            nsum = nm if nsum is None else nsum + nm
            esum = em if esum is None else esum + em
        g = self.schema_["graph"]
        ids = np.asarray(g["nodes"], dtype=object)
        names = mdata.mod[self.modality].var["name"].reindex(ids).to_numpy() \
            if "name" in mdata.mod[self.modality].var else ids
        nodes = pd.DataFrame({"node": np.arange(len(ids)), "entity": ids, "name": names,
                              "importance": nsum / len(exps)}).sort_values("importance", ascending=False,
                                                                             kind="stable").reset_index(drop=True)
        ei = net.edge_index.cpu().numpy()
        edges = pd.DataFrame({"source": ei[0], "target": ei[1], "source_entity": ids[ei[0]],
                              "target_entity": ids[ei[1]], "importance": esum / len(exps)})
        edges = edges.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
        return {"nodes": nodes, "edges": edges, "explanations": exps,
                "cells": list(np.asarray(mdata.obs_names[pick]))}
