"""Write a simulated cohort as GDC raw files, plus the JSON the GDC API would return.

:func:`write_gdc_raw` turns :func:`omicsdata.synth.simulate_pancancer` output
into the files a GDC download yields, in their published layouts
(STAR - Counts TSV, SeSAMe beta values, miRNA quantification, gzipped masked
somatic MAF, RPPA TSV) and the ``/files`` and ``/cases`` hits describing them
(``file_id``, ``md5sum``, ``file_size``, ``associated_entities``,
``demographic``, ``diagnoses``, ``follow_ups`` ...) in the GDC's current data model
(``demographic.sex_at_birth``, not the removed ``gender``; some alive patients'
latest follow-up only in ``follow_ups.days_to_follow_up``; some lower-case
``vital_status``). Layout under ``out``::

    out/files/<file_id>/<file_name>
    out/files.json      # /files hits (FILE_FIELDS), one per file
    out/cases.json      # /cases hits (CASE_FIELDS), one per patient

Used by ``demo-pancancer`` (so the demo runs the real parsers) and by the
tests' GDC look-alike server. Patients get TCGA-style barcodes
``TCGA-<tss>-<id>``; ``id_map`` maps them back to the simulated ids.
Options add the awkward cases real data has: ``duplicates`` (patients with a
second RNA aliquot), ``normals`` (solid-tissue-normal files that must be
skipped), ``unusable_time`` (patients whose clinical record has no usable
survival time), ``na_fraction`` (``NA`` beta values), ``rppa_portions``
(patients with a second RPPA portion barcode on an older plate).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from . import synth

STAR_COLUMNS = ("gene_id", "gene_name", "gene_type", "unstranded", "stranded_first", "stranded_second",
                "tpm_unstranded", "fpkm_unstranded", "fpkm_uq_unstranded")
N_ROWS = ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous")
MAF_COLUMNS = (
    "Hugo_Symbol", "Entrez_Gene_Id", "Center", "NCBI_Build", "Chromosome", "Start_Position", "End_Position",
    "Strand", "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2", "dbSNP_RS", "dbSNP_Val_Status", "Tumor_Sample_Barcode", "Matched_Norm_Sample_Barcode",
    "Match_Norm_Seq_Allele1", "Match_Norm_Seq_Allele2", "Tumor_Validation_Allele1", "Tumor_Validation_Allele2",
    "Match_Norm_Validation_Allele1", "Match_Norm_Validation_Allele2", "Verification_Status",
    "Validation_Status", "Mutation_Status", "Sequencing_Phase", "Sequence_Source", "Validation_Method",
    "Score", "BAM_File", "Sequencer", "Tumor_Sample_UUID", "Matched_Norm_Sample_UUID", "HGVSc", "HGVSp",
    "HGVSp_Short", "Transcript_ID", "Exon_Number", "t_depth", "t_ref_count", "t_alt_count", "n_depth",
    "n_ref_count", "n_alt_count", "all_effects", "Allele", "Gene", "Feature", "Feature_type",
    "One_Consequence", "Consequence", "cDNA_position", "CDS_position", "Protein_position", "Amino_acids",
    "Codons", "Existing_variation", "DISTANCE", "TRANSCRIPT_STRAND", "SYMBOL", "SYMBOL_SOURCE", "HGNC_ID",
    "BIOTYPE", "CANONICAL", "CCDS", "ENSP", "SWISSPROT", "TREMBL", "UNIPARC", "UNIPROT_ISOFORM", "RefSeq",
    "MANE", "APPRIS", "FLAGS", "SIFT", "PolyPhen", "EXON", "INTRON", "DOMAINS", "1000G_AF", "1000G_AFR_AF",
    "gnomAD_AF", "CLIN_SIG", "SOMATIC", "PUBMED", "TRANSCRIPTION_FACTORS", "MOTIF_NAME", "MOTIF_POS",
    "HIGH_INF_POS", "MOTIF_SCORE_CHANGE", "miRNA", "IMPACT", "PICK", "VARIANT_CLASS", "TSL", "HGVS_OFFSET",
    "PHENO", "GENE_PHENO", "CONTEXT", "tumor_bam_uuid", "normal_bam_uuid", "case_id", "GDC_FILTER",
    "COSMIC", "hotspot", "RNA_Support", "RNA_depth", "RNA_ref_count", "RNA_alt_count", "callers",
)
RPPA_COLUMNS = ("AGID", "lab_id", "catalog_number", "set_id", "peptide_target", "protein_expression")
MIRNA_COLUMNS = ("miRNA_ID", "read_count", "reads_per_million_miRNA_mapped", "cross-mapped")

FILE_META = {
    "rna": ("Gene Expression Quantification", "TSV", "Transcriptome Profiling", "STAR - Counts",
            ".rna_seq.augmented_star_gene_counts.tsv", "R"),
    "methylation": ("Methylation Beta Value", "TXT", "DNA Methylation", "SeSAMe Methylation Beta Estimation",
                    ".methylation_array.sesame.level3betas.txt", "D"),
    "mirna": ("miRNA Expression Quantification", "TXT", "Transcriptome Profiling", "BCGSC miRNA Profiling",
              ".mirbase21.mirnas.quantification.txt", "R"),
    "mutation": ("Masked Somatic Mutation", "MAF", "Simple Nucleotide Variation",
                 "Aliquot Ensemble Somatic Variant Merging and Masking", ".wxs.aliquot_ensemble_masked.maf.gz", "D"),
    "protein": ("Protein Expression Quantification", "TSV", "Proteome Profiling", None, "_RPPA_data.tsv", None),
}
SAMPLE_TYPE_NAME = {"01": "Primary Tumor", "11": "Solid Tissue Normal", "06": "Metastatic"}
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _b36(i: int, width: int) -> str:
    s = ""
    for _ in range(width):
        i, r = divmod(i, 36)
        s = _B36[r] + s
    return s


def patient_barcode(i: int, ctype: int, seed: int = 0) -> str:
    """``TCGA-<tss>-<id>``: 12 characters, unique per patient index ``i``."""
    return f"TCGA-{_B36[ctype % 36]}{_B36[seed % 36]}-{_b36(i, 4)}"


def aliquot_barcode(patient: str, modality: str, sample: str = "01", vial: str = "A", plate: int = 100) -> str:
    analyte = FILE_META[modality][5]
    if analyte is None:  # RPPA: TCGA-XX-XXXX-01A-21-A45S-20
        return f"{patient}-{sample}{vial}-21-{_b36(plate, 4)}-20"
    return f"{patient}-{sample}{vial}-11{analyte}-{_b36(plate, 4)}-07"


def _col(v) -> pa.Array:
    """A column as strings: floats in shortest round-trip form (float32 stays float32), NaN as NA."""
    if isinstance(v, pa.Array):
        return v
    v = np.asarray(v)
    if v.dtype.kind in "fi":
        arr = pa.array(v, from_pandas=True)
        return pc.cast(arr, pa.string()).fill_null("NA")
    return pa.array([str(x) for x in v], pa.string())


def tsv_bytes(columns: list, head_lines=()) -> bytes:
    """Tab-separated text of equal-length columns (pyarrow's C++ writer), after ``head_lines``."""
    t = pa.table({f"c{i}": _col(c) for i, c in enumerate(columns)})
    buf = io.BytesIO()
    for line in head_lines:
        buf.write(line.encode() + b"\n")
    pacsv.write_csv(t, buf, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
    return buf.getvalue()


def _names(x) -> pa.Array:
    return x if isinstance(x, pa.Array) else pa.array(list(map(str, x)), pa.string())


def _rep(s: str, n: int) -> pa.Array:
    return pa.array([s], pa.string()).take(pa.array(np.zeros(n, np.int64)))


def star_text(gene_ids, counts: np.ndarray) -> bytes:
    c = np.asarray(counts, dtype=np.float64)
    length = 1000.0 + (np.arange(len(c)) % 7) * 300.0
    rate = c / (length / 1e3)
    tpm = (rate / (rate.sum() or 1.0) * 1e6).round(4)
    fpkm = (c / (length / 1e3) / (max(c.sum(), 1) / 1e6)).round(4)
    first = np.floor(c / 2).astype(np.int64)
    ci = c.astype(np.int64)
    nsum = int(c.sum())
    head = ["# gene-model: GENCODE v36", "\t".join(STAR_COLUMNS)]
    head += [f"{name}\t\t\t{nsum // (5 + k)}\t{nsum // (5 + k)}\t{nsum // (5 + k)}\t\t\t"
             for k, name in enumerate(N_ROWS)]
    ids = _names(gene_ids)
    names = pa.array(synth.gene_symbols(ids.to_pylist()), pa.string())
    return tsv_bytes([ids, names, _rep("protein_coding", len(c)), ci, first, ci - first, tpm, fpkm,
                      (fpkm * 0.8).round(4)], head)


def beta_text(probes, beta: np.ndarray) -> bytes:
    return tsv_bytes([_names(probes), np.asarray(beta, np.float32)])


def mirna_text(ids, counts: np.ndarray) -> bytes:
    c = np.asarray(counts, np.float64)
    rpm = (c / max(c.sum(), 1) * 1e6).round(6)
    cross = np.where(np.arange(len(c)) % 17 == 0, "Y", "N")
    return tsv_bytes([_names(ids), c.astype(np.int64), rpm, cross],
                     ["\t".join(MIRNA_COLUMNS)])


def rppa_text(targets, values: np.ndarray, duplicate: dict | None = None) -> bytes:
    k = len(targets)
    t = list(map(str, targets))
    agid = [f"AGID{i:05d}" for i in range(k)]
    lab = [f"{x}-R-C" for x in t]
    cat = [f"CAT{i}" for i in range(k)]
    st = [f"Set_{i % 20}" for i in range(k)]
    vals = _col(np.asarray(values, np.float32))
    for j, (tt, v) in enumerate((duplicate or {}).items()):  # a second antibody for the same target
        agid.append(f"AGID9{j:04d}")
        lab.append(f"{tt}-M-V")
        cat.append("CATX")
        st.append("Set_99")
        t.append(tt)
        vals = pa.concat_arrays([vals, pa.array([str(v)], pa.string())])
    return tsv_bytes([np.array(agid), np.array(lab), np.array(cat), np.array(st), np.array(t), vals],
                     ["\t".join(RPPA_COLUMNS)])


_CLASSES = (("Missense_Mutation", "MODERATE", "SNP"), ("Nonsense_Mutation", "HIGH", "SNP"),
            ("Frame_Shift_Del", "HIGH", "DEL"), ("Splice_Site", "HIGH", "SNP"))


def maf_text(tumour: str, normal: str, genes, silent_genes=()) -> str:
    lines = ["#version gdc-1.0.0", "#filedate 20220120", "#annotation.spec gdc-1.0.1-public",
             "#n.analyzed.samples 1", "\t".join(MAF_COLUMNS)]
    col = {c: i for i, c in enumerate(MAF_COLUMNS)}
    rows = [(g, _CLASSES[k % len(_CLASSES)]) for k, g in enumerate(genes)]
    rows += [(g, ("Silent", "LOW", "SNP")) for g in silent_genes]
    for k, (g, (cls, impact, vtype)) in enumerate(rows):
        r = ["."] * len(MAF_COLUMNS)
        r[col["Hugo_Symbol"]] = g
        r[col["Entrez_Gene_Id"]] = str(1000 + k)
        r[col["Center"]] = "BI"
        r[col["NCBI_Build"]] = "GRCh38"
        r[col["Chromosome"]] = f"chr{1 + k % 22}"
        r[col["Start_Position"]] = str(100000 + 37 * k)
        r[col["End_Position"]] = str(100000 + 37 * k + (1 if vtype == "DEL" else 0))
        r[col["Strand"]] = "+"
        r[col["Variant_Classification"]] = cls
        r[col["Variant_Type"]] = vtype
        r[col["Reference_Allele"]] = "C"
        r[col["Tumor_Seq_Allele1"]] = "C"
        r[col["Tumor_Seq_Allele2"]] = "-" if vtype == "DEL" else "T"
        r[col["Tumor_Sample_Barcode"]] = tumour
        r[col["Matched_Norm_Sample_Barcode"]] = normal
        r[col["IMPACT"]] = impact
        r[col["SYMBOL"]] = g
        r[col["callers"]] = "muse;mutect2;varscan2"
        lines.append("\t".join(r))
    return "\n".join(lines) + "\n"


def _uuid(seed: int, *key) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"omicsdata-synth/{seed}/" + "/".join(map(str, key))))


