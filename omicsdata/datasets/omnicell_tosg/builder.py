"""Builder of ``omnicell-tosg``: cell text-omic signaling graphs from the published release.

Published layout (a Hugging Face dataset repo, or a local folder with the same files)::

    cell_metadata_with_mappings.parquet (or .csv)   one row per cell: matrix_file_path,
                                                    matrix_row_idx, CMT_name, disease_BMG_name,
                                                    sex_normalized, development_stage_category,
                                                    tissue_general, dataset_id, donor_id, ...
    expression_matrix/{source}_{tissue}_part_{i}.npy  row shards, cells x entity columns
    edge_index.npy, internal_edge_index.npy, ppi_edge_index.npy   COO [2, E]
    s_name.csv, s_desc.csv, s_bio.csv               one text row per entity

The builder reads the metadata, keeps the cells matching the conditions,
samples them, and downloads only the shards that hold them (the full release
is ~120M cells). It returns one modality ``expression`` (cells x entities),
dense or CSR as measured on the selected rows (:func:`choose_storage`), the
topology (stored once, :mod:`omicsdata.graph`) and the node text (Parquet).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ... import graph
from ...builders import BuildResult, register
from ...errors import BuildError, FormatError
from ...storage.layout import graph_key

METADATA_FILES = ("cell_metadata_with_mappings.parquet", "cell_metadata_with_mappings.csv")
MATRIX_DIR = "expression_matrix"
EDGE_FILES = {"edge_index": "edge_index.npy", "internal": "internal_edge_index.npy", "ppi": "ppi_edge_index.npy"}
TEXT_FILES = {"name": "s_name.csv", "description": "s_desc.csv", "biology": "s_bio.csv"}
REQUIRED = ("matrix_file_path", "matrix_row_idx")

#: Builder condition / obs label name -> published metadata column.
FIELDS = {
    "cell_type": "CMT_name",
    "disease": "disease_BMG_name",
    "sex": "sex_normalized",
    "age_group": "development_stage_category",
    "organ": "tissue_general",
    "tissue": "tissue_general",
}
LABELS = ("cell_type", "disease", "sex", "age_group", "organ")


# -- where the files come from ------------------------------------------------------------
class _Hub:
    """Files of the Hub dataset repo at one revision, fetched one by one via omicsdata.sources.hf."""

    def __init__(self, repo_id: str, revision: str | None):
        from ...sources import hf

        self.hf, self.repo_id = hf, repo_id
        self.revision = hf.resolve_revision(repo_id, repo_type="dataset", revision=revision)
        self.requested = revision or "main"
        self._files = set(hf.list_files(repo_id, repo_type="dataset", revision=self.revision))
        self.where = f"dataset repo '{repo_id}' at {self.revision}"

    def files(self) -> set[str]:
        return self._files

    def fetch(self, name: str) -> Path:
        return self.hf.download_file(self.repo_id, name, repo_type="dataset", revision=self.revision)


class _Local:
    """Files of a local folder in the published layout."""

    def __init__(self, folder):
        self.root = Path(folder).expanduser()
        if not self.root.is_dir():
            raise BuildError(f"omnicell-tosg: local_dir {self.root} is not a folder")
        self.revision = None
        self.requested = None
        self.where = f"folder {self.root}"

    def files(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

    def fetch(self, name: str) -> Path:
        return self.root / name


# -- reading the published files -----------------------------------------------------------
def _read_metadata(src) -> tuple[pd.DataFrame, str]:
    files = src.files()
    name = next((f for f in METADATA_FILES if f in files), None)
    if name is None:
        raise BuildError(f"omnicell-tosg: {src.where} has no cell metadata ({' or '.join(METADATA_FILES)})")
    path = src.fetch(name)
    try:
        df = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path, low_memory=False)
    except Exception as e:  # noqa: BLE001 - any parse failure names the file
        raise FormatError(name, f"cannot read cell metadata: {type(e).__name__}: {e}") from e
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise FormatError(name, f"missing column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns[:20]))})")
    rows = pd.to_numeric(df["matrix_row_idx"], errors="coerce")
    bad = rows.isna() | (rows < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FormatError(name, f"column matrix_row_idx: row {i} holds {df['matrix_row_idx'].iloc[i]!r}, "
                                "not a non-negative integer", line=i + 2 if name.endswith(".csv") else None)
    df["matrix_row_idx"] = rows.astype(np.int64)
    return df, name


def _select(df: pd.DataFrame, meta_name: str, conditions: dict[str, Any]) -> pd.DataFrame:
    """Cells matching every condition (case-insensitive; a list means any of)."""
    mask = np.ones(len(df), dtype=bool)
    for key, want in conditions.items():
        if want is None:
            continue
        col = FIELDS.get(key, key)
        if col not in df.columns:
            raise BuildError(f"omnicell-tosg: condition '{key}': column '{col}' is not in {meta_name}")
        vals = [want] if isinstance(want, (str, int, float, bool)) else list(want)
        have = df[col].astype(str).str.strip().str.lower()
        m = have.isin([str(v).strip().lower() for v in vals]).to_numpy()
        if not m.any():
            top = ", ".join(f"{k} ({v})" for k, v in df[col].value_counts().head(12).items())
            raise BuildError(f"omnicell-tosg: condition {key}={want!r} matches no cell of {meta_name}; "
                             f"values of '{col}': {top}")
        mask &= m
    sel = df[mask]
    if sel.empty:
        raise BuildError(f"omnicell-tosg: the conditions {conditions} together match no cell of {meta_name}")
    return sel


def _sample(sel: pd.DataFrame, sample_size: int | None, sample_ratio: float | None, seed: int) -> pd.DataFrame:
    if sample_size is not None and sample_ratio is not None:
        raise BuildError("omnicell-tosg: give sample_size or sample_ratio, not both")
    rng = np.random.default_rng(seed)
    n = len(sel)
    if sample_ratio is not None:
        if not 0 < sample_ratio <= 1:
            raise BuildError(f"omnicell-tosg: sample_ratio must be in (0, 1], got {sample_ratio}")
        k = max(1, int(round(n * sample_ratio)))
    elif sample_size is not None:
        if sample_size < 1:
            raise BuildError(f"omnicell-tosg: sample_size must be >= 1, got {sample_size}")
        k = min(int(sample_size), n)
    else:
        k = n
    if k < n:
        sel = sel.iloc[np.sort(rng.choice(n, size=k, replace=False))]
    return sel


def _shard_name(p: str) -> str:
    p = str(p).replace("\\", "/").lstrip("/")
    return p if p.startswith(MATRIX_DIR + "/") else f"{MATRIX_DIR}/{p}"


def _read_text(src) -> tuple[pd.DataFrame, list[str]]:
    """Node text table: entity_id + name/description/biology (columns absent in the source are left out)."""
    files = src.files()
    if TEXT_FILES["name"] not in files:
        raise BuildError(f"omnicell-tosg: {src.where} has no {TEXT_FILES['name']} (the entity list)")
    out, read = None, []
    for col, fname in TEXT_FILES.items():
        if fname not in files:
            continue
        try:
            t = pd.read_csv(src.fetch(fname), dtype=str, keep_default_na=False)
        except Exception as e:  # noqa: BLE001
            raise FormatError(fname, f"cannot read: {type(e).__name__}: {e}") from e
        if t.shape[1] < 2:
            raise FormatError(fname, f"expected 2 columns (entity id, text), found {t.shape[1]}")
        if out is None:
            out = pd.DataFrame({"entity_id": t.iloc[:, 0].to_numpy(), col: t.iloc[:, 1].to_numpy()})
        else:
            if len(t) != len(out):
                raise FormatError(fname, f"{len(t)} rows, but {TEXT_FILES['name']} lists {len(out)} entities")
            if not np.array_equal(t.iloc[:, 0].to_numpy(), out["entity_id"].to_numpy()):
                i = int(np.flatnonzero(t.iloc[:, 0].to_numpy() != out["entity_id"].to_numpy())[0])
                raise FormatError(fname, f"entity id {t.iloc[i, 0]!r} differs from {TEXT_FILES['name']} "
                                         f"({out['entity_id'].iloc[i]!r})", line=i + 2)
            out[col] = t.iloc[:, 1].to_numpy()
        read.append(fname)
    for col in TEXT_FILES:
        if col not in out:
            out[col] = ""
    if out["entity_id"].duplicated().any():
        dup = out["entity_id"][out["entity_id"].duplicated()].iloc[0]
        raise FormatError(TEXT_FILES["name"], f"entity id {dup!r} appears twice")
    return out, read


def _load_npy(path: Path, name: str, mmap: bool = True) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise FormatError(name, f"not a readable .npy array: {type(e).__name__}: {e}") from e


def _read_topology(src, n: int) -> tuple[dict, list[str]]:
    files = src.files()
    if EDGE_FILES["edge_index"] not in files:
        raise BuildError(f"omnicell-tosg: {src.where} has no {EDGE_FILES['edge_index']}")
    ei = _load_npy(src.fetch(EDGE_FILES["edge_index"]), EDGE_FILES["edge_index"], mmap=False)
    parts, read = {}, [EDGE_FILES["edge_index"]]
    for kind in ("internal", "ppi"):
        f = EDGE_FILES[kind]
        if f in files:
            parts[kind] = graph.check_edge_index(_load_npy(src.fetch(f), f, mmap=False), n, f)
            read.append(f)
    return graph.encode_topology(ei, n, parts, where=EDGE_FILES["edge_index"]), read


# -- storage choice -----------------------------------------------------------------------
def choose_storage(sample: np.ndarray, codec: str = "blosc-zstd-3", repeats: int = 3) -> dict:
    """Measure dense vs CSR on a sample of rows: compressed bytes with the store codec and
    decode time back to dense rows. The smaller wins unless it decodes over 2x slower."""
    import zarr
    from zarr.storage import MemoryStore

    from ...storage import make_codec

    sample = np.ascontiguousarray(sample, dtype=np.float32)
    comp = make_codec(codec)
    kw = {"compressors": comp} if comp is not None else {"compressors": None}
    res: dict[str, Any] = {"rows_measured": int(sample.shape[0]), "density": float((sample != 0).mean()) if sample.size else 0.0}

    def nbytes(store) -> int:
        import asyncio

        async def total():
            n = 0
            async for k in store.list():
                b = await store.get(k, prototype=zarr.core.buffer.default_buffer_prototype())
                n += len(b.to_bytes()) if b is not None else 0
            return n
        return asyncio.run(total())

    s_dense = MemoryStore()
    zd = zarr.create_array(s_dense, shape=sample.shape, dtype="float32", chunks=sample.shape, **kw)
    zd[...] = sample
    csr = sp.csr_matrix(sample)
    s_csr = MemoryStore()
    g = zarr.open_group(s_csr, mode="w", zarr_format=3)
    arrs = {}
    for nm, a in (("data", csr.data.astype(np.float32)), ("indices", csr.indices.astype(np.int32)),
                  ("indptr", csr.indptr.astype(np.int64))):
        z = g.create_array(nm, shape=a.shape, dtype=a.dtype, chunks=(max(1, a.size),), **kw)
        z[...] = a
        arrs[nm] = z

    def t_dense():
        return np.asarray(zd[...])

    def t_csr():
        return sp.csr_matrix((arrs["data"][...], arrs["indices"][...], arrs["indptr"][...]), shape=sample.shape).toarray()

    def best(fn):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    res["dense_bytes"], res["csr_bytes"] = nbytes(s_dense), nbytes(s_csr)
    res["dense_read_s"], res["csr_read_s"] = best(t_dense), best(t_csr)
    small = "csr" if res["csr_bytes"] < res["dense_bytes"] else "dense"
    fast = "csr" if res["csr_read_s"] < res["dense_read_s"] else "dense"
    slow_s = max(res["csr_read_s"], res["dense_read_s"])
    # smaller wins, unless it decodes over 2x slower on a sample big enough to time (>10 ms)
    overrule = small != fast and slow_s > 0.01 and slow_s > 2 * min(res["csr_read_s"], res["dense_read_s"])
    res["choice"] = fast if overrule else small
    return res


# -- the builder --------------------------------------------------------------------------
@register("omnicell-tosg")
def build(card, workdir, *, tissue=None, disease=None, cell_type=None, sex=None, age_group=None,
          conditions: dict | None = None, sample_size: int | None = None, sample_ratio: float | None = None,
          seed: int = 0, storage: str = "auto", local_dir: str | None = None, revision: str | None = None,
          repo_id: str | None = None) -> BuildResult:
    """Options:

    tissue, disease, cell_type, sex, age_group: a value or list of values to keep
        (case-insensitive; ``tissue`` matches ``tissue_general``);
    conditions: more ``{metadata column: value(s)}`` filters;
    sample_size / sample_ratio: keep that many / that fraction of the matching cells (seeded);
        neither given: the catalog default (``sample_size: 2000``); ``sample_ratio=1.0`` keeps all;
    seed: sampling seed;
    storage: ``"auto"`` (measured on the selected rows), ``"dense"`` or ``"csr"``;
    local_dir: read a local folder in the published layout instead of the Hub;
    revision / repo_id: override the catalog's pinned Hub revision / repo.
    """
    opts = dict(card.get("builder_options", {}))
    if sample_size is None and sample_ratio is None:
        sample_size = opts.get("sample_size")
    if storage not in ("auto", "dense", "csr"):
        raise BuildError(f"omnicell-tosg: storage must be 'auto', 'dense' or 'csr', got {storage!r}")
    src_cfg = card["source"]
    src = _Local(local_dir) if local_dir else _Hub(repo_id or src_cfg["location"], revision or src_cfg.get("revision"))

    meta, meta_name = _read_metadata(src)
    conds = {"tissue": tissue, "disease": disease, "cell_type": cell_type, "sex": sex, "age_group": age_group}
    conds.update(conditions or {})
    sel = _select(meta, meta_name, conds)
    n_matched = len(sel)
    sel = _sample(sel, sample_size, sample_ratio, seed)

    text, text_read = _read_text(src)
    n_ent = len(text)
    topo, edge_read = _read_topology(src, n_ent)

    # Read only the shards holding the selected cells, each once, rows in shard order.
    sel = sel.assign(_shard=sel["matrix_file_path"].map(_shard_name))
    files = src.files()
    shards = sorted(sel["_shard"].unique())
    missing = [s for s in shards if s not in files]
    if missing:
        raise BuildError(f"omnicell-tosg: {meta_name} points at shard(s) not in {src.where}: {', '.join(missing[:5])}")
    all_shards = sorted(f for f in files if f.startswith(MATRIX_DIR + "/") and f.endswith(".npy"))
    blocks, order, measured, width = [], [], None, None
    pos = np.arange(len(sel))
    for shard in shards:
        here = (sel["_shard"] == shard).to_numpy()
        rows = sel["matrix_row_idx"].to_numpy()[here]
        arr = _load_npy(src.fetch(shard), shard)
        if arr.ndim != 2:
            raise FormatError(shard, f"expected a 2-D cells x entities array, got shape {list(arr.shape)}")
        if arr.shape[1] > n_ent:
            raise FormatError(shard, f"{arr.shape[1]} columns, but {TEXT_FILES['name']} lists only {n_ent} entities")
        if rows.max() >= arr.shape[0]:
            raise FormatError(shard, f"{meta_name} asks for row {int(rows.max())}, the shard has {arr.shape[0]} rows")
        if width is not None and arr.shape[1] != width:
            raise FormatError(shard, f"{arr.shape[1]} columns, other shards have {width}")
        width = arr.shape[1]
        srt = np.argsort(rows, kind="stable")
        block = np.asarray(arr[rows[srt]], dtype=np.float32)
        if not np.isfinite(block).all():
            raise FormatError(shard, "holds NaN or infinite values in the selected rows")
        if measured is None and storage == "auto":  # measured on padded rows, as they will be stored
            smp = block[:256]
            measured = choose_storage(np.hstack([smp, np.zeros((len(smp), n_ent - arr.shape[1]), np.float32)]))
        kind = measured["choice"] if measured else storage
        blocks.append(sp.csr_matrix(block) if kind == "csr" else block)
        order.append(pos[here][srt])
        del arr
    kind = measured["choice"] if measured else storage
    pad = n_ent - width
    if kind == "csr":
        X = sp.vstack(blocks, format="csr")
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_ent))
    else:
        X = np.vstack(blocks)
        if pad:
            X = np.hstack([X, np.zeros((X.shape[0], pad), dtype=np.float32)])
    inv = np.empty(len(sel), dtype=np.int64)
    inv[np.concatenate(order)] = np.arange(len(sel))
    X = X[inv]  # back to metadata order

    obs = _obs(sel.drop(columns=["_shard"]))
    mdata = _mudata(X, obs, text, topo)
    report = {
        "cells_in_metadata": int(len(meta)), "cells_matched": int(n_matched), "cells_kept": int(len(sel)),
        "conditions": {k: v for k, v in conds.items() if v is not None},
        "shards_read": len(shards), "shards_in_source": len(all_shards),
        "entities": int(n_ent), "shard_columns": int(width), "zero_padded_columns": int(pad),
        "edges": int(topo["edge_index"].shape[1]),
        "storage": kind, "storage_measurement": measured,
    }
    extra = {
        "source": {"where": src.where, "commit": src.revision, "requested_revision": src.requested,
                   "files_read": [meta_name, *text_read, *edge_read, *shards]},
        "graph": {"modality": "expression", "n_nodes": int(n_ent), "n_edges": int(topo["edge_index"].shape[1]),
                  "edge_kinds": graph.EDGE_KINDS, "stored_at": graph_key("expression"),
                  "node_text_table": graph.NODES_TABLE},
    }
    return BuildResult(mdata=mdata, report=report, tables={graph.NODES_TABLE: text}, extra=extra,
                       feature_kinds={"expression": "transcript and protein abundance (graph nodes)"})


def _obs(sel: pd.DataFrame) -> pd.DataFrame:
    obs = sel.copy()
    names = obs["matrix_file_path"].astype(str) + ":" + obs["matrix_row_idx"].astype(str)
    obs.index = pd.Index(names.to_numpy(), name="cell")
    if obs.index.duplicated().any():
        raise FormatError("cell metadata", f"cell {obs.index[obs.index.duplicated()][0]!r} is listed twice")
    for lab in LABELS:
        src = FIELDS[lab]
        if src in obs.columns and lab not in obs.columns:
            obs[lab] = obs[src]
    # unknown donors: one group per study, so they never straddle splits
    if "donor_id" in obs.columns:
        d = obs["donor_id"].astype("string")
        unknown = d.isna() | d.str.strip().isin(["", "nan", "None", "unknown"])
        study = obs["dataset_id"].astype(str) if "dataset_id" in obs.columns else pd.Series("all", index=obs.index)
        obs["donor_id"] = d.where(~unknown, "unknown-donor:" + study).astype(str)
    else:
        obs["donor_id"] = ("unknown-donor:" + obs["dataset_id"].astype(str)) if "dataset_id" in obs.columns else "unknown-donor"
    for c in obs.columns:
        if obs[c].dtype == object or str(obs[c].dtype) in ("string", "str"):
            obs[c] = obs[c].astype(str).astype("category")
    obs["has_expression"] = True
    return obs


def _mudata(X, obs: pd.DataFrame, text: pd.DataFrame, topo: dict):
    import anndata as ad
    import mudata as md

    var = pd.DataFrame({"name": text["name"].to_numpy()}, index=pd.Index(text["entity_id"].astype(str), name="entity"))
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=obs.index), var=var)
    a.uns[graph.GRAPH_KEY] = topo
    md.set_options(pull_on_update=False)
    m = md.MuData({"expression": a})
    m.obs = obs
    return m
