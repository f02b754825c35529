"""BiomedSQL execution accuracy: run predicted and gold SQL on a local DuckDB over the store's Parquet tables.

>>> import omicsdata as od
>>> report = od.biomedsql.evaluate({"uuid-1": "SELECT ...", ...}, split="dev_sample")
>>> report.execution_accuracy, report.per_query.head()

Scoring follows the benchmark's own analysis code (NIH-CARD/biomedsql,
``utils/analysis_utils.get_metrics``): a question's rows are identified by
their ``UUID`` column; **execution accuracy** (EX) is 1 when the set of
UUIDs the predicted query returns equals the set the gold query returns,
else 0; the **Jaccard** index of the two sets is reported beside it. Where
the gold result has no UUID column (counts, aggregates) -- or the predicted
result lacks one -- the sets of all returned cell values are compared, as the
reference code's fallback does (floats to 6 significant digits, integral
floats as ints). A predicted query that fails to parse, errors or runs past
``timeout`` seconds scores EX 0 / Jaccard 0 and the run goes on; its error
is kept in ``per_query``. A gold query that fails is reported as
``gold_error`` and scores 0 (it is counted, so a broken gold set is visible).

Gold queries are written for BigQuery with a ``{dataset_name}`` placeholder;
they are transpiled to DuckDB with ``sqlglot`` (the ``sql`` extra) after the
placeholder is replaced. Predicted queries run as given (``pred_dialect``
to transpile them too). Tables are loaded into an in-memory DuckDB, after
which external access (files, network) is switched off and each predicted
query runs in a transaction that is rolled back, so a query can neither read
local files nor change the tables other queries see.
"""
from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import OmicsDataError, SchemaMismatchError

DEFAULT_SCHEMA = "biomedsql"
PLACEHOLDER = "{dataset_name}"


class SQLHarnessError(OmicsDataError):
    """The harness itself cannot run (missing engine, unknown question ids...)."""


@dataclasses.dataclass
class EvalReport:
    """Result of :func:`evaluate`.

    ``per_query``: one row per evaluated question -- ``uuid``, ``ex`` (0/1),
    ``jaccard``, ``rows`` (rows the prediction returned), ``status`` (``ok``,
    ``error``, ``timeout``, ``gold_error``, ``gold_timeout``), ``error``,
    ``pred_seconds``, ``gold_seconds``.
    """

    execution_accuracy: float
    jaccard: float
    n: int
    n_errors: int
    n_timeouts: int
    n_gold_errors: int
    seconds: float
    per_query: pd.DataFrame

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("execution_accuracy", "jaccard", "n", "n_errors", "n_timeouts",
                                                "n_gold_errors", "seconds")}

    def __repr__(self) -> str:
        return (f"BiomedSQL EX {self.execution_accuracy:.4f} (Jaccard {self.jaccard:.4f}) over {self.n} queries; "
                f"{self.n_errors} failed, {self.n_timeouts} timed out, {self.n_gold_errors} gold failures; "
                f"{self.seconds:.1f}s")


# -- result comparison ---------------------------------------------------------------------
def _norm(v):
    if v is None:
        return None
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isfinite(v) and v == int(v) and abs(v) < 2**53:
            return int(v)
        return float(f"{v:.6g}")
    if isinstance(v, int):
        return v
    return str(v)


def _uuid_col(columns: list[str]) -> int | None:
    for i, c in enumerate(columns):
        if str(c).lower() == "uuid":
            return i
    return None


def result_ids(columns: list[str], rows: list[tuple], use_uuid: bool = True) -> set:
    """The set a result is scored by: its UUID column's values, else all (normalised) cell values."""
    k = _uuid_col(columns) if use_uuid else None
    if k is not None:
        return {_norm(r[k]) for r in rows}
    return {_norm(v) for r in rows for v in r}


def score(gold: tuple[list[str], list[tuple]], pred: tuple[list[str], list[tuple]]) -> tuple[int, float]:
    """``(ex, jaccard)`` of a predicted result against the gold result (see the module docstring)."""
    gcols, grows = gold
    pcols, prows = pred
    both_uuid = _uuid_col(gcols) is not None and _uuid_col(pcols) is not None
    g = result_ids(gcols, grows, both_uuid)
    p = result_ids(pcols, prows, both_uuid)
    union = len(g | p)
    return int(g == p), (len(g & p) / union if union else 1.0)


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


