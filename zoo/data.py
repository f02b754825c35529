"""The estimators' data path: resolve inputs, fit preprocessing on train, yield aligned batches.

One batch is a dict of tensors on the target device::

    {"<modality>": float32 (B, p_schema)   # preprocessed, aligned to schema.json order
     "<modality>_mask": bool (B,)          # the store's presence mask (has_<modality>)
     "index": int64 (B,)}                  # row of the sample in the MuData given

Training and prediction read through :func:`omicsdata.torch.stream` when it
is available (``use_stream=True``), else through :class:`InMemoryBatches`, a
plain loop over in-memory tensors (also the baseline of
``scripts/bench_train.py``). Both yield the same raw batches; the
:class:`Preprocessor` then aligns features by name, applies the fitted
transform (``log1p`` for count data, then standardisation with train-split
mean/scale) and zeroes the rows of absent modalities.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from omicsdata.errors import SchemaMismatchError


# --- resolving inputs -----------------------------------------------------------------

def resolve(data):
    """A MuData from a MuData, an AnnData (one modality ``X``), a catalog name or a store path."""
    import anndata as ad
    import mudata as md

    if isinstance(data, md.MuData):
        return data
    if isinstance(data, ad.AnnData):
        md.set_options(pull_on_update=False)
        m = md.MuData({"X": data})
        m.obs = data.obs.copy()
        return m
    if isinstance(data, (str,)) or hasattr(data, "__fspath__"):
        import omicsdata as od

        return od.load(data)
    raise SchemaMismatchError(f"expected a MuData, AnnData, catalog name or store path, got {type(data).__name__}")


def select_rows(mdata, split) -> np.ndarray:
    """Row positions of ``split`` (a name, a list of names, or None for all rows)."""
    n = mdata.n_obs
    if split is None:
        return np.arange(n)
    if "split" not in mdata.obs.columns:
        raise SchemaMismatchError(f"split={split!r} asked but the data has no obs column 'split'; pass split=None")
    names = [split] if isinstance(split, str) else list(split)
    col = mdata.obs["split"].astype(str).to_numpy()
    rows = np.flatnonzero(np.isin(col, names))
    if rows.size == 0:
        raise SchemaMismatchError(f"split {split!r} selects no rows (splits present: {sorted(set(col))})")
    return rows


def presence(mdata, modality: str) -> np.ndarray:
    col = f"has_{modality}"
    if col in mdata.obs.columns:
        return mdata.obs[col].to_numpy().astype(bool)
    if modality in mdata.mod and f"{modality}:{col}" in mdata.obs.columns:
        return mdata.obs[f"{modality}:{col}"].to_numpy().astype(bool)
    return np.ones(mdata.n_obs, dtype=bool)


def take_rows(X, rows: np.ndarray) -> np.ndarray:
    """Rows of a dense/sparse/dask matrix as a dense float32 array."""
    rows = np.asarray(rows)
    if hasattr(X, "compute") and not isinstance(X, np.ndarray):
        blk = X[rows].compute() if rows.size else np.zeros((0, X.shape[1]), np.float32)
    else:
        blk = X[rows]
    if sp.issparse(blk):
        blk = blk.toarray()
    return np.ascontiguousarray(np.asarray(blk, dtype=np.float32))


# --- raw batch sources ------------------------------------------------------------------

class InMemoryBatches:
    """Raw batches from tensors held in memory (rows of ``mdata`` materialised once)."""

    def __init__(self, mdata, rows: np.ndarray, modalities: Sequence[str], batch_size: int,
                 shuffle: bool = False, seed: int = 0, device="cpu", drop_last: bool = False):
        self.rows = np.asarray(rows)
        self.modalities = list(modalities)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.epoch = shuffle, int(seed), 0
        self.device = torch.device(device)
        self.drop_last = drop_last
        self.X = {m: torch.from_numpy(take_rows(mdata.mod[m].X, self.rows)) for m in self.modalities}
        self.mask = {m: torch.from_numpy(presence(mdata, m)[self.rows]) for m in self.modalities}
        self.index = torch.from_numpy(self.rows.astype(np.int64))
        if self.device.type == "cuda":
            self.X = {m: x.pin_memory() for m, x in self.X.items()}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.rows)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        n = len(self.rows)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(n, generator=g)
        else:
            perm = torch.arange(n)
        nb = len(self)
        nb_dev = self.device.type == "cuda"
        for b in range(nb):
            idx = perm[b * self.batch_size:(b + 1) * self.batch_size]
            out = {}
            for m in self.modalities:
                out[m] = self.X[m].index_select(0, idx).to(self.device, non_blocking=nb_dev)
                out[f"{m}_mask"] = self.mask[m].index_select(0, idx).to(self.device, non_blocking=nb_dev)
            out["index"] = self.index.index_select(0, idx).to(self.device, non_blocking=nb_dev)
            yield out


def stream_available() -> bool:
    """Whether :func:`omicsdata.torch.stream` exists in this install."""
    try:
        import omicsdata.torch as odt
    except Exception:  # pragma: no cover - import error in a sibling module
        return False
    return hasattr(odt, "stream")


class StreamBatches:
    """Raw batches from :func:`omicsdata.torch.stream` (block-shuffled, prefetched)."""

    def __init__(self, mdata, split, rows: np.ndarray, modalities: Sequence[str], batch_size: int,
                 shuffle: bool = False, seed: int = 0, device="cpu", drop_last: bool = False, **kw):
        import omicsdata.torch as odt

        self.modalities = list(modalities)
        self.rows = np.asarray(rows)
        self.n = len(self.rows)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.device = torch.device(device)
        self.stream = odt.stream(mdata, split=split, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 modalities=self.modalities, targets=(), device=str(self.device), densify=True,
                                 drop_last=drop_last, **kw)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.stream, "set_epoch"):
            self.stream.set_epoch(epoch)

    def __len__(self) -> int:
        try:
            return len(self.stream)
        except TypeError:
            return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        for batch in self.stream:
            out = {}
            for m in self.modalities:
                x = batch[m]
                if x.is_sparse or getattr(x, "layout", torch.strided) != torch.strided:
                    x = x.to_dense()
                out[m] = x.to(self.device, torch.float32)
                mk = batch.get(f"{m}_mask")
                out[f"{m}_mask"] = (mk.to(self.device).bool() if mk is not None
                                    else torch.ones(x.shape[0], dtype=torch.bool, device=self.device))
            out["index"] = batch["index"].to(self.device).long()
            yield out


def batches(mdata, split, modalities, batch_size, shuffle=False, seed=0, device="cpu",
            use_stream: bool = True, drop_last: bool = False, rows: np.ndarray | None = None):
    """The raw batch source for ``split`` of ``mdata``: the stream when available, else in memory.

    ``rows`` (explicit row positions) forces the in-memory path (used for a
    validation fraction carved out of the training rows).
    """
    if rows is None:
        rows = select_rows(mdata, split)
        if use_stream and stream_available():
            return StreamBatches(mdata, split, rows, modalities, batch_size, shuffle, seed, device, drop_last)
    return InMemoryBatches(mdata, rows, modalities, batch_size, shuffle, seed, device, drop_last)


# --- preprocessing --------------------------------------------------------------------------

class Preprocessor:
    """Per-modality ``log1p`` (count data) + standardisation, fitted on training rows.

    Its parameters are JSON-serialisable (:meth:`to_json` / :meth:`from_json`)
    and live in a checkpoint's ``schema.json``. Features absent from an input
    are filled with their training mean (0 after standardisation); rows of an
    absent modality (mask False) are all zeros after preprocessing.
    """

    def __init__(self, modalities: dict):
        self.modalities = modalities  # name -> {"features": [...], "transform", "mean", "scale"}
        self._dev: dict = {}

    # -- fitting
    @classmethod
    def fit(cls, raw_batches: Iterable[dict], features: dict[str, list[str]]) -> "Preprocessor":
        """One pass over raw training batches; statistics over present rows only, in float64."""
        acc = {}
        for m, names in features.items():
            p = len(names)
            acc[m] = {"n": 0, "s": torch.zeros(p, dtype=torch.float64), "ss": torch.zeros(p, dtype=torch.float64),
                      "ls": torch.zeros(p, dtype=torch.float64), "lss": torch.zeros(p, dtype=torch.float64),
                      "min": math.inf, "max": -math.inf, "integer": True}
        for batch in raw_batches:
            for m, a in acc.items():
                x = batch[m][batch[f"{m}_mask"]].detach().to("cpu", torch.float64)
                if x.shape[0] == 0:
                    continue
                a["n"] += x.shape[0]
                a["s"] += x.sum(0)
                a["ss"] += (x * x).sum(0)
                lx = torch.log1p(x.clamp(min=0))
                a["ls"] += lx.sum(0)
                a["lss"] += (lx * lx).sum(0)
                a["min"] = min(a["min"], float(x.min()))
                a["max"] = max(a["max"], float(x.max()))
                a["integer"] = a["integer"] and bool(torch.all(x == torch.round(x)))
        mods = {}
        for m, a in acc.items():
            if a["n"] == 0:
                raise SchemaMismatchError(f"modality '{m}': no training sample has it (has_{m} all False)")
            counts = a["integer"] and a["min"] >= 0 and a["max"] > 30
            s, ss = (a["ls"], a["lss"]) if counts else (a["s"], a["ss"])
            mean = s / a["n"]
            var = (ss / a["n"] - mean * mean).clamp(min=0)
            scale = torch.sqrt(var)
            scale = torch.where(scale < 1e-6, torch.ones_like(scale), scale)
            mods[m] = {"features": list(features[m]), "transform": "log1p" if counts else "identity",
                       "mean": mean.tolist(), "scale": scale.tolist(), "fill": "train_mean",
                       "n_train_present": int(a["n"])}
        return cls(mods)

    def to_json(self) -> dict:
        return {m: dict(v) for m, v in self.modalities.items()}

    @classmethod
    def from_json(cls, d: dict) -> "Preprocessor":
        return cls({m: dict(v) for m, v in d.items()})

    @property
    def dims(self) -> dict[str, int]:
        return {m: len(v["features"]) for m, v in self.modalities.items()}

    # -- applying
    def _params(self, m: str, device):
        key = (m, str(device))
        if key not in self._dev:
            v = self.modalities[m]
            self._dev[key] = (torch.tensor(v["mean"], dtype=torch.float32, device=device),
                              torch.tensor(v["scale"], dtype=torch.float32, device=device))
        return self._dev[key]

    def __call__(self, raw: dict, alignment: dict | None = None) -> dict:
        """Preprocess one raw batch; ``alignment[m] = (src_idx, dst_idx)`` from :mod:`zoo.align`."""
        out = {"index": raw["index"]}
        for m, v in self.modalities.items():
            if m not in raw:  # modality absent from the input: not measured for any sample
                B, dev = raw["index"].shape[0], raw["index"].device
                out[m] = torch.zeros(B, len(v["features"]), dtype=torch.float32, device=dev)
                out[f"{m}_mask"] = torch.zeros(B, dtype=torch.bool, device=dev)
                continue
            x = raw[m]
            mask = raw[f"{m}_mask"]
            dev = x.device
            mean, scale = self._params(m, dev)
            al = (alignment or {}).get(m)
            if al is not None:
                src, dst = al.tensors(dev)
                xs = x.index_select(1, src)
                if v["transform"] == "log1p":
                    xs = torch.log1p(xs.clamp(min=0))
                xs = (xs - mean.index_select(0, dst)) / scale.index_select(0, dst)
                y = torch.zeros(x.shape[0], len(v["features"]), dtype=torch.float32, device=dev)
                y[:, dst] = xs
            else:
                if v["transform"] == "log1p":
                    x = torch.log1p(x.clamp(min=0))
                y = (x - mean) / scale
            y = y * mask.unsqueeze(1).to(y.dtype)
            out[m] = y
            out[f"{m}_mask"] = mask
        return out
