"""The torch module of MOGONET (:class:`MOGONETNet`) and its patient-similarity graphs.

Parameter layout (fixed: the authors' ``E<i>.pth`` / ``C<i>.pth`` / ``C.pth``
map onto it one to one)::

    encoders.<v>.gc{1,2,3}.weight (in, out), .bias (out,)    # GCN_E of view v
    heads.<v>.clf.0.weight (C, h3), .bias (C,)                # Classifier_1 of view v
    vcdn.model.0.weight (hvcdn, C**V), .bias; vcdn.model.2.weight (C, hvcdn), .bias
    graph.x_<v> (n_train, p_v), graph.threshold (V,)          # buffers: the training samples' features

Graphs follow the authors' ``utils.py``: cosine distance between samples; an
edge where the distance is at most the view's adaptive threshold (the value
at position ``adj_parameter * n`` of the sorted training distances, diagonal
included); edge weight = cosine similarity; symmetrised by the elementwise
maximum; self-loops added; rows L1-normalised. A graph convolution is
``A @ (X @ W) + b``; each layer is followed by LeakyReLU(0.25), the first two
by dropout. This row normalisation and the (in, out) weight layout are not
those of ``torch_geometric.nn.GCNConv`` (symmetric normalisation, Linear
weight), so the layers are written here on torch sparse/dense products.

New samples (prediction) - two graphs:

* ``"attach"`` (default): each new sample is linked to the training samples
  by the authors' test-time rule (edges to training samples within the
  threshold, cosine weights, self-loop, row-normalised); training samples
  keep their training graph. A prediction depends only on the sample and the
  stored training features: predicting a set at once or one by one gives the
  same answer.
* ``"authors"``: the authors' ``gen_test_adj_mat_tensor`` over the training
  samples plus all samples predicted together (train-new edges only, no
  train-train or new-new edges). It reproduces their test-time outputs, but a
  sample's prediction then depends on the other samples in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cosine_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``1 - cos(a_i, b_j)`` (n_a, n_b); zero rows have distance 1 to everything."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    return 1 - (a @ b.t()) / (na * nb.t()).clamp(min=eps)


def adaptive_threshold(x: torch.Tensor, edges_per_node: int) -> float:
    """The authors' adaptive parameter: the sorted pairwise distances' value at ``edges_per_node * n``."""
    d = cosine_distance(x, x).reshape(-1)
    k = min(int(edges_per_node) * x.shape[0], d.numel() - 1)
    return float(torch.sort(d).values[k])


def train_adjacency(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """The row-normalised training graph (dense, n x n) of one view."""
    d = cosine_distance(x, x)
    keep = (d <= threshold).to(x.dtype)
    keep.fill_diagonal_(0)
    a = (1 - d) * keep
    a = torch.maximum(a, a.t())
    a = a + torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    return F.normalize(a, p=1, dim=1)


def attach_weights(x_new: torch.Tensor, x_train: torch.Tensor, threshold: float):
    """``(self_weight (b,), neighbour_weights (b, n))``: new samples' rows of the test-time graph."""
    d = cosine_distance(x_new, x_train)
    s = (1 - d) * (d <= threshold).to(x_new.dtype)
    norm = (1 + s.abs().sum(1)).clamp(min=1e-12)
    return 1.0 / norm, s / norm.unsqueeze(1)


def authors_test_adjacency(x_new: torch.Tensor, x_train: torch.Tensor, threshold: float) -> torch.Tensor:
    """The authors' test-time graph over ``[train; new]``: train-new edges, self-loops, rows L1-normalised."""
    n, b = x_train.shape[0], x_new.shape[0]
    d = cosine_distance(x_train, x_new)
    s = (1 - d) * (d <= threshold).to(x_new.dtype)
    a = torch.zeros(n + b, n + b, dtype=x_new.dtype, device=x_new.device)
    a[:n, n:] = s
    dt = cosine_distance(x_new, x_train)
    a[n:, :n] = (1 - dt) * (dt <= threshold).to(x_new.dtype)
    a = torch.maximum(a, a.t())
    a = a + torch.eye(n + b, dtype=a.dtype, device=a.device)
    return F.normalize(a, p=1, dim=1)


