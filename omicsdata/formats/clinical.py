"""Clinical table from GDC ``/cases`` hits (JSON).

Each hit (fields of :data:`omicsdata.sources.gdc.CASE_FIELDS`) looks like::

    {"case_id": "...", "submitter_id": "TCGA-A1-A0SB", "project": {"project_id": "TCGA-BRCA"},
     "demographic": {"vital_status": "Dead", "days_to_death": 259, "gender": "female", "race": "white"},
     "diagnoses": [{"days_to_last_follow_up": 259, "age_at_diagnosis": 25573,
                    "ajcc_pathologic_stage": "Stage I"}]}

Rules (overall survival, as in SeNMo):

* ``os_event`` = 1 if ``demographic.vital_status == "Dead"``, 0 if ``"Alive"``;
  any other vital status (missing, "Not Reported") makes the patient unusable;
* ``os_time`` (days) = ``demographic.days_to_death`` for the dead; for the
  living, the largest ``diagnoses[*].days_to_last_follow_up``;
* a patient with no usable time (dead without days_to_death, alive without
  any follow-up, negative time) is dropped, and reported with the reason;
* ``age`` = smallest ``diagnoses[*].age_at_diagnosis`` / 365.25 (years);
  ``stage`` = the first reported ``ajcc_pathologic_stage`` ("Stage IIA"...);
  ``sex`` = ``demographic.gender``; ``race`` = ``demographic.race``.
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
        vital = _txt(demo.get("vital_status"))
        fu = [v for v in (_num(d.get("days_to_last_follow_up")) for d in diags) if v is not None]
        reason = None
        if vital == "Dead":
            event, time = 1, _num(demo.get("days_to_death"))
            if time is None:
                reason = "dead without days_to_death"
        elif vital == "Alive":
            event, time = 0, (max(fu) if fu else None)
            if time is None:
                reason = "alive without days_to_last_follow_up"
        else:
            event, time = 0, None
            reason = f"vital_status {demo.get('vital_status')!r}"
        if reason is None and time < 0:
            reason = f"negative survival time ({time:g} days)"
        if reason:
            dropped.append({"patient_id": pid, "cancer_type": proj, "reason": reason})
            continue
        ages = [v for v in (_num(d.get("age_at_diagnosis")) for d in diags) if v is not None]
        stages = [s for s in (_txt(d.get("ajcc_pathologic_stage")) for d in diags) if s]
        rows.append({"patient_id": pid, "cancer_type": proj,
                     "age": (min(ages) / 365.25) if ages else np.nan,
                     "sex": _txt(demo.get("gender")), "race": _txt(demo.get("race")),
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
