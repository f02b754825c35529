"""``zoo.CellGAT`` (``cell-gat``): a graph attention network over a kNN graph of cells.

After the seed paper on SARS-CoV-2 infection and COVID-19 severity (a GAT over
a cell graph with self-supervised edge features). Pipeline of :meth:`CellGAT.fit`:

1. preprocessing (``log1p`` for counts, standardisation) fitted on the training
   cells, streamed in row blocks from the store (:class:`~zoo.preprocess.Preprocessor`);
2. a PCA basis (``n_pcs``) fitted on a seeded subsample of at most
   ``pca_max_cells`` training cells; every training cell's PCA embedding is
   the **kNN index** (kept in the checkpoint as the tensor ``index_z``);
3. the training graph: each training cell receives edges from its ``k``
   nearest training cells (Euclidean in PCA space, itself excluded);
4. self-supervised edge features: :class:`~zoo.models.cell_graph.EdgeFeatureNet`
   maps the two cells' PCA embeddings to ``edge_dim`` features and is trained
   to tell real kNN edges from corrupted pairs (random cells and neighbours of
   neighbours), then frozen;
5. the supervised stage: encoder ``Linear(genes -> hidden)`` then ``n_layers``
   residual ``GATConv(edge_dim=edge_dim)`` layers fed the edge features as
   ``edge_attr``, then a linear head; trained with cross-entropy by neighbour
   sampling (torch_geometric's ``NeighborLoader``, fan-outs ``num_neighbors``)
   through the zoo's :class:`~zoo.trainer.Trainer`, node features of each
   sampled subgraph read from the store rows (``Store.read_rows``) unless the
   raw training matrix fits in ``in_memory_mb``.

Prediction (new cells attach to the training graph): a cell is projected with
the stored PCA basis, linked to its ``k`` nearest *training* cells in the kNN
index, and its representation is computed through the GAT layers from its
own expression and the stored layer inputs of those training cells (buffer
``cache``: every training cell's representation before each GAT layer,
computed on the full training graph after training). Training cells never see
the cells being predicted, so a cell's prediction does not depend on which
other cells are predicted with it (one call = cell by cell). A training cell
predicted again finds itself among its neighbours.

Hidden layer for interpretation: ``module_.embedding`` (an ``nn.Identity``) sees
the final per-cell representation (``(batch, hidden)``, the head's input) of
exactly the cells of the batch; :meth:`CellGAT.embed` returns it per cell.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from omicsdata.errors import SchemaMismatchError

from .. import data as zdata
from .. import inference
from ..align import align_mudata
from ..estimator import Estimator
from ..preprocess import Preprocessor, store_recipe
from ..registry import register_model
from ..tasks import get_task
from ..trainer import Trainer
from .cell_gat_net import CellGATNet, GraphBatches, GraphPreprocessor  # noqa: F401 (re-exported)
from .cell_graph import RowBlocks, fit_pca, knn, knn_edges, train_edge_pretext


@register_model("cell-gat")
class CellGAT(Estimator):
    """Cell classifier: GAT over a kNN graph of training cells with self-supervised edge features.

    New cells attach to their ``k`` nearest training cells at predict time
    (see the module docstring for the whole recipe and what the checkpoint holds).

    Parameters
    ----------
    n_pcs: PCA components of the kNN space. k: neighbours per cell.
    hidden, heads, n_layers: encoder width, attention heads, GAT layers (``hidden % heads == 0``).
    edge_dim: learned edge features per edge. dropout: features and attention.
    num_neighbors: neighbour-sampling fan-out per GAT layer (``len == n_layers``; -1 = all).
    pretext_epochs: epochs of the self-supervised edge task. pca_max_cells: cells the PCA is fitted on.
    in_memory_mb: keep the raw training matrix in memory below this size, else read store rows per batch.
    class_weight: ``"balanced"`` (cross-entropy weights ``n / (n_classes * count)`` from the training
        cells, so rare cell types count) or ``None``. Early stopping watches validation macro F1.
    label_col: obs column of the cell labels. modalities: the one modality to use (default: the only one).
    """

    task_names = ("classification",)

    def __init__(self, n_pcs=50, k=15, hidden=64, heads=4, n_layers=2, edge_dim=8, dropout=0.2, num_neighbors=(10, 10),
                 pretext_epochs=3, pca_max_cells=20000, in_memory_mb=512, class_weight="balanced", label_col="cell_type", modalities=None,
                 batch_size=256, max_epochs=30, patience=5, lr=3e-3, weight_decay=1e-4, val_fraction=0.15,
                 device="auto", use_stream=False, min_overlap=0.5, random_state=0, progress=False):
        super().__init__(modalities=modalities, time_col=None, event_col=None, label_col=label_col,
                         batch_size=batch_size, max_epochs=max_epochs, patience=patience, lr=lr,
                         weight_decay=weight_decay, val_fraction=val_fraction, device=device, use_stream=use_stream,
                         min_overlap=min_overlap, random_state=random_state, progress=progress)
        self.n_pcs = n_pcs
        self.k = k
        self.hidden = hidden
        self.heads = heads
        self.n_layers = n_layers
        self.edge_dim = edge_dim
        self.dropout = dropout
        self.num_neighbors = num_neighbors
        self.pretext_epochs = pretext_epochs
        self.pca_max_cells = pca_max_cells
        self.in_memory_mb = in_memory_mb
        self.class_weight = class_weight

    # ------------------------------------------------------------------ module
    def _check_params(self) -> None:
        if int(self.hidden) % int(self.heads):
            raise SchemaMismatchError(f"CellGAT: hidden={self.hidden} must be a multiple of heads={self.heads}")
        if len(tuple(self.num_neighbors)) != int(self.n_layers):
            raise SchemaMismatchError(f"CellGAT: num_neighbors={tuple(self.num_neighbors)} needs one fan-out per "
                                      f"GAT layer (n_layers={self.n_layers})")

    def build_module(self) -> CellGATNet:
        g = self.schema_.get("cell_gat") or {}
        for key in ("n_train", "n_pcs", "k", "modality"):
            if key not in g:
                raise SchemaMismatchError(f"CellGAT: schema field 'cell_gat.{key}' is missing")
        mod = g["modality"]
        return CellGATNet(mod, self.input_dims_[mod], self.n_classes_, int(g["n_train"]), int(g["n_pcs"]), int(g["k"]),
                          int(self.hidden), int(self.heads), int(self.n_layers), int(self.edge_dim), float(self.dropout))

    def card_notes(self) -> str:
        """Model-card text: the transductive kNN graph and what of the training cells the checkpoint keeps."""
        g = (getattr(self, "schema_", None) or {}).get("cell_gat", {})
        return (f"Graph model over a kNN graph of the {g.get('n_train')} training cells (k={g.get('k')}, Euclidean in "
                f"a {g.get('n_pcs')}-component PCA of the preprocessed expression fitted on training cells). New "
                "cells attach to their nearest training cells at predict time, so the checkpoint keeps the training "
                "cells' PCA embeddings (tensor index_z, the kNN index) and their hidden representations before each "
                "GAT layer (tensor cache); no labels and no expression values. Edge features were learned "
                "self-supervised (real kNN edge vs. corrupted pair) before the supervised stage; held-out pretext "
                f"accuracy {g.get('pretext_accuracy')}.")

    def configure_optimizers(self, module, total_steps: int):
        """Adam over the trainable parameters (the pretext-trained edge network is frozen), linear decay."""
        params = [p for p in module.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / max(1, total_steps)))
        return opt, sched

    def loss(self, outputs: dict, targets: dict) -> torch.Tensor:
        """Cross-entropy over labelled cells, weighted per class (``class_weight``)."""
        y = targets["label"]
        ok = y >= 0
        w = (self.schema_.get("cell_gat") or {}).get("class_weight")
        w = None if w is None else torch.as_tensor(w, dtype=torch.float32, device=y.device)
        if not bool(ok.any()):
            return outputs["logits"].sum() * 0.0
        return F.cross_entropy(outputs["logits"][ok], y[ok], weight=w)

    def validation_score(self, outputs: dict, targets: dict) -> float:
        """Macro F1 of the validation cells (rare cell types weigh as much as common ones)."""
        from sklearn.metrics import f1_score

        ok = targets["label"] >= 0
        pred = outputs["proba"][ok].argmax(1)
        return float(f1_score(targets["label"][ok], pred, labels=list(range(self.n_classes_)), average="macro",
                              zero_division=0))

    def restore_checkpoint(self, schema: dict, tensors: dict):
        super().restore_checkpoint(schema, tensors)
        self.preprocessor_ = GraphPreprocessor(self.preprocessor_.modalities)
        return self

    # ------------------------------------------------------------------ fit
    def _modality(self, mdata) -> str:
        mods = list(self.modalities) if self.modalities else list(mdata.mod)
        if len(mods) != 1:
            raise SchemaMismatchError(f"CellGAT uses one modality; the data has {sorted(mdata.mod)}: pass "
                                      "modalities=['<one>']")
        if mods[0] not in mdata.mod:
            raise SchemaMismatchError(f"modality '{mods[0]}' asked for but the data has only {sorted(mdata.mod)}")
        return mods[0]

    def fit(self, data, y=None, split: str | list | None = "train", val_split: str | None = "val"):
        """Fit on the ``split`` cells: preprocessing, PCA, kNN graph, edge pretext, then supervised GAT training
        with early stopping on the ``val_split`` cells (else a carved ``val_fraction``). ``y`` is ignored."""
        self._check_params()
        mdata = zdata.resolve(data)
        store = zdata.store_of(mdata)
        t0, dev, seed = time.perf_counter(), self.device_, int(self.random_state or 0)
        self._seed()
        mod = self._modality(mdata)
        plan = zdata.plan_rows(mdata, split, val_split, self.val_fraction, seed)
        tasks = {n: get_task(n).fit(s, mdata.obs, plan.train) for n, s in self._resolve_tasks(mdata).items()}
        features = {mod: [str(f) for f in mdata.mod[mod].var_names]}
        self.schema_ = {"modalities": {mod: {"features": features[mod]}}, "tasks": tasks}
        block = max(256, int(self.batch_size))
        blocks = RowBlocks(store, mod, plan.train, block, dev)
        self.preprocessor_ = GraphPreprocessor(Preprocessor.fit(blocks, features).modalities)
        self.schema_["modalities"] = {m: dict(v, required=True) for m, v in self.preprocessor_.to_json().items()}
        recipe = {m: r for m, r in store_recipe(mdata).items() if m == mod}
        if recipe:
            self.schema_["preprocessing"] = {"recipe": recipe}
        self.schema_["data"] = self._data_info(mdata, split, len(plan.all_train))
        n, p = len(plan.train), len(features[mod])
        if n * p * 4 <= float(self.in_memory_mb) * 2 ** 20:
            blocks.cache = torch.from_numpy(store.read_rows(mod, plan.train))
        # PCA on a seeded subsample, then every training cell's embedding (the kNN index), block by block
        sub = np.sort(np.random.default_rng(seed).permutation(n)[:int(self.pca_max_cells)])
        mean, comp = fit_pca(self.preprocessor_(blocks.read(sub))[mod].cpu(), int(self.n_pcs), seed)
        mean, comp = mean.to(dev), comp.to(dev)
        z = torch.cat([(self.preprocessor_(raw)[mod] - mean) @ comp for raw in blocks])
        nbr, _ = knn(z, z, int(self.k), exclude_self=True)
        edge_index = knn_edges(nbr)
        self.schema_["cell_gat"] = {"modality": mod, "n_train": int(n), "n_pcs": int(comp.shape[1]),
                                    "k": int(nbr.shape[1]), "features_in_memory": blocks.cache is not None}
        self._seed()
        module = self.module_ = self.build_module().to(dev)
        module.pca_mean.copy_(mean)
        module.pca_components.copy_(comp)
        module.index_z.copy_(z)
        self.schema_["cell_gat"].update(train_edge_pretext(module.edge_features, z, nbr, int(self.pretext_epochs),
                                                           float(self.lr), seed))
        for prm in module.edge_features.parameters():
            prm.requires_grad_(False)
        # supervised stage: neighbour-sampled subgraphs through the zoo's trainer
        tg_all = self._targets(mdata)
        labelled = np.flatnonzero(tg_all["label"][plan.train] >= 0)
        if self.class_weight == "balanced":
            counts = np.bincount(tg_all["label"][plan.train][labelled], minlength=self.n_classes_).astype(float)
            self.schema_["cell_gat"]["class_weight"] = (len(labelled) / (self.n_classes_ * np.maximum(counts, 1))
                                                        ).tolist()
        elif self.class_weight is not None:
            raise SchemaMismatchError(f"CellGAT: class_weight must be 'balanced' or None, got {self.class_weight!r}")
        source = GraphBatches(blocks, edge_index, labelled, tuple(self.num_neighbors), int(self.batch_size), seed)
        val_rows = plan.val if plan.val is not None else (zdata.select_rows(mdata, val_split) if plan.has_val else None)
        val_source = RowBlocks(store, mod, val_rows, block, dev) if val_rows is not None else None
        self._fit_graph = (blocks, edge_index)
        trainer = Trainer(self.max_epochs, self.patience, self.progress, desc="fit CellGAT")
        try:
            result = trainer.run(self, module, source, self._targets_torch(tg_all, dev), val_source, tg_all)
            module.refresh_cache(blocks, self.preprocessor_, edge_index)
        finally:
            self._fit_graph = None
        module.eval()
        self.history_, self.best_val_score_, self.n_epochs_ = result.history, result.best_score, result.n_epochs
        self.schema_["data"].update(fit_seconds=round(time.perf_counter() - t0, 2),
                                    best_val_score=self.best_val_score_, n_epochs=self.n_epochs_)
        self.metrics_ = {}
        return self

    def _collect(self, module, source, alignment, mc_samples: int = 0) -> dict:
        """As the base class; during fit the training cells' cache is refreshed first (validation passes)."""
        if getattr(self, "_fit_graph", None) is not None:
            blocks, edge_index = self._fit_graph
            module.refresh_cache(blocks, self.preprocessor_, edge_index)
        return super()._collect(module, source, alignment, mc_samples)

    # ------------------------------------------------------------------ embeddings and evaluation
    @torch.no_grad()
    def embed(self, data, split=None) -> np.ndarray:
        """Per-cell hidden activations ``(n_cells, hidden)`` of ``module_.embedding`` (the head's input),
        in row order of the ``split`` rows; cells attach to the training graph as in predict."""
        self._check_fitted()
        where = "CellGAT.embed"
        mdata = inference.prepare_input(self, data, where)
        alignment = align_mudata(self.schema_["modalities"], mdata, min_overlap=self.min_overlap, where=where)
        rows = zdata.select_rows(mdata, split)
        mods = [m for m, a in alignment.items() if a is not None]
        align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
        source = zdata.batches(mdata, split, mods, max(self.batch_size, 256), device=self.device_,
                               use_stream=self.use_stream)
        self.module_.eval()
        embs, idx = [], []
        for raw in source:
            inputs = self.preprocessor_(raw, align)
            embs.append(self.module_(inputs)["embedding"].float().cpu().numpy())
            idx.append(inputs["index"].cpu().numpy())
        emb, idx = np.concatenate(embs), np.concatenate(idx)
        out = np.empty_like(emb)
        out[np.searchsorted(rows, idx)] = emb
        return out

    def evaluate(self, data, split="test", plot: str | None = None) -> dict:
        """Accuracy, macro F1, AUROC, ECE, coverage accuracies, a ``per_class`` table (precision, recall,
        F1, support per class) and ``confusion`` (rows: true class, columns: predicted, ``classes_`` order);
        ``plot``: also write the confusion matrix as a PNG at that path."""
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        self._check_fitted()
        out, mdata = inference.predict_outputs(self, data, split)
        tg = {k: v[out["index"]] for k, v in self._targets(mdata).items()}
        res = {"split": split, "n": int(len(out["index"]))}
        res.update(get_task("classification").metrics(self, out, tg))
        ok = tg["label"] >= 0
        y, pred, labels = tg["label"][ok], out["proba"][ok].argmax(1), list(range(self.n_classes_))
        pr, rc, f1, sup = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
        res["per_class"] = [{"class": str(c), "precision": float(a), "recall": float(b), "f1": float(f),
                             "support": int(s)} for c, a, b, f, s in zip(self.classes_, pr, rc, f1, sup)]
        cm = confusion_matrix(y, pred, labels=labels)
        res["confusion"] = cm.tolist()
        if plot:
            res["confusion_png"] = write_confusion_png(cm, [str(c) for c in self.classes_], plot)
        self.metrics_[str(split)] = res
        return res


def write_confusion_png(cm: np.ndarray, classes: list, path) -> str:
    """Write a confusion matrix (rows true, columns predicted) as a PNG heat map with counts; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 1.2 + 0.45 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
    return str(path)
