"""BiomedSQL harness run time on a generated knowledge base: 1M rows, 1,000 queries.

    .venv/bin/python scripts/bench_biomedsql.py [--rows 1000000] [--queries 1000] [--threads 2]

Generates db_data/<Table>.parquet (SNP-gene associations with UUIDs, plus a
small drug table) and benchmark_data/dev_sample.csv (1,000 questions with
BigQuery-style gold SQL using the {dataset_name} placeholder, and the gold rows
stored in execution_results the way the authors store them: str([dict(row) ...]),
computed here by running the gold SQL once with DuckDB), builds the store with the
real builder (local_dir), then times od.biomedsql.evaluate on predictions that are:
60% equivalent rewrites of the gold query, 30% wrong results (other rows / counts),
10% syntax errors. Prints the measured run time and both execution accuracies: the
strict one must come out at 0.60; the authors' rule also credits the wrong counts
(no UUID column on either side), so it must equal 0.60 + that share.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

T = "NeurodegenerativeDiseases_SMR_Genes_Full"
D = "DrugTargets_IndicationsAndTherapeuticUses"


def make_kb(folder: str, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(f"{folder}/db_data", exist_ok=True)
    genes = np.array([f"GENE{i}" for i in range(5000)])
    pq.write_table(pa.table({
        "UUID": [f"{T}_{i:08d}" for i in range(n)],
        "gene": genes[rng.integers(0, len(genes), n)],
        "disease": np.array(["AD", "PD", "ALS", "FTD"])[rng.integers(0, 4, n)],
        "p_SMR": 10.0 ** -rng.uniform(0, 12, n),
        "p_HEIDI": rng.uniform(0, 1, n),
        "b_SMR": rng.normal(size=n),
    }), f"{folder}/db_data/{T}.parquet", row_group_size=131072)
    m = 20000
    pq.write_table(pa.table({
        "UUID": [f"{D}_{i:06d}" for i in range(m)],
        "drug": [f"DRUG{i % 3000}" for i in range(m)],
        "target_gene": genes[rng.integers(0, len(genes), m)],
        "phase": rng.integers(1, 5, m),
    }), f"{folder}/db_data/{D}.parquet")


_CON = {}


def stored_gold(folder: str, gold_sql: str) -> str:
    """The gold rows as the authors store them (str of a list of row dicts), from one DuckDB run."""
    import duckdb

    import omicsdata as od

    if folder not in _CON:
        con = duckdb.connect(":memory:")
        con.execute("CREATE SCHEMA biomedsql")
        for t in (T, D):
            con.execute(f"CREATE TABLE biomedsql.{t} AS SELECT * FROM read_parquet('{folder}/db_data/{t}.parquet')")
        _CON[folder] = con
    cur = _CON[folder].execute(od.biomedsql.to_duckdb(gold_sql, "bigquery", "biomedsql"))
    cols = [d[0] for d in cur.description]
    return str([dict(zip(cols, r)) for r in cur.fetchall()])


def make_questions(folder: str, q: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    rows, preds, wrong_counts = [], {}, 0
    for i in range(q):
        g = f"GENE{int(rng.integers(0, 5000))}"
        kind = i % 4
        if kind == 0:
            gold = (f"SELECT UUID, gene, p_SMR FROM `{{dataset_name}}.{T}` WHERE gene = '{g}' "
                    f"AND p_SMR < 2.95e-6 AND p_HEIDI > 0.01")
            good = f"SELECT UUID FROM {T} WHERE p_HEIDI > 0.01 AND gene = '{g}' AND p_SMR < 0.00000295 ORDER BY UUID"
            bad = f"SELECT UUID FROM {T} WHERE gene = '{g}' ORDER BY UUID LIMIT 1"
        elif kind == 1:
            gold = f"SELECT COUNT(DISTINCT gene) AS n FROM {{dataset_name}}.{T} WHERE disease = 'AD' AND b_SMR > {rng.uniform(1, 3):.3f}"
            thr = gold.rsplit("> ", 1)[1]
            good = f"SELECT COUNT(*) FROM (SELECT DISTINCT gene FROM {T} WHERE b_SMR > {thr} AND disease = 'AD')"
            bad = f"SELECT COUNT(DISTINCT gene) + 1 FROM {T} WHERE disease = 'AD' AND b_SMR > {thr}"
        elif kind == 2:
            gold = (f"SELECT s.UUID FROM `{{dataset_name}}.{T}` s JOIN `{{dataset_name}}.{D}` d ON s.gene = d.target_gene "
                    f"WHERE d.phase = 4 AND s.gene = '{g}' AND SAFE_CAST(s.p_SMR AS FLOAT64) < 1e-3")
            good = (f"SELECT DISTINCT s.UUID FROM {T} s WHERE s.gene = '{g}' AND s.p_SMR < 0.001 AND EXISTS "
                    f"(SELECT 1 FROM {D} d WHERE d.target_gene = s.gene AND d.phase = 4)")
            bad = f"SELECT s.UUID FROM {T} s WHERE s.gene = '{g}'"
        else:
            gold = f"SELECT UUID FROM `{{dataset_name}}.{T}` WHERE gene = '{g}' ORDER BY p_SMR ASC LIMIT 3"
            good = f"SELECT UUID, p_SMR FROM {T} WHERE gene = '{g}' ORDER BY p_SMR LIMIT 3"
            bad = f"SELECT UUID FROM {T} WHERE gene = '{g}' ORDER BY p_SMR DESC LIMIT 3"
        u = f"Q{kind}.{i}"
        rows.append({"uuid": u, "question": f"question {i} about {g}", "benchmark_query": gold, "answer": "...",
                     "execution_results": stored_gold(folder, gold)})
        r = i % 10
        preds[u] = good if r < 6 else (bad if r < 9 else "SELEC broken FROM")
        wrong_counts += int(kind == 1 and 6 <= r < 9)
    os.makedirs(f"{folder}/benchmark_data", exist_ok=True)
    pd.DataFrame(rows).to_csv(f"{folder}/benchmark_data/dev_sample.csv", index=False)
    return preds, wrong_counts / q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    os.environ.setdefault("OMICSDATA_HOME", tempfile.mkdtemp(prefix="bench-bmsql-home-"))
    import omicsdata as od

    src = tempfile.mkdtemp(prefix="bench-bmsql-src-")
    t0 = time.perf_counter()
    make_kb(src, a.rows)
    preds, share_counts = make_questions(src, a.queries)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = od.build("biomedsql", local_dir=src, force=True)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    con = od.biomedsql.connect(store, threads=a.threads)
    t_load = time.perf_counter() - t0
    rep = od.biomedsql.evaluate(preds, store, con=con, timeout=a.timeout)
    con.close()
    per = rep.per_query
    print(f"knowledge base: {a.rows:,} + 20,000 rows in 2 tables; {a.queries:,} questions; DuckDB threads={a.threads}")
    print("| step | seconds |")
    print("|---|---:|")
    print(f"| generate files | {t_gen:.2f} |")
    print(f"| od.build('biomedsql', local_dir=...) | {t_build:.2f} |")
    print(f"| load tables into DuckDB (connect) | {t_load:.2f} |")
    print(f"| evaluate {rep.n:,} predicted queries against stored gold | {rep.seconds:.2f} |")
    print(f"| per question, mean | {rep.seconds / max(rep.n, 1) * 1000:.2f} ms |")
    print(f"| predicted query, median / p99 | {per.pred_seconds.median() * 1000:.2f} / "
          f"{per.pred_seconds.quantile(.99) * 1000:.2f} ms |")
    want = 0.6 + share_counts
    print(f"\nexecution accuracy, authors' rule {rep.execution_accuracy:.4f} (expected {want:.4f}); "
          f"strict {rep.execution_accuracy_strict:.4f} (expected 0.6000); Jaccard {rep.jaccard:.4f}, "
          f"errors {rep.n_errors}, timeouts {rep.n_timeouts}, unreadable gold {rep.n_gold_errors}")
    assert rep.n_gold_errors == 0 and abs(rep.execution_accuracy_strict - 0.6) < 1e-9, per[per.status != "ok"].head()
    assert abs(rep.execution_accuracy - want) < 1e-9


if __name__ == "__main__":
    main()
