"""Clinical table from GDC ``/cases`` hits (JSON).

Each hit (fields of :data:`omicsdata.sources.gdc.CASE_FIELDS`) in the current
data model (GDC data dictionary v4.x; data release 42+) looks like::

    {"case_id": "...", "submitter_id": "TCGA-A1-A0SB", "project": {"project_id": "TCGA-BRCA"},
     "demographic": {"vital_status": "Dead", "days_to_death": 259, "sex_at_birth": "female", "race": "white"},
     "diagnoses": [{"days_to_last_follow_up": 259, "age_at_diagnosis": 25573,
                    "ajcc_pathologic_stage": "Stage I"}],
     "follow_ups": [{"days_to_follow_up": 412}, {"days_to_follow_up": 96}]}

Older responses carry ``demographic.gender`` (deprecated in v3.4.4, removed in
v4.0.3) instead of ``sex_at_birth``, and lower-case ``vital_status`` (and
``days_to_death``) inside ``diagnoses``. Rules (overall survival, as in SeNMo):

* ``os_event`` = 1 if ``vital_status`` is "dead", 0 if "alive", matched
  case-insensitively, read from ``demographic`` or else from ``diagnoses``;
  any other vital status (missing, "Not Reported") makes the patient unusable;
* ``os_time`` (days) = ``days_to_death`` for the dead; for the living, the
  greatest follow-up time over ``diagnoses[*].days_to_last_follow_up`` and
  ``follow_ups[*].days_to_follow_up`` (since data release 42 some TCGA
  follow-up lives only there);
* a patient with no usable time (dead without days_to_death, alive without
  any follow-up, negative time) is dropped, and reported with the reason;
* ``age`` = smallest ``diagnoses[*].age_at_diagnosis`` / 365.25 (years);
  ``stage`` = the first reported ``ajcc_pathologic_stage`` ("Stage IIA"...);
  ``sex`` = ``demographic.sex_at_birth``, else ``demographic.gender``;
  ``race`` = ``demographic.race``.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..errors import FormatError

NOT_REPORTED = {None, "", "not reported", "unknown", "'--", "--", "not allowed to collect"}
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}


def _num(x):
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _txt(x):
    if x is None:
        return None
    s = str(x).strip()
    return None if s.lower() in NOT_REPORTED else s


def stage_number(stage: str | None) -> int | None:
    """``"Stage IIB"`` -> 2, ``"Stage IV"`` -> 4; ``None`` when not a stage I-IV."""
    if not stage:
        return None
    m = re.match(r"^\s*stage\s+(IV|III|II|I)", str(stage), flags=re.I)
    return _ROMAN[m.group(1).upper()] if m else None


def _vital(demo: dict, diags: list[dict]) -> str | None:
    """``"dead"``/``"alive"`` (any case) from the demographic, else the first diagnosis that has one."""
    for v in [demo.get("vital_status")] + [d.get("vital_status") for d in diags]:
        t = _txt(v)
        if t is not None:
            return t.lower()
    return None


def _days_to_death(demo: dict, diags: list[dict]):
    v = _num(demo.get("days_to_death"))
    if v is None:  # older responses: inside diagnoses
        vals = [x for x in (_num(d.get("days_to_death")) for d in diags) if x is not None]
        v = max(vals) if vals else None
    return v


def _follow_ups(diags: list[dict], follow_ups: list[dict]) -> list[float]:
    """Every follow-up time: ``diagnoses[*].days_to_last_follow_up`` and ``follow_ups[*].days_to_(last_)follow_up``."""
    vals = [_num(d.get("days_to_last_follow_up")) for d in diags]
    for f in follow_ups if isinstance(follow_ups, list) else []:
        if isinstance(f, dict):
            vals += [_num(f.get("days_to_follow_up")), _num(f.get("days_to_last_follow_up"))]
    return [v for v in vals if v is not None]


def parse_cases(hits: list[dict], source: str = "/cases") -> tuple[pd.DataFrame, list[dict]]:
    """Turn ``/cases`` hits into ``(clinical DataFrame indexed by patient_id, dropped)``.

    Columns: ``cancer_type`` (project id), ``age`` (years), ``sex``, ``race``,
    ``stage``, ``os_time`` (days, float32), ``os_event`` (0/1, int8).
    ``dropped`` lists ``{"patient_id", "cancer_type", "reason"}`` for patients
    without a usable survival time.
    """
    rows, dropped = [], []
    for i, h in enumerate(hits):
        if not isinstance(h, dict) or not h.get("submitter_id"):
            raise FormatError(source, f"case hit #{i} has no submitter_id: {str(h)[:120]}")
        pid = str(h["submitter_id"])
        proj = (h.get("project") or {}).get("project_id")
        demo = h.get("demographic") or {}
        if isinstance(demo, list):  # some API versions return a one-item list
            demo = demo[0] if demo else {}
        diags = h.get("diagnoses") or []
        vital = _vital(demo, diags)
        fu = _follow_ups(diags, h.get("follow_ups") or [])
        reason = None
        if vital == "dead":
            event, time = 1, _days_to_death(demo, diags)
            if time is None:
                reason = "dead without days_to_death"
        elif vital == "alive":
            event, time = 0, (max(fu) if fu else None)
            if time is None:
                reason = "alive without days_to_last_follow_up or follow_ups.days_to_follow_up"
        else:
            event, time = 0, None
            raw = demo.get("vital_status", next((d.get("vital_status") for d in diags if d.get("vital_status")), None))
            reason = f"vital_status {raw!r}"
        if reason is None and time < 0:
            reason = f"negative survival time ({time:g} days)"
        if reason:
            dropped.append({"patient_id": pid, "cancer_type": proj, "reason": reason})
            continue
        ages = [v for v in (_num(d.get("age_at_diagnosis")) for d in diags) if v is not None]
        stages = [s for s in (_txt(d.get("ajcc_pathologic_stage")) for d in diags) if s]
        rows.append({"patient_id": pid, "cancer_type": proj,
                     "age": (min(ages) / 365.25) if ages else np.nan,
                     "sex": _txt(demo.get("sex_at_birth")) or _txt(demo.get("gender")), "race": _txt(demo.get("race")),
                     "stage": stages[0] if stages else None,
                     "os_time": time, "os_event": event})
    df = pd.DataFrame(rows, columns=["patient_id", "cancer_type", "age", "sex", "race", "stage", "os_time", "os_event"])
    dup = df["patient_id"].duplicated()
    if dup.any():
        raise FormatError(source, f"patient {df.loc[dup, 'patient_id'].iloc[0]} appears in more than one case hit")
    df = df.set_index("patient_id", drop=False)
    df.index.name = None
    df["age"] = df["age"].astype(np.float32)
    df["os_time"] = df["os_time"].astype(np.float32)
    df["os_event"] = df["os_event"].astype(np.int8)
    return df, dropped
