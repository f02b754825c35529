"""The ``zoo`` shell command."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from zoo.cli import main


def test_help_and_list(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "download" in capsys.readouterr().out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "senmo" in out and "senmo-pancancer" in out and "Lab-Rasool/SeNMo" in out


def test_fit_then_predict(demo_store, tmp_path, capsys):
    params = json.dumps({"hidden": [16, 8], "max_epochs": 2, "progress": False})
    assert main(["fit", str(demo_store), "--params", params, "--out", str(tmp_path / "ck")]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "c_index" in res and (tmp_path / "ck" / "config.json").is_file()
    assert main(["predict", str(tmp_path / "ck"), str(demo_store), "--split", "test", "--out", str(tmp_path / "p.csv")]) == 0
    df = pd.read_csv(tmp_path / "p.csv")
    assert {"sample", "risk", "predicted_class"} <= set(df.columns) and len(df) > 0


def test_unknown_model_is_a_clean_error(capsys):
    assert main(["download", "no-such-model"]) == 1
    assert "unknown model" in capsys.readouterr().err
