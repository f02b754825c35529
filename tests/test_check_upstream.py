"""scripts/check_upstream.py against local look-alikes: the Hub, the GDC API and a raw-file host on 127.0.0.1.

Each source is first served as its catalog entry expects (the table says "match"/"unpinned"), then changed
upstream (a fold file gone, a CSV header renamed, a shard one column wider, a raw file removed): the table
must say "changed" for exactly those rows.
"""
from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from gdcserver import GDCServer
from httpfiles import FileServer

from omicsdata import synth, synth_gdc
from omicsdata.catalog import dataset_entries

ROOT = Path(__file__).resolve().parents[1]
ONLY = ["senmo-pancancer", "omnicell-tosg", "gdc-pancancer", "mogonet-rosmap"]


def _script():
    spec = importlib.util.spec_from_file_location("check_upstream", ROOT / "scripts" / "check_upstream.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _npy(ncols: int) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, ncols), np.float32))
    return buf.getvalue()


def _run(mod, capsys) -> tuple[int, dict]:
    rc = mod.main(["--json"] + [a for n in ONLY for a in ("--only", n)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return rc, {(r["entry"], r["check"]): r for r in rows}


@pytest.fixture()
def upstreams(hub_server, tmp_path, monkeypatch):
    mod = _script()
    # Hub: the SeNMo weights (10 folds) and OmniCellTOSG (every file its card names, real headers)
    for k in range(1, 11):
        hub_server.add_file("model", "Lab-Rasool/SeNMo", f"Checkpoint_pancancer_combined_omic_fold{k}_for_test.pt",
                            b"x")
    tosg = dataset_entries()["omnicell-tosg"][0]["source"]
    repo = tosg["location"]
    headers = {"s_name.csv": "Name\nTP53\n", "s_desc.csv": "Description\ntumour protein\n",
               "s_bio.csv": "Type,Sequence\nprotein,MEEP\n",
               "cell_metadata_with_mappings.csv": "cell_type,CMT_name,disease,disease_BMG_name,sex,sex_normalized,"
                                                  "development_stage,development_stage_category,dataset_id,donor_id\n"}
    for p in mod._card_paths(tosg.get("files")) + list(headers):
        concrete = re.sub(r"\{[^}]*\}", "x", p)
        body = _npy(412039) if concrete.endswith(".npy") and "expression" in concrete else \
            headers.get(concrete, "placeholder\n").encode()
        hub_server.add_file("dataset", repo, concrete, body)
    # GDC look-alike
    raw = synth_gdc.write_gdc_raw(tmp_path / "gdc", synth.CohortSpec(n_patients=6, n_cancer_types=1, seed=2,
                                                                     n_genes=30, n_cpgs=20))
    gdc = GDCServer(raw["root"]).__enter__()
    monkeypatch.setenv("OMICSDATA_GDC_API", gdc.url)
    # MOGONET raw files behind a mirror of the card's base URL
    card = dataset_entries()["mogonet-rosmap"][0]["source"]
    site = tmp_path / "site"
    base = card["location"].format(revision=card.get("revision", ""))
    from zoo.catalog import entry

    model = entry("mogonet-rosmap")
    for p in mod._card_paths(card.get("files")) + [f["path"] for f in model.get("files") or []]:
        (site / p).parent.mkdir(parents=True, exist_ok=True)
        (site / p).write_text("0.1,0.2\n")
    srv = FileServer(site).__enter__()
    model_base = model["source"]["url"].format(revision=model["source"].get("revision", ""))
    monkeypatch.setenv("OMICSDATA_HTTP_MIRROR", f"{base}={srv.url},{model_base}={srv.url}")
    yield mod, hub_server, repo, site, gdc
    gdc.__exit__(None, None, None)
    srv.__exit__(None, None, None)


def test_check_upstream_says_match_then_changed(upstreams, capsys):
    mod, hub, repo, site, gdc = upstreams
    rc, rows = _run(mod, capsys)
    bad = {k: (r["found"], r["verdict"]) for k, r in rows.items() if r["verdict"] not in ("match", "unpinned")}
    assert rc == 0 and not bad, bad
    assert {e for e, _ in rows} == set(ONLY)
    assert rows[("omnicell-tosg", "revision")]["verdict"] == "unpinned"  # the card follows 'main'
    npy_key = next(k for k in rows if k[0] == "omnicell-tosg" and k[1].startswith("npy header"))
    assert "412039" in rows[npy_key]["found"]
    assert rows[("gdc-pancancer", "GET /status")]["verdict"] == "match"
    # the upstreams change
    hub.remove_file("model", "Lab-Rasool/SeNMo", "Checkpoint_pancancer_combined_omic_fold10_for_test.pt")
    hub.add_file("dataset", repo, "s_name.csv", b"name\nTP53\n")
    hub.add_file("dataset", repo, npy_key[1].split(" ", 2)[2], _npy(412040))
    gone = sorted(p for p in site.rglob("*.csv"))[0]
    gone.unlink()
    gdc.status["status"] = "DOWN"
    rc, after = _run(mod, capsys)
    changed = {k for k, r in after.items() if r["verdict"] == "changed"}
    assert changed == {("senmo-pancancer", "file Checkpoint_pancancer_combined_omic_fold10_for_test.pt"),
                       ("omnicell-tosg", "csv header s_name.csv"), npy_key, ("gdc-pancancer", "GET /status"),
                       ("mogonet-rosmap", f"file {gone.relative_to(site).as_posix()}")}, changed
    assert rc == 1


def test_table_output_is_readable(upstreams, capsys):
    mod = upstreams[0]
    mod.main(["--only", "senmo-pancancer"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["entry", "source", "check", "expected", "found", "verdict"]
    assert "match: 10, unpinned: 1" in out and "hf:model/Lab-Rasool/SeNMo" in out
