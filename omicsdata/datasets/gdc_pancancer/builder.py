"""Builder of ``gdc-pancancer``: TCGA projects from the NCI Genomic Data Commons.

Steps (each a public function, so other builders can reuse them):

1. :func:`fetch` queries ``/files`` per modality and ``/cases`` for the
   clinical fields, downloads the open-access files into the raw cache
   (resumable, md5-checked, see :mod:`omicsdata.sources.gdc`) and returns a
   *file index*: one dict per file with ``modality``, ``barcode`` (aliquot),
   ``patient_id``, ``project_id``, ``file_id``, ``file_name``, ``path``.
2. :func:`assemble` turns a file index plus ``/cases`` hits into a MuData:
   picks one aliquot per patient and modality (:func:`select_files`), parses
   the files on dask (:func:`parse_modality`; threads by default, or the
   active ``dask.distributed`` client's cluster, unchanged), aligns features,
   builds the clinical ``obs`` and the build report.
3. Optional preprocessing (:mod:`omicsdata.transforms`), fitted on the
   training split only, its parameters kept in the manifest.

Sample rules: a file belongs to the patient of its aliquot barcode (first 12
characters); only the sample types in ``sample_types`` (default ``["01"]``,
primary tumour) are used; several aliquots of one patient and modality are
resolved by :func:`omicsdata.formats.barcode.aliquot_rank` (first vial, lowest
portion, most recent plate), and counted in the report.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...builders import BuildResult, register
from ...errors import BuildError
from ...formats import READERS, MutationFilter, parse_cases, read_maf
from ...formats.barcode import aliquot_rank, is_tumour, patient_of, sample_type
from ...storage.layout import SYMBOL_COLUMN
from ...storage.settings import mudata_no_pull

#: modality -> GDC query and reader
MODALITIES = {
    "rna": {"data_type": "Gene Expression Quantification", "workflow_type": "STAR - Counts",
            "reader": "star_counts", "feature_kind": "gene expression (STAR counts)"},
    "methylation": {"data_type": "Methylation Beta Value", "workflow_type": "SeSAMe Methylation Beta Estimation",
                    "reader": "beta_values", "feature_kind": "CpG beta values"},
    "mirna": {"data_type": "miRNA Expression Quantification", "workflow_type": "BCGSC miRNA Profiling",
              "reader": "mirna", "feature_kind": "miRNA expression"},
    "mutation": {"data_type": "Masked Somatic Mutation",
                 "workflow_type": "Aliquot Ensemble Somatic Variant Merging and Masking",
                 "reader": "maf", "feature_kind": "binary gene mutation calls"},
    "protein": {"data_type": "Protein Expression Quantification", "workflow_type": None,
                "reader": "rppa", "feature_kind": "RPPA protein levels"},
}

TCGA_PROJECTS = (
    "TCGA-ACC", "TCGA-BLCA", "TCGA-BRCA", "TCGA-CESC", "TCGA-CHOL", "TCGA-COAD", "TCGA-DLBC", "TCGA-ESCA",
    "TCGA-GBM", "TCGA-HNSC", "TCGA-KICH", "TCGA-KIRC", "TCGA-KIRP", "TCGA-LAML", "TCGA-LGG", "TCGA-LIHC",
    "TCGA-LUAD", "TCGA-LUSC", "TCGA-MESO", "TCGA-OV", "TCGA-PAAD", "TCGA-PCPG", "TCGA-PRAD", "TCGA-READ",
    "TCGA-SARC", "TCGA-SKCM", "TCGA-STAD", "TCGA-TGCT", "TCGA-THCA", "TCGA-THYM", "TCGA-UCEC", "TCGA-UCS",
    "TCGA-UVM",
)


# --------------------------------------------------------------------------- fetch
def _barcode_of(hit: dict, modality: str) -> str | None:
    """The aliquot barcode of a file hit (tumour entity preferred)."""
    ents = [e.get("entity_submitter_id") for e in hit.get("associated_entities") or [] if e.get("entity_submitter_id")]
    tum = [b for b in ents if is_tumour(b)]
    if tum:
        return sorted(tum)[0]
    if ents:
        return sorted(ents)[0]
    for c in hit.get("cases") or []:
        for s in c.get("samples") or []:
            if s.get("submitter_id") and is_tumour(s["submitter_id"]):
                return s["submitter_id"]
        if c.get("submitter_id"):
            return c["submitter_id"]
    return None


def index_entry(hit: dict, modality: str, path) -> dict:
    """One file-index row from a GDC ``/files`` hit and its local path."""
    bc = _barcode_of(hit, modality)
    if not bc:
        raise BuildError(f"gdc-pancancer: file {hit.get('file_id')} ({hit.get('file_name')}) has no sample barcode")
    proj = None
    for c in hit.get("cases") or []:
        proj = (c.get("project") or {}).get("project_id") or proj
    return {"modality": modality, "barcode": bc, "patient_id": patient_of(bc), "project_id": proj,
            "file_id": hit["file_id"], "file_name": hit["file_name"], "path": str(path)}


def fetch(projects, modalities, client=None, progress: bool = False) -> tuple[list[dict], list[dict], dict]:
    """Query and download; return ``(file index, /cases hits, fetch report)``."""
    from ...sources.gdc import GDCClient

    client = client or GDCClient()
    index, report = [], {"api": client.base, "files_listed": {}}
    hits_by_mod = {}
    for m in modalities:
        spec = MODALITIES[m]
        hits = client.files(projects, spec["data_type"], spec["workflow_type"])
        hits_by_mod[m] = hits
        report["files_listed"][m] = len(hits)
    all_hits = [h for hs in hits_by_mod.values() for h in hs]
    local = client.download(all_hits, progress=progress)
    for m, hits in hits_by_mod.items():
        for h in hits:
            index.append(index_entry(h, m, local[h["file_id"]]))
    cases = client.cases(projects)
    report["cases_listed"] = len(cases)
    report["download"] = dict(client.stats)
    return index, cases, report


# ------------------------------------------------------------------------ select
def select_files(index: list[dict], sample_types=("01",)) -> tuple[dict, dict]:
    """One file per (modality, patient): ``({modality: {patient: entry}}, report)``.

    Files of other sample types are skipped; duplicates are resolved by
    :func:`~omicsdata.formats.barcode.aliquot_rank` and counted.
    """
    allowed = {str(s).zfill(2) for s in sample_types}
    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    rep = {"skipped_sample_type": Counter(), "duplicate_patients": Counter(), "duplicate_files_dropped": Counter()}
    for e in index:
        st = sample_type(e["barcode"])
        if st not in allowed:
            rep["skipped_sample_type"][e["modality"]] += 1
            continue
        groups[e["modality"]][e["patient_id"]].append(e)
    chosen: dict[str, dict[str, dict]] = {}
    for m, by_p in groups.items():
        chosen[m] = {}
        for p, es in by_p.items():
            es = sorted(es, key=lambda e: aliquot_rank(e["barcode"], e["file_id"]))
            chosen[m][p] = es[0]
            if len(es) > 1:
                rep["duplicate_patients"][m] += 1
                rep["duplicate_files_dropped"][m] += len(es) - 1
    return chosen, {k: dict(v) for k, v in rep.items()}


# ------------------------------------------------------------------------- parse
def _parse_dense_batch(paths, reader, opts, ref_features):
    """Parse files; return (values aligned to ref [n, p], {row: (extra names, extra values)})."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fn = READERS[reader]
    out = np.full((len(paths), len(ref_features)), np.nan, dtype=np.float32)
    extras = {}
    for i, path in enumerate(paths):
        prof = fn(path, **opts)
        if prof.features.equals(ref_features):
            out[i] = prof.values
            continue
        pos = pc.index_in(prof.features, value_set=ref_features).to_numpy(zero_copy_only=False)
        pos = np.where(pd.isna(pos), -1, pos).astype(np.int64)
        hit = pos >= 0
        out[i, pos[hit]] = prof.values[hit]
        if (~hit).any():
            extras[i] = (prof.features.filter(pa.array(~hit)).to_pylist(), prof.values[~hit])
    return out, extras


