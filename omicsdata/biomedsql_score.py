"""BiomedSQL scoring: the stored gold results and the two execution-accuracy rules.

Gold answers are the benchmark's **stored** ``execution_results`` column: the
authors' pipeline writes ``[dict(row) for row in bigquery_result]`` and the CSV
holds its Python ``repr`` (a list of ``{column: value}`` dicts). It is read
with :func:`parse_results` (``ast.literal_eval``, plus a small literal-only
walker for the ``nan`` / ``inf`` / ``Decimal('...')`` / ``datetime.date(...)``
values BigQuery rows can hold); nothing is evaluated as code and the gold SQL
is never re-run.

Two rules score a predicted result against it, always reported side by side:

* **authors** (:func:`score_authors`) -- NIH-CARD/biomedsql
  ``utils/analysis_utils.get_metrics`` as written: the set of values of the
  column named exactly ``UUID`` (case-sensitive) in gold vs predicted; a result
  without that column contributes the empty set, so when *both* lack it the
  sets are equal (EX 1). Questions whose uuid starts with ``Q26.`` compare the
  last integer-looking gold value with the set of integer-looking predicted
  values, ``Q71.`` the two sets of integer-looking values. A predicted query
  that did not run scores 0.
* **strict** (:func:`score_strict`) -- ours, never more generous: EX 1 only if
  the authors' rule gives 1 *and* the results agree on content: both have a
  ``UUID`` column with equal value sets, or neither has one and the sets of
  all (normalised) cell values are equal (so an aggregate must return the same
  numbers; an empty gold needs an empty prediction).
"""
from __future__ import annotations

import ast
import datetime as _dt
import decimal
import math
from typing import Any

import numpy as np

UUID = "UUID"
_NAMES = {"nan": float("nan"), "inf": float("inf"), "None": None, "True": True, "False": False,
          "NaN": float("nan"), "Infinity": float("inf")}


class GoldParseError(ValueError):
    """A stored ``execution_results`` value is not a literal list of rows."""


def _lit(node: ast.AST) -> Any:
    """Evaluate a literal-only expression tree (no names other than nan/inf/None, no calls but a few types)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        vals = [_lit(e) for e in node.elts]
        return vals if isinstance(node, ast.List) else tuple(vals)
    if isinstance(node, ast.Dict):
        return {_lit(k): _lit(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _lit(node.operand)
        if not isinstance(v, (int, float)):
            raise GoldParseError(f"sign applied to {type(v).__name__}")
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.Call):
        fn = ast.unparse(node.func)
        args = [_lit(a) for a in node.args]
        if fn in ("Decimal", "decimal.Decimal") and len(args) == 1:
            return float(decimal.Decimal(str(args[0])))
        if fn in ("datetime.date", "date"):
            return _dt.date(*args).isoformat()
        if fn in ("datetime.datetime", "datetime"):
            return _dt.datetime(*args).isoformat()
        if fn == "float" and len(args) == 1 and isinstance(args[0], str):
            return float(args[0])
        raise GoldParseError(f"call to {fn}() is not a literal")
    raise GoldParseError(f"{type(node).__name__} is not a literal")


def parse_results(text: Any) -> list[dict]:
    """The rows of a stored ``execution_results`` value (``[{column: value}, ...]``).

    Raises :class:`GoldParseError` naming what is wrong; never evaluates code.
    """
    if isinstance(text, list):
        rows = text
    else:
        s = "" if text is None else str(text).strip()
        if not s:
            raise GoldParseError("empty")
        try:
            rows = ast.literal_eval(s)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            try:
                rows = _lit(ast.parse(s, mode="eval").body)
            except (SyntaxError, MemoryError, RecursionError) as e:
                raise GoldParseError(f"not a Python literal ({type(e).__name__})") from None
    if not isinstance(rows, list):
        raise GoldParseError(f"expected a list of rows, got {type(rows).__name__}")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise GoldParseError(f"row {i} is a {type(r).__name__}, expected a {{column: value}} dict")
    return rows


def to_records(columns: list[str], rows: list[tuple]) -> list[dict]:
    """A DB-API result as the authors store it: one dict per row (a repeated column name keeps its last value)."""
    return [dict(zip(columns, r)) for r in rows]


def _columns(records: list[dict]) -> list:
    cols: dict = {}
    for r in records:
        for k in r:
            cols.setdefault(k, None)
    return list(cols)


def _uuid_set(records: list[dict]) -> set:
    # pandas.DataFrame(records).get('UUID', []) in the reference: missing cells become NaN there
    return {_hashable(r.get(UUID)) for r in records} if UUID in _columns(records) else set()


def _hashable(v):
    if isinstance(v, (list, dict)):
        return repr(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _flat(records: list[dict]) -> list:
    return [_hashable(v) for r in records for v in r.values()]


def _digits(vals) -> list[int]:
    return [int(x) for x in vals if str(x).isdigit()]


def score_authors(uuid: str, gold: list[dict], pred: list[dict] | None) -> tuple[int, float]:
    """``(ex, jaccard)`` by the benchmark authors' rule (module docstring); ``pred=None``: the query did not run."""
    if pred is None:
        return 0, 0.0
    prefix = str(uuid).split(".")[0]
    if prefix == "Q26":
        found = _digits(_flat(gold))
        g = {found[-1]} if found else set()
        p = set(_digits(_flat(pred)))
    elif prefix == "Q71":
        g, p = set(_digits(_flat(gold))), set(_digits(_flat(pred)))
    else:
        g, p = _uuid_set(gold), _uuid_set(pred)
    union = len(g | p)
    return int(g == p), (len(g & p) / union if union else 1.0)


def norm_value(v):
    """A cell value in comparable form: numbers to 6 significant digits (integral floats as ints), text as str."""
    v = _hashable(v)
    if v is None:
        return None
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
    if isinstance(v, (decimal.Decimal,)):
        return norm_value(float(v))
    if isinstance(v, (_dt.date, _dt.datetime)):
        return v.isoformat()
    return str(v)


def score_strict(uuid: str, gold: list[dict], pred: list[dict] | None) -> tuple[int, float]:
    """``(ex, jaccard)`` by our stricter rule (module docstring); never 1 where the authors' rule gives 0."""
    if pred is None:
        return 0, 0.0
    g_has, p_has = UUID in _columns(gold), UUID in _columns(pred)
    if g_has != p_has:
        g = _uuid_set(gold) if g_has else {norm_value(v) for v in _flat(gold)}
        p = _uuid_set(pred) if p_has else {norm_value(v) for v in _flat(pred)}
        union = len(g | p)
        return 0, (len(g & p) / union if union else 0.0)
    if g_has:
        g, p = _uuid_set(gold), _uuid_set(pred)
    else:
        g, p = {norm_value(v) for v in _flat(gold)}, {norm_value(v) for v in _flat(pred)}
    union = len(g | p)
    jac = len(g & p) / union if union else 1.0
    ex = int(g == p) if (len(gold) == 0) == (len(pred) == 0) else 0
    authors_ex, _ = score_authors(uuid, gold, pred)
    return ex * authors_ex, jac