class GraphConvolution(nn.Module):
    """``A @ (X @ weight) + bias`` with ``weight`` (in, out) as in the authors' code (Xavier-normal init)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_normal_(self.weight)


class GCNEncoder(nn.Module):
    """Three graph convolutions with LeakyReLU(0.25), dropout after the first two."""

    def __init__(self, in_dim: int, hidden, dropout: float):
        super().__init__()
        self.gc1 = GraphConvolution(in_dim, hidden[0])
        self.gc2 = GraphConvolution(hidden[0], hidden[1])
        self.gc3 = GraphConvolution(hidden[1], hidden[2])
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def _layers(self):
        return ((self.gc1, self.drop1), (self.gc2, self.drop2), (self.gc3, None))

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Embeddings of the graph's nodes (``adj`` dense or sparse, row-normalised)."""
        for gc, drop in self._layers():
            support = x @ gc.weight
            x = F.leaky_relu((torch.sparse.mm(adj, support) if adj.is_sparse else adj @ support) + gc.bias, 0.25)
            if drop is not None:
                x = drop(x)
        return x

    def attach(self, x_new, x_train, adj_train, self_w, nbr_w) -> torch.Tensor:
        """Embeddings of new samples linked to the training graph (training nodes keep their graph)."""
        h_new, h_tr = x_new, x_train
        for gc, drop in self._layers():
            s_tr, s_new = h_tr @ gc.weight, h_new @ gc.weight
            h_new = F.leaky_relu(self_w.unsqueeze(1) * s_new + nbr_w @ s_tr + gc.bias, 0.25)
            agg = torch.sparse.mm(adj_train, s_tr) if adj_train.is_sparse else adj_train @ s_tr
            h_tr = F.leaky_relu(agg + gc.bias, 0.25)
            if drop is not None:
                h_new, h_tr = drop(h_new), drop(h_tr)
        return h_new


class ViewHead(nn.Module):
    """Per-view classifier: ``clf = Sequential(Linear(h3, C))`` (Xavier-normal weight, zero bias)."""

    def __init__(self, in_dim: int, n_classes: int):
        super().__init__()
        self.clf = nn.Sequential(nn.Linear(in_dim, n_classes))
        nn.init.xavier_normal_(self.clf[0].weight)
        nn.init.zeros_(self.clf[0].bias)

    def forward(self, h):
        return self.clf(h)


class VCDN(nn.Module):
    """View Correlation Discovery Network over the flattened outer product of the views' sigmoids."""

    def __init__(self, n_views: int, n_classes: int, hidden: int):
        super().__init__()
        self.n_classes = n_classes
        self.model = nn.Sequential(nn.Linear(n_classes ** n_views, hidden), nn.LeakyReLU(0.25),
                                   nn.Linear(hidden, n_classes))
        for lin in (self.model[0], self.model[2]):
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)

    @staticmethod
    def cross_view(view_logits) -> torch.Tensor:
        """``sigmoid(l_0) x sigmoid(l_1) x ...`` flattened with view 0's class as the slowest index."""
        x = torch.sigmoid(view_logits[0])
        for logits in view_logits[1:]:
            x = (x.unsqueeze(-1) * torch.sigmoid(logits).unsqueeze(1)).reshape(x.shape[0], -1)
        return x

    def forward(self, view_logits):
        return self.model(self.cross_view(view_logits))


