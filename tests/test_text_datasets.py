"""Text-bearing datasets: textomics (local assumed layout), biology-instructions (xlsx over HTTP) and target-qa (Hub)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import omicsdata as od
from omicsdata.errors import FormatError

# ---------------------------------------------------------------- textomics (local folder)


def write_textomics(folder, n=60, genes=12, seed=0, split_col=False):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    X = rng.normal(size=(n + 3, genes)).round(4)
    expr = pd.DataFrame(X, columns=[f"GENE{j}" for j in range(genes)])
    expr.insert(0, "signature_id", [f"sig{i}" for i in range(n + 3)])  # 3 unpaired signatures
    expr.to_csv(folder / "expression.csv", index=False)
    mols = [f"C{'C' * (i % 15)}O" for i in range(n)]  # 15 distinct molecules, several signatures each
    pairs = pd.DataFrame({"signature_id": [f"sig{i}" for i in range(n)][::-1], "smiles": mols,
                          "description": [f"The molecule {m} is an alcohol." for m in mols]})
    if split_col:
        pairs["split"] = ["train", "val", "test"] * (n // 3)
    pairs.to_csv(folder / "pairs.csv", index=False)
    return expr.set_index("signature_id"), pairs


def test_textomics_build_and_dataset(tmp_path):
    expr, pairs = write_textomics(tmp_path / "to")
    path = od.build("textomics", local_dir=str(tmp_path / "to"))
    mdata = od.load("textomics", local_dir=str(tmp_path / "to"))
    assert mdata.mod["expression"].shape == (60, 12)
    # no molecule in two splits
    by = mdata.obs.groupby("smiles", observed=True)["split"].nunique()
    assert (by == 1).all() and set(mdata.obs["split"]) == {"train", "val", "test"}
    ds = od.text.TextOmicsDataset(path, split="test")
    x, text, smi = ds[0]
    assert x.dtype == torch.float32 and x.shape == (12,)
    sig = mdata.obs.loc[mdata.obs["split"] == "test", "signature_id"].iloc[0]
    np.testing.assert_allclose(x.numpy(), expr.loc[sig].to_numpy(np.float32), rtol=1e-6)
    row = pairs.set_index("signature_id").loc[sig]
    assert text == row["description"] and smi == row["smiles"]
    xb, tb, sb = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 12) and len(tb) == len(sb) == 4
    assert sum(len(od.text.TextOmicsDataset(path, split=s)) for s in ("train", "val", "test")) == 60
    assert od.verify("textomics")["checked"] > 0


def test_textomics_given_splits_kept(tmp_path):
    write_textomics(tmp_path / "to", split_col=True)
    p = od.build("textomics", local_dir=str(tmp_path / "to"))
    assert len(od.text.TextOmicsDataset(p, split="val")) == 20


def test_textomics_malformed(tmp_path):
    d = tmp_path / "to"
    write_textomics(d)
    e = pd.read_csv(d / "expression.csv")
    e["GENE3"] = e["GENE3"].astype(object)
    e.loc[5, "GENE3"] = "high"
    e.to_csv(d / "expression.csv", index=False)
    with pytest.raises(FormatError, match=r"expression.csv, line 7: record sig5: gene 'GENE3' value 'high'"):
        od.build("textomics", local_dir=str(d))
    write_textomics(d)
    p = pd.read_csv(d / "pairs.csv")
    p.loc[2, "signature_id"] = "sig999"
    p.to_csv(d / "pairs.csv", index=False)
    with pytest.raises(FormatError, match=r"pairs.csv, line 4: record sig999: no such signature"):
        od.build("textomics", local_dir=str(d))
    with pytest.raises(od.OmicsDataError, match="not published yet"):
        od.build("textomics")

# ---------------------------------------------------------------- biology-instructions (raw xlsx over HTTP)

REV = "0123456789abcdef0123456789abcdef01234567"
SEQS = {"DNA": "ACGTACGGTA", "RNA": "ACGUACGGUA", "protein": "MKVLAAGIV", "multi-molecule": "ACGU|MKV"}
# (task name as the authors might write it, sequence type we must infer)
TASKS = [("promoter_detection", "DNA", 6), ("ncRNA_family_classification", "RNA", 4),
         ("protein_stability", "protein", 3), ("RNA-protein interaction", "multi-molecule", 2),
         ("open question", "unknown", 2)]


def write_stage3(path, header=("input", "output", "task")):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(list(header))
    want = []
    for task, kind, n in TASKS:
        for i in range(n):
            seq = SEQS.get(kind, "ACGT")
            row = [f"<{kind}>{seq}</{kind}> What is the {task} answer? ({i})", f"label-{i % 2}", task]
            ws.append(row[:len(header)])
            want.append((task, kind, row[0], row[1]))
    ws2 = wb.create_sheet("siRNA_efficiency")   # no task column: the sheet name is the task
    ws2.append(["Input", "Output"])
    ws2.append(["<RNA>ACGU</RNA> efficiency?", "0.7"])
    want.append(("siRNA_efficiency", "multi-molecule", "<RNA>ACGU</RNA> efficiency?", "0.7"))
    wb.save(path)
    return want


@pytest.fixture
def raw_site(tmp_path):
    from httpfiles import FileServer

    root = tmp_path / "site"
    folder = root / "hhnqqq" / "Biology-Instructions" / REV
    folder.mkdir(parents=True)
    want = write_stage3(folder / "stage3.xlsx")
    with FileServer(root) as srv:
        yield srv, want


def test_biology_instructions_from_raw_xlsx(raw_site):
    srv, want = raw_site
    base = f"{srv.url}/hhnqqq/Biology-Instructions"
    path = od.build("biology-instructions", base_url=base, revision=REV)
    assert srv.paths_requested() == [f"hhnqqq/Biology-Instructions/{REV}/stage3.xlsx"]
    t = od.text.read_table(path, "instructions").to_pandas()
    got = list(zip(t["task"], t["sequence_type"], t["instruction"], t["response"]))
    assert got == want  # every record, in order, with the type inferred from the task name
    ds = od.text.InstructionDataset(path, sequence_types="RNA", system="You are a biologist.")
    assert len(ds) == 4 and [m["role"] for m in ds[0]["messages"]] == ["system", "user", "assistant"]
    assert ds[0]["messages"][1]["content"].startswith("<RNA>")
    assert len(od.text.InstructionDataset(path, sequence_types="unknown")) == 2
    prompts = list(od.text.chat_samples(path, tasks="protein_stability", with_response=False))
    assert len(prompts) == 3 and all(p["messages"][-1]["role"] == "user" for p in prompts)
    batch = next(iter(torch.utils.data.DataLoader(od.text.InstructionDataset(path), batch_size=4,
                                                  collate_fn=list)))
    assert len(batch) == 4 and all("messages" in s for s in batch)


def test_biology_instructions_through_a_mirror(raw_site, monkeypatch):
    srv, want = raw_site
    upstream = "https://raw.invalid/hhnqqq/Biology-Instructions"
    monkeypatch.setenv("OMICSDATA_HTTP_MIRROR", f"{upstream}={srv.url}/hhnqqq/Biology-Instructions")
    path = od.build("biology-instructions", base_url=upstream, revision=REV)
    assert len(od.text.read_table(path, "instructions")) == len(want)
    assert srv.paths_requested() == [f"hhnqqq/Biology-Instructions/{REV}/stage3.xlsx"]


def test_biology_instructions_malformed_names_file_sheet_row(tmp_path):
    import openpyxl

    write_stage3(tmp_path / "stage3.xlsx", header=("prompt_text", "output", "task"))
    with pytest.raises(FormatError, match=r"stage3.xlsx, line 1: sheet 'Sheet1': no input .* header is"):
        od.build("biology-instructions", local_dir=str(tmp_path))
    write_stage3(tmp_path / "stage3.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "stage3.xlsx")
    wb["Sheet1"]["B5"] = None
    wb.save(tmp_path / "stage3.xlsx")
    with pytest.raises(FormatError, match=r"stage3.xlsx, line 5: sheet 'Sheet1', row 5: empty 'output'"):
        od.build("biology-instructions", local_dir=str(tmp_path))
    (tmp_path / "stage3.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(FormatError, match="not a readable xlsx"):
        od.build("biology-instructions", local_dir=str(tmp_path))

# ---------------------------------------------------------------- target-qa (Hub look-alike)


TQ = "FuhaiLiAiLab/Target-QA"
CARD = b"---\nconfigs:\n- config_name: train\n  data_files: train_samples_detailed.csv\n" \
       b"- config_name: test\n  data_files: test_samples_detailed.csv\n---\n# Target-QA\n"


def tq_rows(ids, missing=()):
    rows = []
    for k, i in enumerate(ids):
        rows.append({"depMapID": f"ACH-{i:06d}", "sample_index": k + 1, "cell_line_name": f"CL{i}",
                     "disease": "Lung Adenocarcinoma", "disease_bmgc_id": f"BMGC_DS{i:05d}", "tcga_code": "LUAD",
                     "top_k_gene": "non-existed" if i in missing else str(["EGFR", "KRAS"]),
                     "top_k_transcript": str(["MYC"]), "top_k_protein": str(["AKT1", "MTOR"]),
                     "disease_protein": str(["TP53"]), "ppi_neighbors": str([f"P{i}", "GRB2"]),
                     "protein_relationships": str(["EGFR -> KRAS"]),
                     "answer_genes": str([f"G{i}", "RPL3", "POLR2A"])})
    return pd.DataFrame(rows).to_csv(index=False).encode()


def test_target_qa_reads_the_two_named_csvs(hub_server):
    hub_server.add_file("dataset", TQ, "README.md", CARD)
    hub_server.add_file("dataset", TQ, "train_samples_detailed.csv", tq_rows(range(5), missing={2}))
    hub_server.add_file("dataset", TQ, "test_samples_detailed.csv", tq_rows(range(5, 7)))
    hub_server.add_file("dataset", TQ, "notes.json", b"{}")  # not named by the card: never read
    p = od.build("target-qa")
    t = od.text.read_table(p, "qa").to_pandas().set_index("sample_id")
    assert t.groupby("split").size().to_dict() == {"test": 2, "train": 5}
    r = t.loc["ACH-000006"]
    assert r["split"] == "test" and r["sample_index"] == 2 and r["disease_bmgc_id"] == "BMGC_DS00006"
    assert list(r["ppi_neighbors"]) == ["P6", "GRB2"] and list(r["answer_genes"]) == ["G6", "RPL3", "POLR2A"]
    gone = t.loc["ACH-000002"]
    assert gone["top_k_gene"] is None and list(gone["missing_fields"]) == ["top_k_gene"]
    assert list(t.loc["ACH-000001", "top_k_gene"]) == ["EGFR", "KRAS"]
    assert not hub_server.requested("GET", "notes.json")
    assert od.verify("target-qa")["checked"] > 0


def test_target_qa_notebook_json_with_non_existed(hub_server):
    rec = {"cell_line_name": "CL", "sample_index": 3, "disease": "X", "disease_bmgc_id": "BMGC_DS1",
           "input": {"top_k_gene": {"hgnc_symbols": "non-existed"}, "top_k_transcript": {"hgnc_symbols": ["MYC"]},
                     "top_k_protein": {"hgnc_symbols": ["AKT1"]},
                     "knowledge_graph": {"disease_protein": {"hgnc_symbols": ["TP53"]},
                                         "ppi_neighbors": {"bmgc_ids": ["B1"], "hgnc_symbols": ["GRB2"], "indices": [4]},
                                         "protein_relationships": ["TP53 -> GRB2"]}},
           "ground_truth_answer": {"top_bm_gene": {"hgnc_symbols": ["RPL3"]}}}
    hub_server.add_file("dataset", TQ, "target_qa_k10_bm100_te.json", json.dumps({"ACH-1": rec}).encode())
    p = od.build("target-qa", files=["target_qa_k10_bm100_te.json"])
    r = od.text.read_table(p, "qa").to_pandas().iloc[0]
    assert r["split"] == "test" and r["top_k_gene"] is None and list(r["ppi_neighbors"]) == ["GRB2"]


def test_target_qa_malformed_names_file_and_sample(hub_server):
    hub_server.add_file("dataset", TQ, "train_samples_detailed.csv", tq_rows(range(2)))
    with pytest.raises(FormatError, match=r"no \['test_samples_detailed.csv'\]"):
        od.build("target-qa")
    bad = pd.read_csv(__import__("io").BytesIO(tq_rows(range(2)))).drop(columns=["disease_bmgc_id"])
    hub_server.add_file("dataset", TQ, "test_samples_detailed.csv", bad.to_csv(index=False).encode())
    with pytest.raises(FormatError, match=r"test_samples_detailed.csv, line 1: missing column\(s\) \['disease_bmgc_id'\]"):
        od.build("target-qa")
    bad = pd.read_csv(__import__("io").BytesIO(tq_rows(range(2))))
    bad.loc[1, "ppi_neighbors"] = "['GRB2', "
    hub_server.add_file("dataset", TQ, "test_samples_detailed.csv", bad.to_csv(index=False).encode())
    with pytest.raises(FormatError, match=r"sample ACH-000001: column 'ppi_neighbors' starts like a list"):
        od.build("target-qa")