def _parse_maf_batch(paths, flt):
    return [read_maf(p, flt) for p in paths]


def _compute(tasks, scheduler):
    import dask

    if scheduler is None and dask.base.get_scheduler() is None:
        scheduler = "threads"  # no dask.distributed client active
    return dask.compute(*tasks, scheduler=scheduler) if scheduler else dask.compute(*tasks)


def parse_modality(modality: str, entries: list[dict], *, reader: str | None = None, opts: dict | None = None,
                   scheduler=None, files_per_task: int = 16, mutation_filter=None, mutation_genes=None):
    """Parse the chosen files of one modality on dask; return ``(matrix, feature names)``.

    Rows follow ``entries``. Dense modalities align every file to the first
    file's features (files with other features add columns, NaN elsewhere).
    ``mutation`` returns a CSR 0/1 matrix over the mutated genes (or over
    ``mutation_genes`` when given).
    """
    import dask
    import pyarrow as pa

    reader = reader or MODALITIES[modality]["reader"]
    opts = dict(opts or {})
    chunks = [entries[i:i + files_per_task] for i in range(0, len(entries), files_per_task)]
    paths = [tuple(str(e["path"]) for e in c) for c in chunks]  # small task arguments
    if reader == "maf":
        flt = MutationFilter.from_spec(mutation_filter)
        parts = _compute([dask.delayed(_parse_maf_batch)(c, flt) for c in paths], scheduler)
        calls = [r for part in parts for r in part]
        gene_sets = []
        for e, res in zip(entries, calls):
            genes = set()
            pid = e["patient_id"]
            for bc, gs in res.items():
                if patient_of(bc) == pid:
                    genes.update(gs)
            gene_sets.append(genes)
        genes = list(mutation_genes) if mutation_genes is not None else sorted(set().union(*gene_sets) if gene_sets else [])
        col = {g: j for j, g in enumerate(genes)}
        rows, cols = [], []
        for i, gs in enumerate(gene_sets):
            js = [col[g] for g in gs if g in col]
            rows.extend([i] * len(js))
            cols.extend(js)
        X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(entries), len(genes)))
        X.sort_indices()
        return X, genes
    fn = READERS[reader]
    ref = fn(entries[0]["path"], **opts).features
    ref = pa.array(ref.to_pylist(), pa.string()) if not isinstance(ref, pa.Array) else ref
    parts = _compute([dask.delayed(_parse_dense_batch)(c, reader, opts, ref) for c in paths], scheduler)
    X = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, len(ref)), np.float32)
    names = ref.to_pylist()
    extra_names: dict[str, int] = {}
    extra_cells = []
    base = 0
    for (_vals, extras), c in zip(parts, chunks):
        for i, (fn_, fv) in extras.items():
            for f, v in zip(fn_, fv):
                j = extra_names.setdefault(f, len(extra_names))
                extra_cells.append((base + i, j, v))
        base += len(c)
    if extra_names:
        E = np.full((X.shape[0], len(extra_names)), np.nan, np.float32)
        for r, j, v in extra_cells:
            E[r, j] = v
        X = np.concatenate([X, E], axis=1)
        names = names + list(extra_names)
    return X, names


