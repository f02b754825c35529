"""Builder of ``omnicell-tosg``: cell text-omic signaling graphs from the published release.

Published layout (a Hugging Face dataset repo, or a local folder with the same files)::

    cell_metadata_with_mappings.parquet (or .csv)   one row per cell: matrix_file_path,
                                                    matrix_row_idx, CMT_name, disease_BMG_name,
                                                    sex_normalized, development_stage_category,
                                                    tissue_general, dataset_id, donor_id, ...
    expression_matrix/{source}_{tissue}_part_{i}.npy  row shards, cells x entity columns
    edge_index.npy, internal_edge_index.npy, ppi_edge_index.npy   COO [2, E]
    s_name.csv, s_desc.csv, s_bio.csv               one text row per entity, read by header
                                                    (Name / Description / Type, Sequence)

The builder reads the metadata, keeps the cells matching the conditions
(harmonised columns; the raw ones are kept as ``raw_*``), samples them and
reads only their rows: from the Hub with HTTP range requests into each
``.npy`` shard (:mod:`.npy_rows`; a published shard is ~16.5 GB), from a
local folder through a memory map.  Rows are normalised as the authors do
(:mod:`.authors`) unless ``normalize="none"``, and split train/test by donor
with the authors' rule unless ``split="donor"``.  It returns one modality
``expression`` (cells x entities), dense or CSR as measured on the selected
rows (:func:`choose_storage`), the topology (stored once,
:mod:`omicsdata.graph`) and the node text (Parquet).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ... import graph
from ...builders import BuildResult, register
from ...errors import BuildError, FormatError
from ...splits import assign_splits
from ...storage.layout import graph_key
from . import authors
from .files import _Hub, _load_npy, _Local
from .storage_choice import choose_storage  # noqa: F401 - public here too

METADATA_FILES = ("cell_metadata_with_mappings.parquet", "cell_metadata_with_mappings.csv")
MATRIX_DIR = "expression_matrix"
EDGE_FILES = {"edge_index": "edge_index.npy", "internal": "internal_edge_index.npy", "ppi": "ppi_edge_index.npy"}
TEXT_FILES = {"name": "s_name.csv", "description": "s_desc.csv", "biology": "s_bio.csv"}
#: file -> {header in the file: column of the node table}; read by header, never by position
TEXT_COLUMNS = {"s_name.csv": {"Name": "name"}, "s_desc.csv": {"Description": "description"},
                "s_bio.csv": {"Type": "biology_type", "Sequence": "biology"}}
#: entity id columns, first present wins (none present: ids are "entity_<row>")
ID_COLUMNS = ("BioMedGraphica_Conn_ID", "BioMedGraphica_ID")
REQUIRED = ("matrix_file_path", "matrix_row_idx")

#: Builder condition / obs label name -> published (harmonised) metadata column.
FIELDS = {
    "cell_type": "CMT_name",
    "disease": "disease_BMG_name",
    "sex": "sex_normalized",
    "age_group": "development_stage_category",
    "organ": "tissue_general",
    "tissue": "tissue_general",
}
LABELS = ("cell_type", "disease", "sex", "age_group", "organ")


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
    return authors.rename_raw(df), name


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
    """Node text table, one row per entity in node order, read by header.

    Columns: ``entity_id`` (an id column of :data:`ID_COLUMNS` when present,
    else ``entity_<row>``), ``name`` (s_name.csv ``Name``), ``description``
    (s_desc.csv ``Description``), ``biology_type`` / ``biology`` (s_bio.csv
    ``Type`` / ``Sequence``).  A file that is absent leaves its columns empty;
    a file present without its header is an error naming the file and the
    headers it has.
    """
    files = src.files()
    if TEXT_FILES["name"] not in files:
        raise BuildError(f"omnicell-tosg: {src.where} has no {TEXT_FILES['name']} (the entity list)")
    out, read, ids_from = None, [], None
    for fname, cols in TEXT_COLUMNS.items():
        if fname not in files:
            continue
        try:
            t = pd.read_csv(src.fetch(fname), dtype=str, keep_default_na=False)
        except Exception as e:  # noqa: BLE001
            raise FormatError(fname, f"cannot read: {type(e).__name__}: {e}") from e
        heads = [str(c).strip() for c in t.columns]
        t.columns = heads
        missing = [h for h in cols if h not in heads]
        if missing:
            raise FormatError(fname, f"no column {' / '.join(repr(h) for h in missing)} in its header "
                                     f"(has: {', '.join(heads[:12])})")
        id_col = next((c for c in ID_COLUMNS if c in heads), None)
        if out is None:
            ids = t[id_col].to_numpy() if id_col else np.array([f"entity_{i}" for i in range(len(t))], dtype=object)
            out, ids_from = pd.DataFrame({"entity_id": ids}), (fname if id_col else None)
        elif len(t) != len(out):
            raise FormatError(fname, f"{len(t)} rows, but {TEXT_FILES['name']} lists {len(out)} entities")
        elif id_col and ids_from:
            have, want = t[id_col].to_numpy(), out["entity_id"].to_numpy()
            if not np.array_equal(have, want):
                i = int(np.flatnonzero(have != want)[0])
                raise FormatError(fname, f"entity id {have[i]!r} differs from {ids_from} ({want[i]!r})", line=i + 2)
        for head, col in cols.items():
            out[col] = t[head].to_numpy()
        read.append(fname)
    for col in ("name", "description", "biology_type", "biology"):
        if col not in out:
            out[col] = ""
    if out["entity_id"].duplicated().any():
        dup = out["entity_id"][out["entity_id"].duplicated()].iloc[0]
        raise FormatError(TEXT_FILES["name"], f"entity id {dup!r} appears twice")
    return out, read


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


# -- the builder --------------------------------------------------------------------------
@register("omnicell-tosg")
def build(card, workdir, *, tissue=None, disease=None, cell_type=None, sex=None, age_group=None,
          conditions: dict | None = None, sample_size: int | None = None, sample_ratio: float | None = None,
          seed: int = 0, storage: str = "auto", local_dir: str | None = None, revision: str | None = None,
          repo_id: str | None = None, normalize: str = "log1p_cp10k", split: str = "authors",
          split_seed: int = 2025, exclude_pretrain: bool = True, range_reads: bool = True,
          max_gap: int = 0) -> BuildResult:
    """Options:

    tissue, disease, cell_type, sex, age_group: a value or list of values to keep
        (case-insensitive; matched on the harmonised columns, ``tissue`` on ``tissue_general``);
    conditions: more ``{metadata column: value(s)}`` filters (raw columns are named ``raw_*``);
    sample_size / sample_ratio: keep that many / that fraction of the matching cells (seeded);
        neither given: the catalog default (``sample_size: 2000``); ``sample_ratio=1.0`` keeps all;
    seed: sampling seed;
    storage: ``"auto"`` (measured on the selected rows), ``"dense"`` or ``"csr"``;
    local_dir: read a local folder in the published layout instead of the Hub;
    revision / repo_id: override the catalog's pinned Hub revision / repo;
    normalize: ``"log1p_cp10k"`` (the authors': total 1e4 per cell, then log1p; the shards hold
        the values before it) or ``"none"`` (values as stored);
    split: ``"authors"`` (train/test by dataset_id + donor_id, ~0.2 test, their rule; cells without a
        donor id are left out) or ``"donor"`` (ours: train/val/test 0.7/0.15/0.15 by donor, stratified
        by disease; unknown donors grouped per study);
    split_seed: seed of the split's tie-breaking / assignment (the authors' default 2025);
    exclude_pretrain: leave out cells flagged ``is_pretrain_data`` (kept when False);
    range_reads: read Hub shards by HTTP range (default) instead of downloading them whole;
    max_gap: join row runs separated by at most this many unwanted rows into one range request.
    """
    opts = dict(card.get("builder_options", {}))
    if sample_size is None and sample_ratio is None:
        sample_size = opts.get("sample_size")
    if storage not in ("auto", "dense", "csr"):
        raise BuildError(f"omnicell-tosg: storage must be 'auto', 'dense' or 'csr', got {storage!r}")
    if normalize not in authors.NORMALIZATIONS:
        raise BuildError(f"omnicell-tosg: normalize must be one of {authors.NORMALIZATIONS}, got {normalize!r}")
    if split not in authors.SPLITS:
        raise BuildError(f"omnicell-tosg: split must be one of {authors.SPLITS}, got {split!r}")
    src_cfg = card["source"]
    src = _Local(local_dir) if local_dir else _Hub(repo_id or src_cfg["location"], revision or src_cfg.get("revision"))

    meta, meta_name = _read_metadata(src)
    conds = {"tissue": tissue, "disease": disease, "cell_type": cell_type, "sex": sex, "age_group": age_group}
    conds.update(conditions or {})
    sel = _select(meta, meta_name, conds)
    n_matched = len(sel)
    n_pretrain = 0
    if exclude_pretrain and "is_pretrain_data" in sel.columns:
        flag = sel["is_pretrain_data"].astype(str).str.strip().str.lower().isin(["true", "1", "1.0", "yes"])
        n_pretrain = int(flag.sum())
        sel = sel[~flag.to_numpy()]
    sel = sel.assign(donor_key=authors.donor_key(sel))
    n_no_donor = 0
    if split == "authors":
        n_no_donor = int(sel["donor_key"].isna().sum())
        sel = sel[sel["donor_key"].notna().to_numpy()]
    if sel.empty:
        raise BuildError(f"omnicell-tosg: no cell of {meta_name} is left after the conditions {conds}"
                         f" ({n_pretrain} is_pretrain_data cells and {n_no_donor} cells without donor_id left out)")
    sel = _sample(sel, sample_size, sample_ratio, seed)

    text, text_read = _read_text(src)
    n_ent = len(text)
    topo, edge_read = _read_topology(src, n_ent)

    X, kind, measured, width, stats = _read_expression(src, sel, n_ent, storage, normalize, range_reads, max_gap)
    pad = n_ent - width

    obs = _obs(sel)
    obs["split"] = _split(obs, split, split_seed)
    mdata = _mudata(X, obs, text, topo)
    report = {
        "cells_in_metadata": int(len(meta)), "cells_matched": int(n_matched), "cells_kept": int(len(sel)),
        "pretrain_cells_excluded": n_pretrain, "cells_without_donor_excluded": n_no_donor,
        "conditions": {k: v for k, v in conds.items() if v is not None},
        "shards_read": stats["shards_read"], "shards_in_source": stats["shards_in_source"],
        "expression_read": stats["read"],
        "entities": int(n_ent), "shard_columns": int(width), "zero_padded_columns": int(pad),
        "edges": int(topo["edge_index"].shape[1]),
        "normalization": {"method": normalize, "target_sum": 1e4 if normalize != "none" else None,
                          "over": "the shard (measured) columns, before zero padding"},
        "split": {"method": split, "seed": split_seed,
                  "by": "dataset_id||donor_id (obs donor_key)" if split == "authors" else "donor_key",
                  "fractions": {"train": 0.8, "test": 0.2} if split == "authors"
                  else {"train": 0.7, "val": 0.15, "test": 0.15}},
        "storage": kind, "storage_measurement": measured,
    }
    extra = {
        "source": {"where": src.where, "commit": src.revision, "requested_revision": src.requested,
                   "files_read": [meta_name, *text_read, *edge_read, *stats["shards"]],
                   "shards": stats["identities"]},
        "graph": {"modality": "expression", "n_nodes": int(n_ent), "n_edges": int(topo["edge_index"].shape[1]),
                  "edge_kinds": graph.EDGE_KINDS, "stored_at": graph_key("expression"),
                  "node_text_table": graph.NODES_TABLE},
    }
    return BuildResult(mdata=mdata, report=report, tables={graph.NODES_TABLE: text}, extra=extra,
                       feature_kinds={"expression": "transcript and protein abundance (graph nodes)"})


def _read_expression(src, sel: pd.DataFrame, n_ent: int, storage: str, normalize: str, range_reads: bool,
                     max_gap: int):
    """Rows of the selected cells (metadata order), normalised, zero-padded to all entities."""
    shard_of = sel["matrix_file_path"].map(_shard_name)
    files = src.files()
    shards = sorted(shard_of.unique())
    missing = [s for s in shards if s not in files]
    if missing:
        raise BuildError(f"omnicell-tosg: the cell metadata points at shard(s) not in {src.where}: "
                         f"{', '.join(missing[:5])}")
    all_shards = sorted(f for f in files if f.startswith(MATRIX_DIR + "/") and f.endswith(".npy"))
    blocks, order, measured, width = [], [], None, None
    read = {"requests": 0, "bytes_fetched": 0, "rows_fetched": 0, "rows_from_cache": 0, "shard_bytes": 0,
            "range_reads": bool(range_reads and isinstance(src, _Hub))}
    identities = []
    pos = np.arange(len(sel))
    for shard in shards:
        here = (shard_of == shard).to_numpy()
        rows = sel["matrix_row_idx"].to_numpy()[here]
        reader = src.rows(shard, range_reads=range_reads, max_gap=max_gap)
        n_rows, n_cols = reader.shape
        if n_cols > n_ent:
            raise FormatError(shard, f"{n_cols} columns, but {TEXT_FILES['name']} lists only {n_ent} entities")
        if rows.max() >= n_rows:
            raise FormatError(shard, f"the cell metadata asks for row {int(rows.max())}, the shard has {n_rows} rows")
        if width is not None and n_cols != width:
            raise FormatError(shard, f"{n_cols} columns, other shards have {width}")
        width = n_cols
        srt = np.argsort(rows, kind="stable")
        block = np.asarray(reader.read_rows(rows[srt]), dtype=np.float32)
        if not np.isfinite(block).all():
            raise FormatError(shard, "holds NaN or infinite values in the selected rows")
        try:
            block = authors.normalize(block, normalize)
        except BuildError as e:
            raise FormatError(shard, str(e).removeprefix("omnicell-tosg: ")) from e
        if reader.stats is not None:
            for k in ("requests", "bytes_fetched", "rows_fetched", "rows_from_cache"):
                read[k] += int(getattr(reader.stats, k))
            read["shard_bytes"] += int(reader.source["size"])
            identities.append({"path": shard, "etag": reader.source["etag"], "size": reader.source["size"],
                               "commit": reader.source["commit"]})
        if measured is None and storage == "auto":  # measured on padded rows, as they will be stored
            smp = block[:256]
            measured = choose_storage(np.hstack([smp, np.zeros((len(smp), n_ent - n_cols), np.float32)]))
        kind = measured["choice"] if measured else storage
        blocks.append(sp.csr_matrix(block) if kind == "csr" else block)
        order.append(pos[here][srt])
        del reader
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
    stats = {"shards_read": len(shards), "shards_in_source": len(all_shards), "shards": shards,
             "read": read, "identities": identities}
    return X[inv], kind, measured, width, stats


def _split(obs: pd.DataFrame, how: str, seed: int) -> pd.Series:
    if how == "authors":
        return authors.authors_split(obs["donor_key"].astype(str), seed=seed)
    strat = obs["disease"].astype(str).to_numpy() if "disease" in obs else None
    return pd.Series(assign_splits(obs["donor_key"].astype(str).to_numpy(), strat,
                                   {"train": 0.7, "val": 0.15, "test": 0.15}, seed), index=obs.index)


def _obs(sel: pd.DataFrame) -> pd.DataFrame:
    obs = sel.copy()
    names = obs["matrix_file_path"].astype(str) + ":" + obs["matrix_row_idx"].astype(str)
    obs.index = pd.Index(names.to_numpy(), name="cell")
    if obs.index.duplicated().any():
        raise FormatError("cell metadata", f"cell {obs.index[obs.index.duplicated()][0]!r} is listed twice")
    for lab, src in authors.HARMONISED.items():  # labels are the harmonised columns, never the raw ones
        if src in obs.columns:
            obs[lab] = obs[src]
        elif lab in obs.columns:
            obs = obs.drop(columns=[lab])
    # unknown donors (kept only by split="donor"): one group per study, so they never straddle splits
    study = obs["dataset_id"].astype(str) if "dataset_id" in obs.columns else pd.Series("all", index=obs.index)
    unknown = obs["donor_key"].isna()
    obs["donor_key"] = obs["donor_key"].astype("string").where(~unknown, "unknown-donor:" + study).astype(str)
    if "donor_id" in obs.columns:
        obs["donor_id"] = obs["donor_id"].astype("string").where(~unknown, "unknown-donor:" + study).astype(str)
    else:
        obs["donor_id"] = "unknown-donor:" + study
    for c in obs.columns:
        if obs[c].dtype == object or str(obs[c].dtype) in ("string", "str"):
            obs[c] = obs[c].astype(str).astype("category")
    obs["has_expression"] = True
    return obs


def _mudata(X, obs: pd.DataFrame, text: pd.DataFrame, topo: dict):
    import anndata as ad

    from ...storage.settings import new_mudata

    var = pd.DataFrame({"name": text["name"].to_numpy()}, index=pd.Index(text["entity_id"].astype(str), name="entity"))
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=obs.index), var=var)
    a.uns[graph.GRAPH_KEY] = topo
    return new_mudata({"expression": a}, obs)
