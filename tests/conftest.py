"""Shared fixtures: every test gets its own empty omicsdata cache."""
from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """A small demo-pancancer store built once per session (read-only for tests)."""
    import omicsdata as od
    from omicsdata.builders import get_builder
    from omicsdata.api import build

    home = tmp_path_factory.mktemp("demo-home")
    old = os.environ.get("OMICSDATA_HOME")
    os.environ["OMICSDATA_HOME"] = str(home)
    try:
        path = build("demo-pancancer", n_patients=300, n_cancer_types=4, seed=0)
    finally:
        if old is None:
            os.environ.pop("OMICSDATA_HOME", None)
        else:
            os.environ["OMICSDATA_HOME"] = old
    return path


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