def gene_symbols(path, gene_ids: list[str], value: str = "unstranded") -> list[str]:
    """The ``gene_name`` column of the STAR - Counts file ``path`` for each of ``gene_ids``
    ("" for an id the file does not hold, e.g. one only another file had)."""
    prof = READERS["star_counts"](path, value=value, gene_names=True)
    sym = dict(zip(prof.features.to_pylist(), prof.meta["gene_names"].to_pylist()))
    return [str(sym.get(g) or "") for g in gene_ids]


# ---------------------------------------------------------------------- assemble
def assemble(index: list[dict], cases: list[dict], modalities, *, sample_types=("01",),
             rna_value: str = "unstranded", mirna_value: str = "read_count", mutation_filter="non_silent",
             mutation_genes=None, scheduler=None, files_per_task: int = 16):
    """File index + ``/cases`` hits -> ``(MuData, report, samples table)``.

    Rows are patients with a usable survival time and at least one chosen
    file; each modality holds all rows (zero rows where absent,
    ``obs["has_<modality>"]``).
    """
    import anndata as ad

    from ...storage.settings import new_mudata

    modalities = list(modalities)
    clin, dropped = parse_cases(cases)
    chosen, sel_rep = select_files(index, sample_types)
    with_files = set().union(*[set(chosen.get(m, {})) for m in modalities]) if modalities else set()
    no_clin = sorted(with_files - set(clin.index))
    dropped_ids = {d["patient_id"] for d in dropped}
    patients = sorted(with_files & set(clin.index))
    no_omics = sorted(set(clin.index) - with_files)
    if not patients:
        raise BuildError("gdc-pancancer: no patient has both a usable survival time and an omics file "
                         f"(files for {len(with_files)} patients, usable clinical for {len(clin)})")
    row = {p: i for i, p in enumerate(patients)}
    n = len(patients)
    obs = clin.loc[patients].copy()
    mods, feature_counts, present_counts = {}, {}, {}
    samples = []
    opts = {"rna": {"value": rna_value}, "mirna": {"value": mirna_value}}
    for m in modalities:
        ents = [e for p, e in sorted(chosen.get(m, {}).items()) if p in row]
        has = np.zeros(n, bool)
        if ents:
            X, names = parse_modality(m, ents, opts=opts.get(m), scheduler=scheduler, files_per_task=files_per_task,
                                      mutation_filter=mutation_filter, mutation_genes=mutation_genes)
            rows = np.array([row[e["patient_id"]] for e in ents])
            has[rows] = True
            if sp.issparse(X):
                P = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))), shape=(n, len(rows)))
                full = (P @ X).tocsr()
            else:
                full = np.zeros((n, X.shape[1]), np.float32)
                full[rows] = X
            for e in ents:
                samples.append({"patient_id": e["patient_id"], "modality": m, "barcode": e["barcode"],
                                "file_id": e["file_id"], "file_name": e["file_name"]})
        else:
            names = list(mutation_genes) if (m == "mutation" and mutation_genes is not None) else []
            full = sp.csr_matrix((n, len(names)), dtype=np.float32) if m == "mutation" else np.zeros((n, 0), np.float32)
        var = pd.DataFrame(index=pd.Index(names, dtype=str))
        if m == "rna" and ents:
            var[SYMBOL_COLUMN] = gene_symbols(ents[0]["path"], names, rna_value)
        mods[m] = ad.AnnData(X=full, obs=pd.DataFrame(index=patients), var=var)
        obs[f"has_{m}"] = has
        feature_counts[m] = len(names)
        present_counts[m] = int(has.sum())
    obs["cancer_type"] = pd.Categorical(obs["cancer_type"])
    for c in ("sex", "race", "stage"):
        obs[c] = pd.Categorical(obs[c])
    mdata = new_mudata(mods, obs)
    reasons = Counter(d["reason"] for d in dropped)
    report = {
        "n_patients": n,
        "patients_per_modality": present_counts,
        "features_per_modality": feature_counts,
        "patients_per_cancer_type": {str(k): int(v) for k, v in obs["cancer_type"].value_counts().sort_index().items()},
        "events": int(obs["os_event"].sum()),
        "censored": int((obs["os_event"] == 0).sum()),
        "dropped": {
            "no_usable_survival_time": {"count": len(dropped), "by_reason": dict(reasons),
                                        "patients": sorted(dropped_ids)[:50]},
            "files_but_no_usable_clinical": len(no_clin),
            "clinical_but_no_omics_file": len(no_omics),
            "files_not_selected_sample_type": sel_rep["skipped_sample_type"],
            "duplicate_aliquots": {"patients": sel_rep["duplicate_patients"],
                                   "files_dropped": sel_rep["duplicate_files_dropped"],
                                   "rule": "first vial, lowest portion, most recent plate, then barcode/file id"},
        },
        "sample_types": [str(s).zfill(2) for s in sample_types],
        "values": {"rna": rna_value, "mirna": mirna_value,
                   "mutation_filter": MutationFilter.from_spec(mutation_filter).to_dict()},
    }
    return mdata, report, pd.DataFrame(samples, columns=["patient_id", "modality", "barcode", "file_id", "file_name"])


