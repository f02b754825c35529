"""BiomedSQL in its published layout: Hub look-alike -> builder -> store -> evaluate (stored gold, two rules).

Fixture layout as published (NIH-CARD/BiomedSQL): benchmark_data/{train,dev,dev_sample}.csv plus
benchmark_data/BiomedSQL.csv = train + dev, db_data/<Table>.parquet; execution_results is the
str() of ``[dict(row) for row in result]`` as the authors' run_sql stores it; predictions are
BigQuery SQL with backticked ``card-ai-389220.bio_sql_benchmark.<Table>`` paths.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import omicsdata as od
from omicsdata.biomedsql_score import parse_results, score_authors, score_strict
from omicsdata.errors import FormatError, OmicsDataError

REPO = "NIH-CARD/BiomedSQL"
SMR = "NeurodegenerativeDiseases_SMR_Genes_Full"
DRUG = "DrugGeneTargets_ComprehensiveAnnotations_updated"
BQ = "card-ai-389220.bio_sql_benchmark"


def smr_table(n=300, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "UUID": [f"{SMR}_{i:05d}" for i in range(n)],
        "Gene": [f"G{int(g)}" for g in rng.integers(0, 30, n)],
        "Disease": np.array(["AD", "PD", "ALS"])[rng.integers(0, 3, n)],
        "p_SMR_multi": 10.0 ** -rng.uniform(1, 9, n),
        "p_HEIDI": rng.uniform(0, 1, n),
        "b_SMR": rng.normal(size=n),
    })


def drug_table() -> pd.DataFrame:
    return pd.DataFrame({"UUID": [f"{DRUG}_{i}" for i in range(6)],
                         "drugName": ["Levodopa", "LEVODOPA ER", "donepezil", "x", "y", "Rotigotine"],
                         "maxClinicalTrialPhase": [4.0, 3.0, 4.0, 1.0, 2.0, 4.0]})


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()


def stored(df: pd.DataFrame) -> str:
    """execution_results as the authors store it: str([dict(row) for row in result])."""
    return str([dict(r) for r in df.to_dict("records")])


def questions():
    """(uuid, question, gold BigQuery SQL, gold rows computed here with pandas, not by running the SQL)."""
    s, d = smr_table(), drug_table()
    sig = s[(s.Gene == "G3") & (s.p_SMR_multi < 2.95e-6) & (s.p_HEIDI > 0.01)][["UUID", "Gene", "p_SMR_multi"]]
    levo = d[d.drugName.str.lower().str.contains("levodopa")][["UUID", "drugName"]]
    n_pos = pd.DataFrame({"n": [int((s.b_SMR > 0).sum())]})
    top = s.sort_values("p_SMR_multi").head(5)[["UUID"]]
    return [
        ("Q1.1", "Which SMR hits for G3 pass the thresholds?",
         f"SELECT UUID, Gene, p_SMR_multi FROM `{{dataset_name}}.{SMR}` WHERE Gene = 'G3' "
         f"AND p_SMR_multi < 2.95e-6 AND p_HEIDI > 0.01", sig),
        ("Q2.1", "Which drugs are levodopa?",
         f'SELECT UUID, drugName FROM `{{dataset_name}}.{DRUG}` WHERE LOWER(drugName) LIKE "%levodopa%"', levo),
        ("Q3.1", "How many SMR rows have a positive effect?",
         f"SELECT COUNT(*) AS n FROM `{{dataset_name}}.{SMR}` WHERE b_SMR > 0", n_pos),
        ("Q4.1", "Five smallest SMR p-values?",
         f"SELECT UUID FROM `{{dataset_name}}.{SMR}` ORDER BY p_SMR_multi LIMIT 5", top),
    ]


def bench_csv(rows) -> bytes:
    return pd.DataFrame([{"uuid": u, "question": q, "benchmark_query": sql, "answer": "...",
                          "execution_results": stored(gold), "query_type": "general"}
                         for u, q, sql, gold in rows]).to_csv(index=False).encode()


def publish(hub, train=None, dev=None, sample=None):
    qs = questions()
    train = qs[2:] if train is None else train
    dev = qs[:2] if dev is None else dev
    sample = qs[:1] if sample is None else sample
    hub.add_file("dataset", REPO, "README.md", b"---\nlicense: openrail++\n---\n# BiomedSQL\n")
    hub.add_file("dataset", REPO, "benchmark_data/train.csv", bench_csv(train))
    hub.add_file("dataset", REPO, "benchmark_data/dev.csv", bench_csv(dev))
    hub.add_file("dataset", REPO, "benchmark_data/dev_sample.csv", bench_csv(sample))
    hub.add_file("dataset", REPO, "benchmark_data/BiomedSQL.csv", bench_csv(train + dev))
    hub.add_file("dataset", REPO, f"db_data/{SMR}.parquet", parquet_bytes(smr_table()))
    hub.add_file("dataset", REPO, f"db_data/{DRUG}.parquet", parquet_bytes(drug_table()))
    return hub


@pytest.fixture
def store(hub_server):
    publish(hub_server)
    return od.build("biomedsql", revision="main")  # the look-alike serves its own commit


def test_build_picks_csvs_by_name_not_the_union(store, hub_server):
    bench = od.text.read_table(store, "benchmark").to_pandas()
    assert bench.groupby("split").size().to_dict() == {"dev": 2, "dev_sample": 1, "train": 2}
    assert not hub_server.requested("GET", "BiomedSQL.csv")  # the union file is never fetched
    assert {"uuid", "question", "sql", "answer", "execution_results", "query_type"} <= set(bench.columns)
    # the gold rows are kept verbatim
    q1 = bench[(bench.uuid == "Q1.1") & (bench.split == "dev")].iloc[0]
    assert q1["execution_results"] == stored(questions()[0][3])
    assert od.text.table_files(store, f"db/{SMR}")[0].read_bytes() == parquet_bytes(smr_table())
    assert od.verify("biomedsql")["checked"] > 0
    p = od.build("biomedsql", revision="main", splits=["BiomedSQL"], force=True)
    assert len(od.text.read_table(p, "benchmark")) == 4
    with pytest.raises(FormatError, match="no benchmark_data/nope.csv for split 'nope'"):
        od.build("biomedsql", revision="main", splits=["nope"], force=True)


def test_duplicate_uuid_is_an_error_only_within_one_file(hub_server):
    qs = questions()
    publish(hub_server, train=[qs[0], qs[2], qs[0]])
    with pytest.raises(FormatError, match=r"train.csv, line 4: duplicate uuid 'Q1.1' \(rows 1 and 3\)"):
        od.build("biomedsql", revision="main")
    assert not (od.api.store_path("biomedsql") / "manifest.json").exists()


def test_execution_accuracy_both_rules_from_stored_gold(store):
    pred = {
        # BigQuery, full backticked project path, other column order and extra ORDER BY -> right
        "Q1.1": f"SELECT p_SMR_multi, UUID FROM `{BQ}.{SMR}` WHERE p_HEIDI > 0.01 AND Gene = 'G3' "
                f"AND p_SMR_multi < 0.00000295 ORDER BY UUID",
        # BigQuery double-quoted string literal: only right once transpiled (DuckDB reads "..." as a name)
        "Q2.1": f'SELECT DISTINCT UUID FROM `{BQ}.{DRUG}` WHERE LOWER(drugName) LIKE "%levodopa%"',
        # wrong count, no UUID on either side: the authors' rule counts it right, the strict rule does not
        "Q3.1": f"SELECT COUNT(*) + 1 AS n FROM bio_sql_benchmark.{SMR} WHERE b_SMR > 0",
        # one row short
        "Q4.1": f"SELECT UUID FROM `{BQ}.{SMR}` ORDER BY p_SMR_multi LIMIT 4",
    }
    rep = od.biomedsql.evaluate(pred, store, timeout=20)
    per = rep.per_query.set_index("uuid")
    assert (per["status"] == "ok").all(), per[["status", "error"]]
    assert per["ex"].to_dict() == {"Q1.1": 1, "Q2.1": 1, "Q3.1": 1, "Q4.1": 0}
    assert per["ex_strict"].to_dict() == {"Q1.1": 1, "Q2.1": 1, "Q3.1": 0, "Q4.1": 0}
    assert per.loc["Q4.1", "jaccard"] == pytest.approx(4 / 5)
    assert rep.execution_accuracy == pytest.approx(3 / 4) and rep.execution_accuracy_strict == pytest.approx(2 / 4)
    assert "biomedsql" in per.loc["Q1.1", "sql_run"] and BQ not in per.loc["Q1.1", "sql_run"]
    # the right count scores under both rules
    ok = od.biomedsql.evaluate({"Q3.1": f"SELECT COUNT(*) FROM `{BQ}.{SMR}` WHERE b_SMR > 0"}, store)
    assert ok.execution_accuracy == ok.execution_accuracy_strict == 1.0


def test_gold_is_the_stored_result_not_a_rerun(hub_server):
    """A stored gold that differs from what the gold SQL returns: scoring follows the stored rows."""
    qs = questions()
    frozen = smr_table().iloc[[7, 11]][["UUID"]]
    odd = ("Q9.1", "Stored answer differs from the SQL", f"SELECT UUID FROM `{{dataset_name}}.{SMR}` LIMIT 1", frozen)
    publish(hub_server, dev=[qs[0], odd], sample=[])
    p = od.build("biomedsql", revision="main", splits=["dev"])
    ids = ", ".join(f"'{u}'" for u in frozen["UUID"])
    rep = od.biomedsql.evaluate({"Q9.1": f"SELECT UUID FROM `{BQ}.{SMR}` WHERE UUID IN ({ids})"}, p)
    assert rep.execution_accuracy == 1.0
    rep = od.biomedsql.evaluate({"Q9.1": f"SELECT UUID FROM `{BQ}.{SMR}` LIMIT 1"}, p)  # = the gold SQL
    assert rep.execution_accuracy == 0.0


def test_uuid_column_name_is_case_sensitive_and_failures_score_zero(store):
    pred = {
        "Q1.1": f"SELECT UUID AS uuid FROM `{BQ}.{SMR}` WHERE Gene = 'G3' AND p_SMR_multi < 2.95e-6 AND p_HEIDI > 0.01",
        "Q2.1": "SELEC broken",
        "Q4.1": "SELECT * FROM read_csv('/etc/passwd')",        # external access is off
        "Q3.1": f"DROP TABLE `{BQ}.{SMR}`",                     # rolled back
    }
    rep = od.biomedsql.evaluate(pred, store)
    per = rep.per_query.set_index("uuid")
    assert per.loc["Q1.1", "status"] == "ok" and per.loc["Q1.1", "ex"] == 0
    assert per.loc["Q2.1", "status"] == "error" and per.loc["Q4.1", "status"] == "error"
    # the DROP returns no rows and no UUID column, like the count gold: the authors' rule counts it
    # right (both UUID sets empty), the strict rule does not
    assert per.loc["Q3.1", "ex"] == 1 and per.loc["Q3.1", "ex_strict"] == 0
    assert rep.execution_accuracy == pytest.approx(0.25) and rep.execution_accuracy_strict == 0.0
    again = od.biomedsql.evaluate({"Q4.1": f"SELECT UUID FROM `{BQ}.{SMR}` ORDER BY p_SMR_multi LIMIT 5"}, store)
    assert again.execution_accuracy == 1.0  # the DROP did not stick


def test_timeout_never_stops_the_run(store):
    slow = "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range + b.range = -1"
    rep = od.biomedsql.evaluate({"Q1.1": slow, "Q3.1": f"SELECT COUNT(*) FROM {SMR} WHERE b_SMR > 0"}, store,
                                timeout=1.0, pred_dialect=None)
    per = rep.per_query.set_index("uuid")
    assert per.loc["Q1.1", "status"] == "timeout" and per.loc["Q1.1", "pred_seconds"] < 10
    assert per.loc["Q3.1", "ex_strict"] == 1 and rep.n_timeouts == 1


def test_list_and_dataframe_predictions_and_bad_arguments(store):
    dev = od.text.read_table(store, "benchmark").to_pandas().query("split == 'dev'")
    rep = od.biomedsql.evaluate(list(dev["sql"]), store, split="dev")   # the gold SQL, BigQuery placeholder form
    assert rep.execution_accuracy == rep.execution_accuracy_strict == 1.0
    rep = od.biomedsql.evaluate(pd.DataFrame({"uuid": ["Q2.1"], "sql": [None]}), store)
    assert rep.per_query.loc[0, "status"] == "error" and rep.execution_accuracy == 0
    with pytest.raises(OmicsDataError, match="not BiomedSQL questions"):
        od.biomedsql.evaluate({"zzz": "SELECT 1"}, store)
    with pytest.raises(OmicsDataError, match="has 2 questions"):
        od.biomedsql.evaluate(["SELECT 1"], store, split="dev")


def test_unreadable_stored_gold_is_counted_not_dropped(hub_server):
    qs = questions()
    publish(hub_server, dev=[qs[1]], sample=[])
    bad = pd.DataFrame([{"uuid": "Q5.1", "question": "q", "benchmark_query": "SELECT 1", "answer": "a",
                         "execution_results": "[{'UUID': os.system('true')}]"}])
    hub_server.add_file("dataset", REPO, "benchmark_data/dev.csv", bad.to_csv(index=False).encode())
    p = od.build("biomedsql", revision="main", splits=["dev"])
    rep = od.biomedsql.evaluate({"Q5.1": "SELECT 1"}, p)
    assert rep.n_gold_errors == 1 and rep.n == 1 and rep.execution_accuracy == 0
    assert "Q5.1" in rep.per_query.loc[0, "error"] and "not a literal" in rep.per_query.loc[0, "error"]


def test_scoring_rules_directly():
    gold = parse_results("[{'UUID': 'A_1', 'p': 1e-9}, {'UUID': 'A_2', 'p': nan}]")
    assert [r["UUID"] for r in gold] == ["A_1", "A_2"]
    assert parse_results("[{'d': datetime.date(2020, 1, 2), 'x': Decimal('1.50')}]") == [{"d": "2020-01-02", "x": 1.5}]
    assert score_authors("Q1.1", gold, [{"UUID": "A_2"}, {"UUID": "A_1"}]) == (1, 1.0)
    assert score_authors("Q1.1", gold, None) == (0, 0.0)
    # no UUID on either side: authors count equal, strict compares values
    assert score_authors("Q3.1", [{"n": 5}], [{"c": 6}]) == (1, 1.0)
    assert score_strict("Q3.1", [{"n": 5}], [{"c": 6}])[0] == 0
    assert score_strict("Q3.1", [{"n": 5}], [{"c": 5.0}])[0] == 1
    # Q26: the last integer-looking gold value against the predicted integers
    assert score_authors("Q26.4", [{"g": "x", "n": 12}], [{"k": 12}])[0] == 1
    assert score_authors("Q26.4", [{"g": "x", "n": 12}], [{"k": 13}])[0] == 0
    # strict is never 1 where the authors' rule is 0
    for g, p in [([{"UUID": "a"}], [{"UUID": "b"}]), ([{"UUID": "a"}], [{"n": "a"}]), ([], [{"n": 1}])]:
        assert score_strict("Q1.1", g, p)[0] <= score_authors("Q1.1", g, p)[0]
