"""What a user gets from ``pip install .``: a wheel holding every dataset card and JSON schema,
that lists and builds ``demo-pancancer`` from a fresh venv outside the repository.

Offline: the wheel is built without build isolation from a copy of the sources
(so stale ``build/`` folders of the checkout cannot leak into it); the fresh
venv gets the dependencies through a ``deps.pth`` naming the dev venv's
site-packages (a ``.pth`` line only adds that folder to ``sys.path``; the dev
venv's own ``__editable__*.pth`` is not processed, so the repo stays invisible).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SOURCES = ("omicsdata", "zoo", "pyproject.toml", "README.md")


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


def _shipped_data_files() -> set[str]:
    """Every data file the wheel must carry, as wheel paths (from the source tree)."""
    patterns = ("omicsdata/datasets/*/card.yaml", "omicsdata/schemas/*.schema.json", "zoo/catalog/*.yaml")
    return {p.relative_to(REPO).as_posix() for pat in patterns for p in REPO.glob(pat)}


@pytest.fixture(scope="module")
def build_output(tmp_path_factory) -> tuple[Path, str]:
    """(the built wheel, pip's verbose build log)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, src / name, **(
            {"ignore": ignore} if (REPO / name).is_dir() else {}))
    res = _run([PY, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", src])
    wheels = sorted((tmp / "dist").glob("omicszoo-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], res.stdout + res.stderr


def test_wheel_holds_every_card_and_schema(build_output):
    wheel, log = build_output
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _shipped_data_files()
    assert {f for f in expected if f.startswith("omicsdata/datasets/")}, "no dataset cards found in the source tree"
    assert {f"omicsdata/schemas/{s}.schema.json" for s in ("dataset", "model", "store")} <= expected
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert not any(n.startswith(("tests/", "scripts/", "catalog/", "schemas/")) for n in names)
    from omicsdata._version import __version__

    assert wheel.name.startswith(f"omicszoo-{__version__}-")
    assert "SetuptoolsDeprecationWarning" not in log and "SetuptoolsWarning" not in log, log


def test_installed_wheel_lists_and_builds_demo_outside_the_repo(build_output, tmp_path):
    wheel, _ = build_output
    venv = tmp_path / "v"
    _run([PY, "-m", "venv", "--without-pip", venv])
    vpy = venv / "bin" / "python"
    _run([PY, "-m", "pip", "--python", vpy, "install", "--no-deps", "--no-index", "-q", wheel])
    site = Path(_run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMICSDATA_CATALOG", "PYTHONHOME")}
    env["OMICSDATA_HOME"] = str(tmp_path / "home")
    script = textwrap.dedent("""
        import importlib.util, json
        import omicsdata as od
        names = od.list_datasets()
        od.build("demo-pancancer", n_patients=60)
        mdata = od.load("demo-pancancer", n_patients=60)
        print(json.dumps({"file": od.__file__, "zoo": importlib.util.find_spec("zoo").origin, "names": names,
                          "card": str(od.info("demo-pancancer").path), "n_obs": int(mdata.n_obs),
                          "mods": sorted(mdata.mod), "splits": sorted(set(mdata.obs["split"]))}))
    """)
    res = _run([vpy, "-c", script], cwd=cwd, env=env)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("file", "zoo", "card"):
        assert Path(out[key]).resolve().is_relative_to(venv.resolve()), (key, out[key])
    assert not Path(out["file"]).resolve().is_relative_to(REPO)
    assert "demo-pancancer" in out["names"] and len(out["names"]) == len(_shipped_cards())
    assert out["n_obs"] == 60 and {"rna", "methylation", "mirna", "mutation", "protein"} <= set(out["mods"])
    assert out["splits"] == ["test", "train", "val"]


def _shipped_cards() -> list[str]:
    return [f for f in _shipped_data_files() if f.endswith("/card.yaml")]