def to_duckdb(sql: str, dialect: str | None = "bigquery", schema: str = DEFAULT_SCHEMA) -> str:
    """Replace the ``{dataset_name}`` placeholder by ``schema`` and transpile ``dialect`` SQL to DuckDB."""
    sql = sql.replace(PLACEHOLDER, schema)
    if not dialect or dialect == "duckdb":
        return sql
    try:
        import sqlglot
    except ImportError:
        raise SQLHarnessError("transpiling BigQuery SQL needs sqlglot: pip install 'omicszoo[sql]'") from None
    # BigQuery `project.dataset.table` paths: keep only dataset.table so they resolve in <schema>
    sql = re.sub(r"`[^`.]+\.(" + re.escape(schema) + r")\.([^`]+)`", r"`\1.\2`", sql)
    out = sqlglot.transpile(sql, read=dialect, write="duckdb")
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


def evaluate(predicted_sql: Mapping[str, str] | Iterable[str] | pd.DataFrame, source: Any = "biomedsql", *,
             split: str | Iterable[str] | None = None, timeout: float | None = 30.0,
             schema: str = DEFAULT_SCHEMA, gold_dialect: str | None = "bigquery",
             pred_dialect: str | None = None, threads: int | None = None, con=None,
             progress: bool = False) -> EvalReport:
    """Execution accuracy of ``predicted_sql`` on BiomedSQL (see the module docstring for the rule).

    ``predicted_sql``: ``{uuid: sql}``, a DataFrame with ``uuid`` and ``sql``
    columns, or a list aligned with the benchmark rows of ``split``.
    ``source``: the store (catalog name, folder or MuData). ``timeout``:
    seconds per query (None: no limit). ``con``: reuse a :func:`connect`
    connection. Never raises for a failing query -- only for bad arguments.
    """
    from .text.tables import read_table

    bench = read_table(source, "benchmark").to_pandas()
    if split is not None:
        want = {split} if isinstance(split, str) else set(split)
        bench = bench[bench["split"].isin(want)].reset_index(drop=True)
        if bench.empty:
            raise SQLHarnessError(f"no BiomedSQL questions in split(s) {sorted(want)}")
    preds = _predictions(predicted_sql, bench)
    by_uuid = bench.set_index("uuid")
    unknown = [u for u in preds if u not in by_uuid.index]
    if unknown:
        raise SQLHarnessError(f"{len(unknown)} predicted uuid(s) are not BiomedSQL questions"
                              f"{' in split ' + str(split) if split else ''}: {unknown[:5]}")
    own = con is None
    if own:
        con = connect(source, schema=schema, threads=threads)
    t0 = time.perf_counter()
    rows = []
    items = list(preds.items())
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(items, desc="BiomedSQL", unit="query")
    try:
        for uuid, psql in items:
            rec = {"uuid": uuid, "ex": 0, "jaccard": 0.0, "rows": 0, "status": "ok", "error": None,
                   "pred_seconds": None, "gold_seconds": None}
            t = time.perf_counter()
            try:
                gold = run_query(con, to_duckdb(str(by_uuid.at[uuid, "sql"]), gold_dialect, schema), timeout)
            except TimeoutError as e:
                rec.update(status="gold_timeout", error=f"gold query {e}")
                gold = None
            except Exception as e:  # noqa: BLE001
                rec.update(status="gold_error", error=f"gold query: {type(e).__name__}: {e}")
                gold = None
            rec["gold_seconds"] = time.perf_counter() - t
            if gold is not None:
                t = time.perf_counter()
                try:
                    if psql is None or (isinstance(psql, float) and math.isnan(psql)) or not str(psql).strip():
                        raise ValueError("no SQL predicted")
                    sql = to_duckdb(str(psql), pred_dialect, schema) if pred_dialect else \
                        str(psql).replace(PLACEHOLDER, schema)
                    pred = run_query(con, sql, timeout)
                    rec["ex"], rec["jaccard"] = score(gold, pred)
                    rec["rows"] = len(pred[1])
                except TimeoutError as e:
                    rec.update(status="timeout", error=str(e))
                except Exception as e:  # noqa: BLE001
                    rec.update(status="error", error=f"{type(e).__name__}: {e}")
                rec["pred_seconds"] = time.perf_counter() - t
            rows.append(rec)
    finally:
        if own:
            con.close()
    per = pd.DataFrame(rows, columns=["uuid", "ex", "jaccard", "rows", "status", "error", "pred_seconds",
                                      "gold_seconds"])
    n = len(per)
    st = per["status"]
    return EvalReport(
        execution_accuracy=float(per["ex"].mean()) if n else float("nan"),
        jaccard=float(per["jaccard"].mean()) if n else float("nan"),
        n=n, n_errors=int((st == "error").sum()), n_timeouts=int((st == "timeout").sum()),
        n_gold_errors=int(st.isin(["gold_error", "gold_timeout"]).sum()),
        seconds=time.perf_counter() - t0, per_query=per)
