"""Write a small OmniCellTOSG release in the published layout (test helper).

Layout as read in the authors' repository (``FuhaiLiAiLab/OmniCellTOSG``: README
"Dataset Layout", ``CellTOSG_Loader``): ``expression_matrix/{source}_{tissue}_part_{i}.npy``
dense float32 C-ordered row shards (rows = (meta)cells, raw values: the loader
normalises them), ``cell_metadata_with_mappings.{parquet,csv}`` with the raw
columns ``cell_type, disease, sex, development_stage`` beside the harmonised
``CMT_name, disease_BMG_name, sex_normalized, development_stage_category``
(raw values deliberately differ from the harmonised ones, so a reader that
takes the raw column is caught), ``dataset_id``, ``donor_id``,
``is_pretrain_data``, ``matrix_file_path`` (relative to expression_matrix/),
``matrix_row_idx``; ``s_name.csv`` / ``s_desc.csv`` / ``s_bio.csv`` read by
header (``Name`` / ``Description`` / ``Type``, ``Sequence``; in s_bio the
``Type`` column comes before ``Sequence`` so a positional reader is caught);
``edge_index.npy`` etc. COO ``[2, E]``.  Widths are small; the published
shards are 10,000 x 412,039.

The test decides the truth: a "disease" label per donor and, optionally, a
planted signal (the disease cells over-express a module of transcripts that
are connected in the PPI graph).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TISSUES = {"brain": "braincellatlas", "lung": "cellxgene"}
CMT_IDS = {"neuron": "CMT0001", "astrocyte": "CMT0002", "AT2": "CMT0003", "macrophage": "CMT0004"}
RAW_DISEASE = {"normal": "normal", "Alzheimer disease": "dementia || Alzheimer's disease"}
RAW_STAGE = {"adult": "34-year-old human stage", "aged": "71-year-old human stage",
             "middle aged": "52-year-old human stage"}


def make_release(folder, *, n_donors: int = 60, cells_per_donor: int = 8, n_transcripts: int = 120,
                 n_proteins: int = 60, module: int = 12, signal: float = 3.0, shuffle_labels: bool = False,
                 rows_per_shard: int = 90, metadata_format: str = "parquet", seed: int = 0,
                 tissues: dict | None = None, pretrain_studies: tuple = ()) -> dict:
    """Write the files; return the truth (labels per cell, module nodes, file names)."""
    rng = np.random.default_rng(seed)
    tissues = dict(tissues or TISSUES)
    folder = Path(folder)
    (folder / "expression_matrix").mkdir(parents=True, exist_ok=True)
    n_ent = n_transcripts + n_proteins
    ids = [f"BMGC_TR{i:06d}" for i in range(n_transcripts)] + [f"BMGC_PT{i:06d}" for i in range(n_proteins)]
    kinds = ["Transcript"] * n_transcripts + ["Protein"] * n_proteins
    names = [f"GENE{i}" for i in range(n_transcripts)] + [f"GENE{i}-protein" for i in range(n_proteins)]
    mod_nodes = np.arange(module)  # transcripts 0..module-1
    desc = [("member of the WNT signaling pathway" if i < module else f"entity {i} description") for i in range(n_ent)]
    seqs = ["ACGT" * (1 + i % 3) for i in range(n_ent)]
    pd.DataFrame({"BioMedGraphica_Conn_ID": ids, "Name": names}).to_csv(folder / "s_name.csv", index=False)
    pd.DataFrame({"BioMedGraphica_Conn_ID": ids, "Description": desc}).to_csv(folder / "s_desc.csv", index=False)
    pd.DataFrame({"BioMedGraphica_Conn_ID": ids, "Type": kinds, "Sequence": seqs}).to_csv(
        folder / "s_bio.csv", index=False)
    # topology: transcript i <-> protein i (internal), random PPI among proteins, a chain over the module
    internal = np.array([[i, n_transcripts + i] for i in range(min(n_transcripts, n_proteins))]).T
    internal = np.concatenate([internal, internal[::-1]], axis=1)
    ppi = rng.integers(n_transcripts, n_ent, size=(2, 3 * n_proteins))
    chain = np.array([[mod_nodes[i], mod_nodes[i + 1]] for i in range(module - 1)]).T
    ppi = np.concatenate([ppi, chain, chain[::-1]], axis=1)
    ppi = np.unique(ppi[:, ppi[0] != ppi[1]], axis=1)
    edge_index = np.concatenate([internal, ppi], axis=1).astype(np.int64)
    np.save(folder / "edge_index.npy", edge_index)
    np.save(folder / "internal_edge_index.npy", internal.astype(np.int64))
    np.save(folder / "ppi_edge_index.npy", ppi.astype(np.int64))
    # donors and cells
    donors = [f"D{d:03d}" for d in range(n_donors)]
    disease = np.array(["normal", "Alzheimer disease"] * (n_donors // 2) + ["normal"] * (n_donors % 2))
    truth_disease = disease.copy()
    if shuffle_labels:
        disease = rng.permutation(disease)
    if len(tissues) == 2:
        tissue = np.array(list(tissues))[np.arange(n_donors) % 4 // 2]
    else:
        tissue = np.array(list(tissues))[np.arange(n_donors) % len(tissues)]
    sex = rng.choice(["male", "female"], size=n_donors)
    age = rng.choice(["adult", "aged", "middle aged"], size=n_donors)
    base = rng.gamma(0.6, 1.0, size=n_transcripts)  # many low genes -> sparse counts
    cells = []
    X_rows = []
    for d in range(n_donors):
        lam_d = base * rng.lognormal(0, 0.2, size=n_transcripts)  # donor effect
        for _c in range(cells_per_donor):
            lam = lam_d * rng.lognormal(0, 0.3, size=n_transcripts)
            if truth_disease[d] != "normal":
                lam[mod_nodes] *= signal
            X_rows.append(rng.poisson(lam).astype(np.float32))
            cmt = rng.choice(["neuron", "astrocyte"] if tissue[d] == "brain" else ["AT2", "macrophage"])
            cells.append({"source": tissues[tissue[d]], "dataset_id": f"study-{d % 5}", "donor_id": donors[d],
                          "tissue": f"{tissue[d]} tissue", "tissue_general": tissue[d],
                          "suspension_type": "nucleus" if tissue[d] == "brain" else "cell",
                          "cell_type": f"raw {cmt} (author label)", "disease": RAW_DISEASE[disease[d]],
                          "sex": sex[d].capitalize(), "development_stage": RAW_STAGE[age[d]],
                          "CMT_id": CMT_IDS[cmt], "CMT_name": cmt,
                          "disease_BMG_name": disease[d], "sex_normalized": sex[d],
                          "development_stage_category": age[d],
                          "is_pretrain_data": f"study-{d % 5}" in pretrain_studies})
    meta = pd.DataFrame(cells)
    X = np.stack(X_rows)
    # shard per (source, tissue), rows shuffled inside the release
    meta["matrix_file_path"] = ""
    meta["matrix_row_idx"] = -1
    files = []
    for t, source in tissues.items():
        idx = rng.permutation(np.flatnonzero(meta["tissue_general"].to_numpy() == t))
        for part, start in enumerate(range(0, len(idx), rows_per_shard)):
            take = idx[start:start + rows_per_shard]
            name = f"{source}_{t}_part_{part}.npy"
            np.save(folder / "expression_matrix" / name, np.ascontiguousarray(X[take], dtype=np.float32))
            meta.loc[take, "matrix_file_path"] = name
            meta.loc[take, "matrix_row_idx"] = np.arange(len(take))
            files.append(f"expression_matrix/{name}")
    meta = meta.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if metadata_format == "parquet":
        meta.to_parquet(folder / "cell_metadata_with_mappings.parquet", index=False)
    else:
        meta.to_csv(folder / "cell_metadata_with_mappings.csv", index=False)
    return {"meta": meta, "X": X, "module": mod_nodes, "ids": ids, "n_entities": n_ent,
            "n_transcripts": n_transcripts, "shards": files, "edge_index": edge_index,
            "internal": internal, "ppi": ppi}


def serve_release(server, folder, repo_id: str = "FuhaiLiAiLab/OmniCellTOSG_Dataset") -> None:
    """Put every file of a release folder on a Hub look-alike."""
    folder = Path(folder)
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            server.add_file("dataset", repo_id, p.relative_to(folder).as_posix(), p.read_bytes())
