"""BiomedSQL: builder (from the Hub look-alike) and the execution-accuracy harness."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import omicsdata as od
from omicsdata.errors import FormatError, OmicsDataError

REPO = "NIH-CARD/BiomedSQL"
T = "AlzheimerDisease_GeneAssoc_UUID"


def kb_table(n=400, seed=0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "UUID": [f"{T}{i:05d}" for i in range(n)],
        "nearestGene": [f"G{int(g)}" for g in rng.integers(0, 40, n)],
        "p_value": 10.0 ** -rng.uniform(1, 12, n),
        "beta": rng.normal(size=n),
    })


def parquet_bytes(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


GOLD = [
    ("q1", "Which SNPs near G3 are genome-wide significant for AD?",
     "SELECT UUID, nearestGene, p_value FROM `{dataset_name}.%s` WHERE nearestGene = 'G3' AND p_value < 5e-8" % T),
    ("q2", "How many variants have a positive effect?",
     "SELECT COUNT(*) AS n FROM {dataset_name}.%s WHERE beta > 0" % T),
    ("q3", "Top 5 genes by smallest p-value?",
     "SELECT UUID FROM `{dataset_name}.%s` ORDER BY p_value ASC LIMIT 5" % T),
    ("q4", "Variants with SAFE_CAST beta above one?",
     "SELECT UUID FROM {dataset_name}.%s WHERE SAFE_CAST(beta AS FLOAT64) > 1.0" % T),
]


def bench_csv(rows=GOLD) -> bytes:
    df = pd.DataFrame([{"uuid": u, "question": q, "benchmark_query": s, "answer": "...",
                        "execution_results": "[]", "sql_category": "threshold"} for u, q, s in rows])
    return df.to_csv(index=False).encode()


@pytest.fixture
def biomedsql_hub(hub_server):
    hub_server.add_file("dataset", REPO, "README.md", b"# BiomedSQL\n")
    hub_server.add_file("dataset", REPO, "benchmark_data/dev_sample.csv", bench_csv())
    hub_server.add_file("dataset", REPO, "benchmark_data/train.csv",
                        bench_csv([("t1", "Any?", "SELECT UUID FROM {dataset_name}.%s LIMIT 1" % T)]))
    hub_server.add_file("dataset", REPO, f"db_data/{T}.parquet", parquet_bytes(kb_table()))
    return hub_server


@pytest.fixture
def store(biomedsql_hub, monkeypatch):
    # the card pins a real commit; the look-alike serves its own: build at its main
    return od.build("biomedsql", revision="main")


def test_build_from_hub_and_verify(store, biomedsql_hub):
    man = od.open_store(store).uns["omicsdata"]
    assert set(man["tables"]) == {"benchmark", f"db/{T}"}
    assert man["n_obs"] == 0 and man["modalities"] == {}
    bench = od.text.read_table(store, "benchmark").to_pandas()
    assert sorted(bench["split"].unique()) == ["dev_sample", "train"]
    assert {"uuid", "question", "sql", "answer", "execution_results", "sql_category"} <= set(bench.columns)
    # the knowledge-base file is stored byte for byte
    stored = od.text.table_files(store, f"db/{T}")[0].read_bytes()
    assert stored == parquet_bytes(kb_table())
    assert od.verify("biomedsql")["checked"] > 0
    # a flipped byte in a table is caught by verify, naming the file
    f = od.text.table_files(store, "benchmark")[0]
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))
    with pytest.raises(od.CorruptStoreError, match="tables/benchmark/part-00000.parquet"):
        od.verify("biomedsql")


def test_split_option(biomedsql_hub):
    p = od.build("biomedsql", revision="main", splits=["train"])
    assert od.text.read_table(p, "benchmark")["uuid"].to_pylist() == ["t1"]
    with pytest.raises(FormatError, match="nope"):
        od.build("biomedsql", revision="main", splits=["nope"], force=True)


def test_execution_accuracy(store):
    pred = {
        # same rows, different SQL (extra column, other order) -> correct
        "q1": f"SELECT p_value, UUID FROM {T} WHERE p_value < 5e-8 AND nearestGene = 'G3' ORDER BY UUID",
        # aggregate: compared by value -> correct
        "q2": f"SELECT SUM(CASE WHEN beta > 0 THEN 1 ELSE 0 END) FROM biomedsql.{T}",
        # wrong threshold -> wrong rows
        "q3": f"SELECT UUID FROM {T} ORDER BY p_value ASC LIMIT 4",
        # syntax error -> 0, run goes on
        "q4": "SELEC UUID FROM nowhere",
    }
    rep = od.biomedsql.evaluate(pred, store, split="dev_sample", timeout=20)
    per = rep.per_query.set_index("uuid")
    assert per.loc["q1", "ex"] == 1 and per.loc["q2", "ex"] == 1
    assert per.loc["q3", "ex"] == 0 and per.loc["q3", "jaccard"] == pytest.approx(4 / 5)
    assert per.loc["q4", "status"] == "error" and "Parser" in per.loc["q4", "error"]
    assert rep.execution_accuracy == pytest.approx(0.5) and rep.n == 4 and rep.n_errors == 1
    assert rep.n_gold_errors == 0  # every BigQuery gold query ran on DuckDB


def test_expected_rows_independently(store):
    """The gold rows the harness scores against are the rows pandas finds in the raw table."""
    kb = kb_table().to_pandas()
    want = set(kb.loc[(kb.nearestGene == "G3") & (kb.p_value < 5e-8), "UUID"])
    sql_right = "SELECT UUID FROM %s WHERE UUID IN (%s)" % (T, ",".join(f"'{u}'" for u in sorted(want)) or "''")
    rep = od.biomedsql.evaluate({"q1": sql_right}, store)
    assert rep.execution_accuracy == 1.0
    one_less = sorted(want)[1:] or ["none"]
    rep = od.biomedsql.evaluate({"q1": "SELECT UUID FROM %s WHERE UUID IN (%s)" % (
        T, ",".join(f"'{u}'" for u in one_less))}, store)
    assert rep.execution_accuracy == 0.0


def test_timeouts_and_hostile_queries_never_stop_the_run(store):
    slow = "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range + b.range = -1"
    pred = {
        "q1": slow,
        "q2": f"DROP TABLE biomedsql.{T}",                    # rolled back: later queries still see it
        "q3": "SELECT * FROM read_csv('/etc/passwd')",        # external access is off
        "q4": f"SELECT UUID FROM {T} WHERE beta > 1.0",       # correct
    }
    rep = od.biomedsql.evaluate(pred, store, timeout=1.0)
    per = rep.per_query.set_index("uuid")
    assert per.loc["q1", "status"] == "timeout" and per.loc["q1", "pred_seconds"] < 10
    assert per.loc["q3", "status"] == "error"
    assert per.loc["q4", "ex"] == 1 and per.loc["q4", "status"] == "ok"
    assert rep.n_timeouts == 1 and rep.execution_accuracy == pytest.approx(0.25)


def test_list_and_dataframe_predictions(store):
    bench = od.text.read_table(store, "benchmark").to_pandas()
    dev = bench[bench.split == "dev_sample"]
    gold_as_pred = [s.replace("{dataset_name}", "biomedsql") for s in dev["sql"]]
    rep = od.biomedsql.evaluate(gold_as_pred, store, split="dev_sample", pred_dialect="bigquery")
    assert rep.execution_accuracy == 1.0
    rep = od.biomedsql.evaluate(pd.DataFrame({"uuid": ["q2"], "sql": [None]}), store)
    assert rep.per_query.loc[0, "status"] == "error" and rep.execution_accuracy == 0
    with pytest.raises(OmicsDataError, match="not BiomedSQL questions"):
        od.biomedsql.evaluate({"zzz": "SELECT 1"}, store)
    with pytest.raises(OmicsDataError, match="has 4 questions"):
        od.biomedsql.evaluate(["SELECT 1"], store, split="dev_sample")


def test_malformed_benchmark_names_file_and_record(hub_server):
    hub_server.add_file("dataset", REPO, f"db_data/{T}.parquet", parquet_bytes(kb_table(10)))
    bad = bench_csv([("q1", "ok?", "SELECT 1"), ("q2", "", "SELECT 2")])
    hub_server.add_file("dataset", REPO, "benchmark_data/dev_sample.csv", bad)
    with pytest.raises(FormatError, match=r"dev_sample.csv, line 3: record q2: empty 'question'"):
        od.build("biomedsql", revision="main")
    hub_server.add_file("dataset", REPO, "benchmark_data/dev_sample.csv", b"uuid,question,answer\nq1,a,b\n")
    with pytest.raises(FormatError, match=r"dev_sample.csv, line 1: missing column.*benchmark_query"):
        od.build("biomedsql", revision="main")
    hub_server.add_file("dataset", REPO, "benchmark_data/dev_sample.csv", bench_csv())
    hub_server.add_file("dataset", REPO, f"db_data/{T}.parquet", b"not parquet at all")
    with pytest.raises(FormatError, match=f"db_data/{T}.parquet: not a readable Parquet"):
        od.build("biomedsql", revision="main")
    assert not (od.api.store_path("biomedsql") / "manifest.json").exists()