def write_gdc_raw(out, spec: "synth.CohortSpec | None" = None, mdata=None, *, modalities=synth.MODALITIES,
                  duplicates: int = 0, normals: int = 0, unusable_time: int = 0, na_fraction: float = 0.0,
                  rppa_duplicates: bool = False, silent_mutations: bool = True, rppa_portions: int = 0,
                  **spec_kw) -> dict:
    """Write the cohort as GDC raw files under ``out``; return a dict with
    ``files`` (``/files`` hits, each with an extra ``local_path``), ``cases``
    (``/cases`` hits), ``index`` (file-index rows for
    :func:`omicsdata.builders.gdc_pancancer.assemble`), ``id_map`` (barcode ->
    simulated id), ``expected`` (what a correct build must find)."""

    out = Path(out)
    spec = spec or synth.CohortSpec(**spec_kw)
    if mdata is None:
        mdata = synth.simulate_pancancer(spec)
    obs = mdata.obs
    n = mdata.n_obs
    ctypes = list(synth.CANCER_TYPES)
    ct_idx = np.array([ctypes.index(c) for c in obs["cancer_type"].astype(str)])
    barcodes = [patient_barcode(i, ct_idx[i], spec.seed) for i in range(n)]
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 777]))
    proj = obs["cancer_type"].astype(str).to_numpy()
    files, index = [], []
    (out / "files").mkdir(parents=True, exist_ok=True)

    def emit(modality, patient_i, text_or_bytes, sample="01", vial="A", plate=100):
        pb = barcodes[patient_i]
        project = str(proj[patient_i])
        aliquot = aliquot_barcode(pb, modality, sample, vial, plate)
        fid = _uuid(spec.seed, modality, aliquot)
        dtype, fmt, cat, wf, suffix, _ = FILE_META[modality]
        fname = (aliquot + suffix) if modality == "protein" else (fid + suffix)
        data = text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode()
        p = out / "files" / fid / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        ents = [{"entity_submitter_id": aliquot, "entity_type": "aliquot"}]
        if modality == "mutation":
            ents.append({"entity_submitter_id": aliquot_barcode(pb, modality, "10", "A", plate), "entity_type": "aliquot"})
        hit = {"file_id": fid, "file_name": fname, "md5sum": hashlib.md5(data).hexdigest(), "file_size": len(data),
               "data_type": dtype, "data_format": fmt, "data_category": cat, "access": "open",
               "cases": [{"submitter_id": pb, "project": {"project_id": project},
                          "samples": [{"sample_type": SAMPLE_TYPE_NAME.get(sample, sample),
                                       "submitter_id": aliquot[:16]}]}],
               "associated_entities": ents}
        if wf:
            hit["analysis"] = {"workflow_type": wf}
        files.append({**hit, "local_path": str(p)})
        index.append({"modality": modality, "barcode": aliquot, "patient_id": pb, "project_id": project,
                      "file_id": fid, "file_name": fname, "path": str(p)})
        return aliquot

    names = {m: synth.feature_names(spec, m) for m in modalities}
    pnames = {m: pa.array(v, pa.string()) for m, v in names.items()}
    has = {m: obs[f"has_{m}"].to_numpy() for m in modalities}
    dense = {m: mdata.mod[m].X for m in modalities if m != "mutation"}
    dense = {m: (X.compute() if hasattr(X, "compute") else np.asarray(X)) for m, X in dense.items()}
    mutX = mdata.mod["mutation"].X.tocsr() if "mutation" in modalities else None
    rppa_dup = set(rng.choice(np.flatnonzero(obs["has_protein"].to_numpy()), size=rppa_portions, replace=False)
                   .tolist()) if rppa_portions and "protein" in modalities else set()
    expected_rppa: dict = {}
    dup_patients = list(rng.choice(np.flatnonzero(obs["has_rna"].to_numpy()), size=min(duplicates, n), replace=False)) \
        if duplicates and "rna" in modalities else []
    normal_patients = list(rng.choice(n, size=min(normals, n), replace=False)) if normals else []
    expected_dup = {}
    for i in range(n):
        for m in modalities:
            if not has[m][i]:
                continue
            if m == "rna":
                emit(m, i, star_text(pnames[m], dense[m][i]))
                if i in dup_patients:  # a second aliquot: vial B (loses by the rule), values doubled
                    expected_dup[barcodes[i]] = emit(m, i, star_text(pnames[m], dense[m][i] * 2), vial="B", plate=200)
            elif m == "methylation":
                b = dense[m][i].copy()
                if na_fraction:
                    b[rng.random(len(b)) < na_fraction] = np.nan
                emit(m, i, beta_text(pnames[m], b))
            elif m == "mirna":
                emit(m, i, mirna_text(pnames[m], dense[m][i]))
            elif m == "protein":
                dup = {names[m][0]: "1.5"} if rppa_duplicates else None
                emit(m, i, rppa_text(names[m], dense[m][i], dup))
                if i in rppa_dup:  # a second portion on an OLDER plate (values doubled): the rule must drop it
                    expected_rppa[barcodes[i]] = emit(m, i, rppa_text(names[m], dense[m][i] * 2 + 1, dup), plate=50)
            elif m == "mutation":
                row = mutX[i]
                genes = [names[m][j] for j in row.indices]
                silent = [names[m][j] for j in rng.choice(len(names[m]), 2)] if silent_mutations else []
                pb = barcodes[i]
                txt = maf_text(aliquot_barcode(pb, m), aliquot_barcode(pb, m, "10"), genes, silent)
                emit(m, i, gzip.compress(txt.encode(), mtime=0))
        if i in normal_patients and "rna" in modalities:  # solid tissue normal: must be skipped
            emit("rna", i, star_text(pnames["rna"], dense["rna"][i] * 0 + 7), sample="11")
    unusable = set(rng.choice(n, size=min(unusable_time, n), replace=False).tolist()) if unusable_time else set()
    cases = []
    ev, tm, stg = obs["os_event"].to_numpy(), obs["os_time"].to_numpy(), obs["stage"].to_numpy()
    sex, age, proj = obs["sex"].astype(str).to_numpy(), obs["age"].to_numpy(), obs["cancer_type"].astype(str).to_numpy()
    for i in range(n):
        dead = bool(ev[i])
        t = float(tm[i])
        st = int(stg[i])
        vital = "Dead" if dead else "Alive"
        if i % 6 == 4:  # older spelling, still served for some cases: lower-case vital status
            vital = vital.lower()
        demo = {"vital_status": vital, "days_to_death": int(t) if dead else None,
                "sex_at_birth": str(sex[i]), "race": ["white", "black or african american", "asian"][i % 3]}
        diag = {"days_to_last_follow_up": None if dead else int(t),
                "age_at_diagnosis": int(round(float(age[i]) * 365.25)),
                "ajcc_pathologic_stage": f"Stage {['I', 'II', 'III', 'IV'][st - 1]}" if st else "Not Reported"}
        diags = [diag]
        follow_ups = []
        if not dead and i % 5 == 0:  # an older diagnosis record with a shorter follow-up
            diags.append({"days_to_last_follow_up": max(int(t) - 100, 0), "age_at_diagnosis": None,
                          "ajcc_pathologic_stage": None})
        if not dead and i % 4 == 1:  # data release 42+: the latest follow-up only in follow_ups
            diag["days_to_last_follow_up"] = None if i % 8 == 1 else max(int(t) - 50, 0)
            follow_ups = [{"days_to_follow_up": max(int(t) - 200, 0)}, {"days_to_follow_up": int(t)}]
        if i in unusable:
            if dead:
                demo["days_to_death"] = None
            else:
                for d in diags:
                    d["days_to_last_follow_up"] = None
                follow_ups = []
        cases.append({"case_id": _uuid(spec.seed, "case", barcodes[i]), "submitter_id": barcodes[i],
                      "project": {"project_id": str(proj[i])},
                      "demographic": demo, "diagnoses": diags,
                      **({"follow_ups": follow_ups} if follow_ups else {})})
    with open(out / "files.json", "w") as fh:
        json.dump(files, fh)
    with open(out / "cases.json", "w") as fh:
        json.dump(cases, fh)
    id_map = dict(zip(barcodes, map(str, obs.index)))
    expected = {"unusable_time": sorted(barcodes[i] for i in unusable),
                "duplicate_rna": expected_dup,
                "duplicate_rppa_portions": expected_rppa,
                "normal_patients": sorted(barcodes[i] for i in normal_patients),
                # alive, usable, latest follow-up only in follow_ups (and no diagnosis follow-up at all)
                "follow_ups_latest": sorted(c["submitter_id"] for c in cases if c.get("follow_ups")),
                "follow_ups_only": sorted(c["submitter_id"] for c in cases if c.get("follow_ups") and all(
                    d.get("days_to_last_follow_up") is None for d in c["diagnoses"]))}
    return {"root": str(out), "files": files, "cases": cases, "index": index, "id_map": id_map,
            "expected": expected, "spec": spec, "mdata": mdata}
