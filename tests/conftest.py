"""Shared fixtures: every test gets its own empty omicsdata cache."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helpers (servers) import as plain modules


@pytest.fixture(autouse=True)
def omicsdata_home(tmp_path_factory, monkeypatch):
    """An isolated $OMICSDATA_HOME (and Hugging Face cache) per test."""
    home = tmp_path_factory.mktemp("odhome")
    monkeypatch.setenv("OMICSDATA_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("OMICSDATA_CATALOG", raising=False)
    return home


def small_cohort(n_patients: int, n_cancer_types: int, seed: int, **sizes):
    """An in-memory simulated cohort (``omicsdata.synth``) with stratified patient splits in obs."""
    from omicsdata import synth
    from omicsdata.splits import assign_splits

    mdata = synth.simulate_pancancer(synth.CohortSpec(n_patients=n_patients, n_cancer_types=n_cancer_types,
                                                      seed=seed, **sizes))
    mdata.obs["split"] = assign_splits(mdata.obs_names.to_numpy(), mdata.obs["cancer_type"].to_numpy(), None, 0)
    return mdata


@contextlib.contextmanager
def home_at(path):
    """$OMICSDATA_HOME set to ``path`` for a block (for module/session fixtures, where monkeypatch is absent)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMICSDATA_HOME", str(path))
        yield Path(path)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """A small demo-pancancer store built once per session (read-only for tests)."""
    from omicsdata.api import build

    with home_at(tmp_path_factory.mktemp("demo-home")):
        return build("demo-pancancer", n_patients=300, n_cancer_types=4, seed=0)


@pytest.fixture
def hub_server(omicsdata_home, monkeypatch):
    """A running Hugging Face Hub look-alike (tests/hubserver.py) with HF_ENDPOINT pointing at it.

    Repos live under ``<OMICSDATA_HOME>/hubserver``; the HF cache is ``<OMICSDATA_HOME>/hf/hub``.
    Xet is never advertised by the server; HF_HUB_DISABLE_XET=1 is set as a belt-and-braces.
    """
    from hubserver import HubServer

    server = HubServer(omicsdata_home / "hubserver").start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    import huggingface_hub.constants as hf_constants  # read at import time: patch the live value too

    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HOME", str(omicsdata_home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    try:
        yield server
    finally:
        server.stop()