def preprocess(mdata, card, spec, report: dict) -> dict:
    """Assign splits (card's rules), fit transforms on train rows, apply to all; return their dicts."""
    from ... import transforms
    from ...splits import assign_splits

    cfg = dict(card.get("splits", {}))
    by, strat = cfg.get("by"), cfg.get("stratify")
    groups = mdata.obs[by].to_numpy() if by and by in mdata.obs else mdata.obs_names.to_numpy()
    labels = mdata.obs[strat].to_numpy() if strat and strat in mdata.obs else None
    mdata.obs["split"] = assign_splits(groups, labels, cfg.get("fractions"), cfg.get("seed", 0))
    pipes = transforms.pipelines_from_spec(spec, list(mdata.mod))
    out = {}
    train = (mdata.obs["split"] == "train").to_numpy()
    for m, pipe in pipes.items():
        a = mdata.mod[m]
        rows = train & mdata.obs[f"has_{m}"].to_numpy()
        pipe.fit(a, rows=rows)
        mdata.mod[m] = pipe.transform(a, present=mdata.obs[f"has_{m}"].to_numpy())
        out[m] = pipe.to_dict()
        report.setdefault("preprocess", {})[m] = {"features_in": int(a.n_vars), "features_out": int(mdata.mod[m].n_vars)}
    with mudata_no_pull():
        mdata.update()
    return out


