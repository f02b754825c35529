"""Text-bearing datasets: textomics (local assumed layout), biology-instructions and target-qa (Hub look-alike)."""
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

# ---------------------------------------------------------------- biology-instructions (Hub look-alike)


BI = "hhnqqq/Biology-Instructions"


def bi_records(kind, task, n, split):
    seqs = {"DNA": "ACGTACGGTA", "RNA": "ACGUACGGUA", "protein": "MKVLAAGIV", "multi-molecule": "ACGT|MKV"}
    return [{"input": f"<{kind}>{seqs[kind]}</{kind}> What is the {task} label? ({i})",
             "output": f"label-{i % 2}", "task": task, "split": split} for i in range(n)]


@pytest.fixture
def bi_hub(hub_server):
    def jl(recs):
        return ("\n".join(json.dumps(r) for r in recs) + "\n").encode()
    hub_server.add_file("dataset", BI, "DNA/promoter.jsonl", jl(bi_records("DNA", "promoter", 12, "train")
                                                                 + bi_records("DNA", "promoter", 4, "test")))
    hub_server.add_file("dataset", BI, "RNA/ncrna_family.jsonl", jl(bi_records("RNA", "ncrna_family", 8, "train")))
    hub_server.add_file("dataset", BI, "protein/stability.jsonl", jl(bi_records("protein", "stability", 6, "train")))
    # sequence type from the record instead of the folder, JSON-array file
    recs = [dict(r, sequence_type="multi-molecule") for r in bi_records("multi-molecule", "rna_protein_interaction", 5, "test")]
    hub_server.add_file("dataset", BI, "extra/rpi.json", json.dumps(recs).encode())
    return hub_server


def test_biology_instructions_chat_samples_and_filters(bi_hub):
    od.build("biology-instructions")
    ds = od.text.InstructionDataset(split="train", system="You are a biologist.")
    assert len(ds) == 12 + 8 + 6
    s = ds[0]
    assert [m["role"] for m in s["messages"]] == ["system", "user", "assistant"]
    assert s["messages"][1]["content"].startswith("<DNA>") and s["messages"][2]["content"].startswith("label-")
    rna = od.text.InstructionDataset(sequence_types="RNA")
    assert len(rna) == 8 and {x["task"] for x in rna} == {"ncrna_family"}
    mm = od.text.InstructionDataset(tasks=["rna_protein_interaction", "stability"], split="test")
    assert len(mm) == 5 and {x["sequence_type"] for x in mm} == {"multi-molecule"}
    prompts = list(od.text.chat_samples(tasks="promoter", split="test", with_response=False))
    assert len(prompts) == 4 and all(p["messages"][-1]["role"] == "user" for p in prompts)
    with pytest.raises(od.OmicsDataError, match="no instruction records"):
        od.text.InstructionDataset(tasks="nope")


def test_biology_instructions_malformed_names_file_and_record(hub_server):
    hub_server.add_file("dataset", BI, "DNA/ok.jsonl", (json.dumps({"input": "a", "output": "b"}) + "\n").encode())
    hub_server.add_file("dataset", BI, "RNA/bad.jsonl",
                        (json.dumps({"input": "a", "output": "b"}) + "\n" + json.dumps({"input": "only"}) + "\n").encode())
    with pytest.raises(FormatError, match=r"RNA/bad.jsonl, line 2: record on line 2: no response"):
        od.build("biology-instructions")
    hub_server.add_file("dataset", BI, "RNA/bad.jsonl", b'{"input": "a", "output": "b"}\n{broken\n')
    with pytest.raises(FormatError, match=r"RNA/bad.jsonl, line 2: not a JSON record"):
        od.build("biology-instructions")
    hub_server.add_file("dataset", BI, "RNA/bad.jsonl", (json.dumps({"input": "a", "output": "b", "type": "lipid"}) + "\n").encode())
    with pytest.raises(FormatError, match=r"unknown sequence type 'lipid'"):
        od.build("biology-instructions")

# ---------------------------------------------------------------- target-qa (Hub look-alike)


TQ = "FuhaiLiAiLab/Target-QA"


def tq_record(i):
    return {"cell_line_name": f"CL-{i}", "disease": "Lung Adenocarcinoma",
            "input": {"top_k_gene": {"hgnc_symbols": ["EGFR", "KRAS"]},
                      "top_k_transcript": {"hgnc_symbols": ["MYC"]},
                      "top_k_protein": {"hgnc_symbols": ["AKT1", "MTOR"]},
                      "knowledge_graph": {"disease_protein": {"hgnc_symbols": ["TP53"]},
                                          "protein_relationships": ["EGFR -> KRAS", "KRAS -> BRAF"]}},
            "ground_truth_answer": {"top_bm_gene": {"hgnc_symbols": [f"G{i}", "RPL3", "POLR2A"]}}}


def test_target_qa_build(hub_server):
    hub_server.add_file("dataset", TQ, "README.md", b"# Target-QA\n")
    hub_server.add_file("dataset", TQ, "target_qa_k10_bm100_tr.json", json.dumps({f"ACH-{i:06d}": tq_record(i) for i in range(5)}).encode())
    hub_server.add_file("dataset", TQ, "target_qa_k10_bm100_te.json",
                        json.dumps({f"ACH-{i:06d}": tq_record(i) for i in range(5, 7)}).encode())
    p = od.build("target-qa")
    t = od.text.read_table(p, "qa").to_pandas()
    assert t.groupby("split").size().to_dict() == {"test": 2, "train": 5}
    r = t.set_index("sample_id").loc["ACH-000006"]
    assert r["split"] == "test" and list(r["answer_genes"]) == ["G6", "RPL3", "POLR2A"]
    assert list(r["protein_relationships"]) == ["EGFR -> KRAS", "KRAS -> BRAF"]
    assert json.loads(r["record_json"]) == tq_record(6)
    assert od.verify("target-qa")["checked"] > 0


def test_target_qa_malformed_names_file_and_record(hub_server):
    bad = tq_record(1)
    del bad["ground_truth_answer"]["top_bm_gene"]
    hub_server.add_file("dataset", TQ, "x_tr.json", json.dumps({"ACH-1": tq_record(0), "ACH-2": bad}).encode())
    with pytest.raises(FormatError, match=r"x_tr.json: record ACH-2: missing field 'ground_truth_answer.top_bm_gene"):
        od.build("target-qa")
    hub_server.add_file("dataset", TQ, "x_tr.json", b'{"ACH-1": ')
    with pytest.raises(FormatError, match=r"x_tr.json, line 1: not valid JSON"):
        od.build("target-qa")
