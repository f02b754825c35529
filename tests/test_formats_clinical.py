import numpy as np
import pytest

from omicsdata.errors import FormatError
from omicsdata.formats import parse_cases
from omicsdata.formats.clinical import stage_number


def case(pid, vital, dtd=None, fus=(None,), age=20000, stage="Stage IIA", proj="TCGA-BRCA"):
    return {"case_id": pid.lower(), "submitter_id": pid, "project": {"project_id": proj},
            "demographic": {"vital_status": vital, "days_to_death": dtd, "gender": "female", "race": "white"},
            "diagnoses": [{"days_to_last_follow_up": f, "age_at_diagnosis": age, "ajcc_pathologic_stage": stage}
                          for f in fus]}


def test_survival_rules():
    hits = [case("TCGA-00-0001", "Dead", 259, (100,)),
            case("TCGA-00-0002", "Alive", None, (300, 1200, None)),  # largest follow-up wins
            case("TCGA-00-0003", "Dead", None, (500,)),               # dead, no days_to_death: dropped
            case("TCGA-00-0004", "Alive", None, (None,)),             # no follow-up: dropped
            case("TCGA-00-0005", "Not Reported", None, (10,)),        # no vital status: dropped
            case("TCGA-00-0006", "Alive", None, (0,), age=None, stage="Not Reported")]
    df, dropped = parse_cases(hits)
    assert list(df.index) == ["TCGA-00-0001", "TCGA-00-0002", "TCGA-00-0006"]
    np.testing.assert_array_equal(df["os_time"], [259, 1200, 0])
    np.testing.assert_array_equal(df["os_event"], [1, 0, 0])
    assert df["age"].iloc[0] == pytest.approx(20000 / 365.25, rel=1e-6) and np.isnan(df["age"].iloc[2])
    assert df["stage"].tolist() == ["Stage IIA", "Stage IIA", None]
    assert df["cancer_type"].iloc[0] == "TCGA-BRCA" and df["sex"].iloc[0] == "female"
    assert {d["patient_id"]: d["reason"] for d in dropped} == {
        "TCGA-00-0003": "dead without days_to_death",
        "TCGA-00-0004": "alive without days_to_last_follow_up or follow_ups.days_to_follow_up",
        "TCGA-00-0005": "vital_status 'Not Reported'"}


def test_stage_number_and_errors():
    assert [stage_number(s) for s in ("Stage I", "Stage IIB", "Stage IIIC", "Stage IV", "Stage X", None)] == \
        [1, 2, 3, 4, None, None]
    with pytest.raises(FormatError, match="no submitter_id"):
        parse_cases([{"case_id": "x"}])
    with pytest.raises(FormatError, match="TCGA-00-0001 appears in more than one"):
        parse_cases([case("TCGA-00-0001", "Dead", 5), case("TCGA-00-0001", "Dead", 5)])


def current(pid, vital, dtd=None, diag_fu=None, follow_ups=(), sex="female"):
    """A hit in the GDC's current data model (sex_at_birth; follow-up possibly only in follow_ups)."""
    h = {"case_id": pid.lower(), "submitter_id": pid, "project": {"project_id": "TCGA-LUAD"},
         "demographic": {"vital_status": vital, "days_to_death": dtd, "sex_at_birth": sex, "race": "asian"},
         "diagnoses": [{"days_to_last_follow_up": diag_fu, "age_at_diagnosis": 21000,
                        "ajcc_pathologic_stage": "Stage I"}]}
    if follow_ups:
        h["follow_ups"] = [{"days_to_follow_up": f} for f in follow_ups]
    return h


def test_sex_at_birth_with_gender_fallback():
    old = case("TCGA-00-0001", "Dead", 10)  # an older response: demographic.gender only
    df, _ = parse_cases([current("TCGA-00-0002", "Dead", 10, sex="male"), old])
    assert df.loc["TCGA-00-0002", "sex"] == "male" and df.loc["TCGA-00-0001", "sex"] == "female"
    both = current("TCGA-00-0003", "Dead", 10, sex="male")
    both["demographic"]["gender"] = "female"
    assert parse_cases([both])[0]["sex"].iloc[0] == "male"  # sex_at_birth wins


def test_follow_ups_give_the_greatest_time_and_keep_patients():
    hits = [current("TCGA-00-0001", "Alive", None, None, (90, 811, None)),  # follow-up only in follow_ups
            current("TCGA-00-0002", "Alive", None, 300, (120,)),           # diagnoses later than follow_ups
            current("TCGA-00-0003", "Alive", None, 300, (1400,)),          # follow_ups later than diagnoses
            current("TCGA-00-0004", "Alive", None, None, ())]              # neither: dropped
    df, dropped = parse_cases(hits)
    assert list(df.index) == ["TCGA-00-0001", "TCGA-00-0002", "TCGA-00-0003"]
    np.testing.assert_array_equal(df["os_time"], [811, 300, 1400])
    assert [d["patient_id"] for d in dropped] == ["TCGA-00-0004"]


def test_vital_status_is_case_insensitive_and_read_inside_diagnoses():
    lower = current("TCGA-00-0001", "dead", 77)
    upper = current("TCGA-00-0002", "ALIVE", None, 50)
    old = {"case_id": "c3", "submitter_id": "TCGA-00-0003", "project": {"project_id": "TCGA-OV"},
           "demographic": {"gender": "female", "race": "white"},  # older response: vital status inside diagnoses
           "diagnoses": [{"vital_status": "dead", "days_to_death": 640, "days_to_last_follow_up": 600,
                          "age_at_diagnosis": 20000, "ajcc_pathologic_stage": None}]}
    old_alive = {"case_id": "c4", "submitter_id": "TCGA-00-0004", "project": {"project_id": "TCGA-OV"},
                 "demographic": {"gender": "male"},
                 "diagnoses": [{"vital_status": "alive", "days_to_last_follow_up": 1234}]}
    df, dropped = parse_cases([lower, upper, old, old_alive])
    assert not dropped
    np.testing.assert_array_equal(df["os_event"], [1, 0, 1, 0])
    np.testing.assert_array_equal(df["os_time"], [77, 50, 640, 1234])