@register("gdc-pancancer")
def build(card, workdir, projects=None, modalities=None, sample_types=("01",), rna_value: str = "unstranded",
          mirna_value: str = "read_count", mutation_filter="non_silent", preprocess_spec=None,
          scheduler: str | None = None, files_per_task: int = 16, progress: bool = True) -> BuildResult:
    """Options: ``projects`` (default all 33 TCGA projects), ``modalities`` (default all
    five), ``sample_types`` (``["01"]``), ``rna_value`` (STAR column), ``mirna_value``,
    ``mutation_filter`` (``non_silent`` | ``impact_high`` | dict), ``preprocess_spec``
    (``None`` | ``"senmo"`` | ``{modality: [steps]}``, see :mod:`omicsdata.transforms`),
    ``scheduler`` (dask scheduler; default: the active distributed client, else threads).
    """
    projects = list(projects or TCGA_PROJECTS)
    modalities = list(modalities or MODALITIES)
    bad = [m for m in modalities if m not in MODALITIES]
    if bad:
        raise BuildError(f"gdc-pancancer: unknown modality {bad} (known: {', '.join(MODALITIES)})")
    index, cases, fetch_rep = fetch(projects, modalities, progress=progress)
    mdata, report, samples = assemble(index, cases, modalities, sample_types=sample_types, rna_value=rna_value,
                                      mirna_value=mirna_value, mutation_filter=mutation_filter,
                                      scheduler=scheduler, files_per_task=files_per_task)
    report = {"projects": projects, **fetch_rep, **report}
    extra = {}
    if preprocess_spec:
        extra["transforms"] = preprocess(mdata, card, preprocess_spec, report)
    kinds = {m: MODALITIES[m]["feature_kind"] for m in modalities}
    return BuildResult(mdata=mdata, report=json.loads(json.dumps(report, default=str)),
                       tables={"samples": samples}, extra=extra, feature_kinds=kinds)
