"""A fast subset of ``scripts/fault_suite.py``'s rows (real processes, real files, servers on 127.0.0.1).

Every row must end clean (an OmicsDataError naming the thing, or a survived
fault) with nothing lost. The full table (10 kills per row, a 400 MiB MAF line,
the store rows of scripts/faults_store.py) is ``python scripts/fault_suite.py``.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import faults_build  # noqa: E402
import faults_io  # noqa: E402
import faults_zoo  # noqa: E402

ROWS = [
    ("html 200", faults_io.html_200),
    ("truncated", faults_io.truncated),
    ("slow drip", faults_io.slow_drip),
    ("no length", faults_io.no_length),
    ("retry-after -5", faults_io._retry("retry", "-5")),
    ("redirect to file://", faults_io.file_redirect),
    ("gzip bomb", faults_io.gzip_bomb),
    ("MAF long header", functools.partial(faults_io.maf_long_header, mib=16)),
    ("pickle config", faults_zoo.pickle_config),
    ("save over a user's folder", faults_zoo.save_over_user_folder),
    ("NaN training cell", faults_zoo.nan_training_cell),
    ("kill -9 during write_store", functools.partial(faults_build.kill_write_store, n_kills=1)),
    ("3 concurrent loads", functools.partial(faults_build.concurrent_loads, n=3)),
]


@pytest.mark.parametrize("name,row", ROWS, ids=[r[0] for r in ROWS])
def test_fault_row_is_clean_and_loses_nothing(name, row, tmp_path):
    clean, kept, detail = row(tmp_path)
    assert clean, f"{name}: not a clean error: {detail}"
    assert kept, f"{name}: something was lost: {detail}"
