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
        "TCGA-00-0003": "dead without days_to_death", "TCGA-00-0004": "alive without days_to_last_follow_up",
        "TCGA-00-0005": "vital_status 'Not Reported'"}


def test_stage_number_and_errors():
    assert [stage_number(s) for s in ("Stage I", "Stage IIB", "Stage IIIC", "Stage IV", "Stage X", None)] == \
        [1, 2, 3, 4, None, None]
    with pytest.raises(FormatError, match="no submitter_id"):
        parse_cases([{"case_id": "x"}])
    with pytest.raises(FormatError, match="TCGA-00-0001 appears in more than one"):
        parse_cases([case("TCGA-00-0001", "Dead", 5), case("TCGA-00-0001", "Dead", 5)])