class TrainingGraph(nn.Module):
    """Buffers ``x_<v>`` (training samples' preprocessed features) and ``threshold`` (V,)."""

    def __init__(self, train_shapes):
        super().__init__()
        for v, shape in enumerate(train_shapes):
            self.register_buffer(f"x_{v}", torch.zeros(*shape))
        self.register_buffer("threshold", torch.zeros(len(train_shapes)))
        self._cache: dict = {}

    def x(self, v: int) -> torch.Tensor:
        return getattr(self, f"x_{v}")

    def adjacency(self, v: int) -> torch.Tensor:
        """The training graph of view ``v`` (computed once per buffer content and device)."""
        x, t = self.x(v), self.threshold
        key = (v, x.data_ptr(), x._version, t._version, float(t[v]), str(x.device))
        if self._cache.get(v, (None,))[0] != key:
            a = train_adjacency(x, float(t[v]))
            if (a != 0).float().mean() < 0.25:  # the graphs are sparse (a few edges per node): as the authors
                a = a.to_sparse().coalesce()
            self._cache[v] = (key, a)
        return self._cache[v][1]


class MOGONETNet(nn.Module):
    """MOGONET: per-view GCN encoders and heads, VCDN fusion (views >= 2), the training graph as buffers.

    ``forward(inputs)`` (the zoo batch dict) links the batch's samples to the
    stored training graph (``test_graph``, see the module docstring) and
    returns ``{"logits": fused, "view_logits": [per view]}``.
    """

    def __init__(self, modalities, input_dims: dict, n_classes: int, n_train: int, hidden=(200, 200, 100),
                 hvcdn: int | None = None, dropout: float = 0.5, test_graph: str = "attach"):
        super().__init__()
        if test_graph not in ("attach", "authors"):
            raise ValueError(f"test_graph must be 'attach' or 'authors', got {test_graph!r}")
        self.modalities = list(modalities)
        self.n_views, self.n_classes, self.test_graph = len(self.modalities), int(n_classes), test_graph
        hidden = tuple(int(h) for h in hidden)
        self.encoders = nn.ModuleList([GCNEncoder(input_dims[m], hidden, dropout) for m in self.modalities])
        self.heads = nn.ModuleList([ViewHead(hidden[-1], n_classes) for _ in self.modalities])
        self.vcdn = (VCDN(self.n_views, n_classes, int(hvcdn or n_classes ** self.n_views))
                     if self.n_views >= 2 else None)
        self.graph = TrainingGraph([(n_train, input_dims[m]) for m in self.modalities])

    def set_training_graph(self, xs, thresholds) -> None:
        """Store the training samples' features (one tensor per view) and the views' thresholds."""
        for v, x in enumerate(xs):
            self.graph.x(v).data = x.detach().to(self.graph.threshold.device, torch.float32).clone()
        self.graph.threshold.data = torch.as_tensor(thresholds, dtype=torch.float32,
                                                    device=self.graph.threshold.device).clone()

    def fuse(self, view_logits):
        """Fused logits: the VCDN over the views (the single view's logits with one view)."""
        return self.vcdn(list(view_logits)) if self.vcdn is not None else view_logits[0]

    def view_logits_train(self, v: int) -> torch.Tensor:
        """Logits of view ``v`` for every training sample on the training graph."""
        return self.heads[v](self.encoders[v](self.graph.x(v), self.graph.adjacency(v)))

    def view_logits_new(self, v: int, x_new: torch.Tensor) -> torch.Tensor:
        """Logits of view ``v`` for new samples (graph per ``test_graph``)."""
        x_tr, thr = self.graph.x(v), float(self.graph.threshold[v])
        if self.test_graph == "authors":
            adj = authors_test_adjacency(x_new, x_tr, thr)
            h = self.encoders[v](torch.cat([x_tr, x_new]), adj)[x_tr.shape[0]:]
        else:
            self_w, nbr_w = attach_weights(x_new, x_tr, thr)
            h = self.encoders[v].attach(x_new, x_tr, self.graph.adjacency(v), self_w, nbr_w)
        return self.heads[v](h)

    def forward(self, inputs: dict) -> dict:
        views = [self.view_logits_new(v, inputs[m].float()) for v, m in enumerate(self.modalities)]
        return {"logits": self.fuse(views), "view_logits": views}
