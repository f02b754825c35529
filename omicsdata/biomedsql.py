"""BiomedSQL execution accuracy: predicted SQL runs on a local DuckDB over the store's tables and is
scored against the benchmark's STORED gold results.

>>> import omicsdata as od
>>> report = od.biomedsql.evaluate({"<uuid>": "SELECT ...", ...}, split="dev_sample")
>>> report.execution_accuracy, report.execution_accuracy_strict, report.per_query.head()

Gold answers are the ``execution_results`` column the authors stored with each
question (read with ``ast.literal_eval``, see :mod:`omicsdata.biomedsql_score`);
the gold SQL is kept in the store but never re-run here. Two scores are
reported side by side, never one instead of the other: ``execution_accuracy``
by the authors' rule (NIH-CARD/biomedsql ``utils/analysis_utils.get_metrics``:
equal sets of ``UUID`` values, case-sensitive; two results without a ``UUID``
column count as equal) and ``execution_accuracy_strict``, ours (the same UUID
rule, but results without UUIDs must hold the same values). A gold value that
cannot be parsed is status ``gold_error`` and scores 0.

Predictions are BigQuery SQL, as the benchmark prompts ask for (backticked
``<project>.<dataset>.<table>`` paths, e.g. ``card-ai-389220.bio_sql_benchmark.<table>``,
or the ``{dataset_name}`` placeholder): they are transpiled from BigQuery to
DuckDB with ``sqlglot`` (the ``sql`` extra; ``pred_dialect=None`` runs them
as given) and every ``[project.]dataset.table`` whose table is a local table is
mapped to it. A predicted query that fails to parse, errors or runs past
``timeout`` seconds scores 0 and the run goes on; its error is kept in
``per_query``. Tables are loaded into an in-memory DuckDB, after which external
access (files, network) is switched off and each predicted query runs in a
transaction that is rolled back, so a query can neither read local files nor
change the tables other queries see.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any, Iterable, Mapping

import pandas as pd

from .errors import OmicsDataError, SchemaMismatchError

DEFAULT_SCHEMA = "biomedsql"
PLACEHOLDER = "{dataset_name}"


class SQLHarnessError(OmicsDataError):
    """The harness itself cannot run (missing engine, unknown question ids...)."""


@dataclasses.dataclass
class EvalReport:
    """Result of :func:`evaluate`.

    ``execution_accuracy`` / ``jaccard``: the authors' rule;
    ``execution_accuracy_strict`` / ``jaccard_strict``: ours (see the module docstring).
    ``per_query``: one row per evaluated question -- ``uuid``, ``ex``, ``jaccard``,
    ``ex_strict``, ``jaccard_strict``, ``rows`` (rows the prediction returned),
    ``status`` (``ok``, ``error``, ``timeout``, ``gold_error``), ``error``, ``sql_run``
    (the DuckDB SQL actually run), ``pred_seconds``.
    """

    execution_accuracy: float
    jaccard: float
    execution_accuracy_strict: float
    jaccard_strict: float
    n: int
    n_errors: int
    n_timeouts: int
    n_gold_errors: int
    seconds: float
    per_query: pd.DataFrame

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("execution_accuracy", "jaccard", "execution_accuracy_strict",
                                                "jaccard_strict", "n", "n_errors", "n_timeouts", "n_gold_errors",
                                                "seconds")}

    def __repr__(self) -> str:
        return (f"BiomedSQL EX {self.execution_accuracy:.4f} (authors' rule; strict {self.execution_accuracy_strict:.4f}), "
                f"Jaccard {self.jaccard:.4f} over {self.n} queries; {self.n_errors} failed, {self.n_timeouts} timed out, "
                f"{self.n_gold_errors} unreadable gold results; {self.seconds:.1f}s")


# -- engine ---------------------------------------------------------------------------------
def _duckdb():
    try:
        import duckdb
    except ImportError:
        raise SQLHarnessError("the BiomedSQL harness needs DuckDB: pip install 'omicszoo[sql]'") from None
    return duckdb


def connect(source: Any = "biomedsql", *, schema: str = DEFAULT_SCHEMA, threads: int | None = None):
    """An in-memory DuckDB holding every ``db/<Table>`` of the store, as ``<schema>.<Table>`` and ``<Table>``.

    External access is disabled once the tables are loaded.
    """
    from .text.tables import list_tables, table_files

    duckdb = _duckdb()
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    names = [n for n in list_tables(source) if n.startswith("db/")]
    if not names:
        raise SQLHarnessError(f"{source}: the store has no db/<Table> tables; build it with od.build('biomedsql')")
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    for n in names:
        t = n[3:]
        files = ", ".join("'" + str(f).replace("'", "''") + "'" for f in table_files(source, n))
        con.execute(f'CREATE TABLE "{schema}"."{t}" AS SELECT * FROM read_parquet([{files}])')
        if schema != "main":
            con.execute(f'CREATE VIEW main."{t}" AS SELECT * FROM "{schema}"."{t}"')
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def to_duckdb(sql: str, dialect: str | None = "bigquery", schema: str = DEFAULT_SCHEMA,
              tables: Iterable[str] | None = None) -> str:
    """BigQuery (or ``dialect``) SQL as DuckDB SQL run against the local tables.

    The ``{dataset_name}`` placeholder becomes ``schema``; every table reference
    ``[project.]dataset.table`` (backticked or not) whose ``table`` is one of
    ``tables`` (all qualified references when ``tables`` is None) is mapped to
    ``schema.table``, whatever project and dataset it names. ``dialect=None``
    or ``"duckdb"`` only replaces the placeholder.
    """
    sql = sql.replace(PLACEHOLDER, schema)
    if not dialect or dialect == "duckdb":
        return sql
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:
        raise SQLHarnessError("transpiling BigQuery SQL needs sqlglot: pip install 'omicszoo[sql]'") from None
    known = None if tables is None else {t.lower() for t in tables}
    out = []
    for tree in sqlglot.parse(sql, read=dialect):
        if tree is None:
            continue
        for t in tree.find_all(exp.Table):
            if (t.args.get("db") or t.args.get("catalog")) and (known is None or t.name.lower() in known):
                t.set("catalog", None)
                t.set("db", exp.to_identifier(schema))
        out.append(tree.sql(dialect="duckdb"))
    return ";\n".join(out)


def run_query(con, sql: str, timeout: float | None) -> tuple[list[str], list[tuple]]:
    """Run ``sql`` on a cursor of ``con``, interrupted after ``timeout`` seconds; returns ``(columns, rows)``."""
    cur = con.cursor()
    timer = None
    fired = threading.Event()
    if timeout:
        def stop():
            fired.set()
            cur.interrupt()

        timer = threading.Timer(timeout, stop)
        timer.daemon = True
        timer.start()
    try:
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(sql)
            cols = [d[0] for d in (cur.description or [])]
            rows = cur.fetchall() if cur.description else []
        finally:
            try:
                cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - an interrupted/failed transaction may already be gone
                pass
    except Exception as e:  # noqa: BLE001 - any engine failure is a per-query error
        if fired.is_set():
            raise TimeoutError(f"ran past {timeout:g}s") from None
        raise e
    finally:
        if timer is not None:
            timer.cancel()
        cur.close()
    return cols, rows


def _predictions(predicted_sql, bench: pd.DataFrame) -> dict[str, str]:
    if isinstance(predicted_sql, pd.DataFrame):
        cols = {c.lower(): c for c in predicted_sql.columns}
        if "uuid" not in cols or not ({"sql", "predicted_sql", "parsed_sql_query"} & set(cols)):
            raise SchemaMismatchError("predicted_sql DataFrame needs columns 'uuid' and 'sql'; has "
                                      f"{list(predicted_sql.columns)}")
        scol = cols.get("sql") or cols.get("predicted_sql") or cols["parsed_sql_query"]
        return dict(zip(predicted_sql[cols["uuid"]].astype(str), predicted_sql[scol]))
    if isinstance(predicted_sql, Mapping):
        return {str(k): v for k, v in predicted_sql.items()}
    preds = list(predicted_sql)
    if len(preds) != len(bench):
        raise SchemaMismatchError(f"predicted_sql has {len(preds)} queries but the benchmark selection has "
                                  f"{len(bench)} questions; pass a {{uuid: sql}} mapping to score a subset")
    return dict(zip(bench["uuid"].astype(str), preds))


def _benchmark(source, split) -> pd.DataFrame:
    from .text.tables import read_table

    bench = read_table(source, "benchmark").to_pandas()
    if split is not None:
        want = {split} if isinstance(split, str) else set(split)
        bench = bench[bench["split"].isin(want)].reset_index(drop=True)
        if bench.empty:
            raise SQLHarnessError(f"no BiomedSQL questions in split(s) {sorted(want)}")
    if "execution_results" not in bench.columns:
        raise SQLHarnessError("the store's benchmark table has no 'execution_results' column (the stored gold "
                              "results); rebuild it with od.build('biomedsql', force=True)")
    # the same question may sit in two files (dev_sample is drawn from dev): score it once
    return bench.drop_duplicates("uuid", keep="first").reset_index(drop=True)


def evaluate(predicted_sql: Mapping[str, str] | Iterable[str] | pd.DataFrame, source: Any = "biomedsql", *,
             split: str | Iterable[str] | None = None, timeout: float | None = 30.0,
             schema: str = DEFAULT_SCHEMA, pred_dialect: str | None = "bigquery",
             threads: int | None = None, con=None, progress: bool = False) -> EvalReport:
    """Execution accuracy of ``predicted_sql`` on BiomedSQL (see the module docstring for both rules).

    ``predicted_sql``: ``{uuid: sql}``, a DataFrame with ``uuid`` and ``sql``
    columns, or a list aligned with the questions of ``split``.
    ``source``: the store (catalog name, folder or MuData). ``timeout``:
    seconds per query (None: no limit). ``pred_dialect``: the predictions'
    dialect (BigQuery by default; None runs them as given). ``con``: reuse a
    :func:`connect` connection. Never raises for a failing query -- only for bad arguments.
    """
    from .biomedsql_score import GoldParseError, parse_results, score_authors, score_strict, to_records

    bench = _benchmark(source, split)
    preds = _predictions(predicted_sql, bench)
    by_uuid = bench.set_index("uuid")
    unknown = [u for u in preds if u not in by_uuid.index]
    if unknown:
        raise SQLHarnessError(f"{len(unknown)} predicted uuid(s) are not BiomedSQL questions"
                              f"{' in split ' + str(split) if split else ''}: {unknown[:5]}")
    own = con is None
    if own:
        con = connect(source, schema=schema, threads=threads)
    local = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]).fetchall()]
    t0 = time.perf_counter()
    rows = []
    items = list(preds.items())
    if progress:
        from .progress import bar as tqdm
        items = tqdm(items, desc="BiomedSQL", unit="query")
    try:
        for uuid, psql in items:
            rec = {"uuid": uuid, "ex": 0, "jaccard": 0.0, "ex_strict": 0, "jaccard_strict": 0.0, "rows": 0,
                   "status": "ok", "error": None, "sql_run": None, "pred_seconds": None}
            try:
                gold = parse_results(by_uuid.at[uuid, "execution_results"])
            except GoldParseError as e:
                rec.update(status="gold_error", error=f"question {uuid}: stored execution_results: {e}")
                rows.append(rec)
                continue
            t = time.perf_counter()
            pred = None
            try:
                if psql is None or (isinstance(psql, float) and math.isnan(psql)) or not str(psql).strip():
                    raise ValueError("no SQL predicted")
                rec["sql_run"] = to_duckdb(str(psql), pred_dialect, schema, tables=local)
                cols, prow = run_query(con, rec["sql_run"], timeout)
                pred = to_records(cols, prow)
                rec["rows"] = len(prow)
            except TimeoutError as e:
                rec.update(status="timeout", error=str(e))
            except Exception as e:  # noqa: BLE001 - parse/engine failures are per-query errors
                rec.update(status="error", error=f"{type(e).__name__}: {e}")
            rec["pred_seconds"] = time.perf_counter() - t
            rec["ex"], rec["jaccard"] = score_authors(uuid, gold, pred)
            rec["ex_strict"], rec["jaccard_strict"] = score_strict(uuid, gold, pred)
            rows.append(rec)
    finally:
        if own:
            con.close()
    per = pd.DataFrame(rows, columns=["uuid", "ex", "jaccard", "ex_strict", "jaccard_strict", "rows", "status",
                                      "error", "sql_run", "pred_seconds"])
    n = len(per)
    st = per["status"]

    def mean(c):
        return float(per[c].mean()) if n else float("nan")

    return EvalReport(
        execution_accuracy=mean("ex"), jaccard=mean("jaccard"),
        execution_accuracy_strict=mean("ex_strict"), jaccard_strict=mean("jaccard_strict"),
        n=n, n_errors=int((st == "error").sum()), n_timeouts=int((st == "timeout").sum()),
        n_gold_errors=int((st == "gold_error").sum()),
        seconds=time.perf_counter() - t0, per_query=per)
