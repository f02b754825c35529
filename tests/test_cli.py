"""The ``omicsdata`` command line: list | info | build | download | verify | cache."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import omicsdata as od
from omicsdata import paths
from omicsdata.cli import _parse_opts, main

COMMANDS = ["list", "info", "build", "download", "verify", "cache"]


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_help_for_every_command(capsys):
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as ei:
            main([cmd, "--help"])
        assert ei.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: omicsdata {cmd}")
    with pytest.raises(SystemExit) as ei:
        main(["--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in COMMANDS)


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "omicsdata"
    assert exe.is_file()
    r = subprocess.run([str(exe), "info", "demo-pancncer"], capture_output=True, text=True)
    assert r.returncode == 1
    from omicsdata.catalog import unknown_message

    assert r.stderr.strip() == "omicsdata info: error: " + unknown_message("dataset", "demo-pancncer", od.list_datasets())
    assert "Did you mean: demo-pancancer" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_list_and_info(capsys):
    rc, out, _ = run(capsys, "list")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "version", "cached", "title"]
    row = next(line for line in lines if line.startswith("demo-pancancer"))
    assert row.split()[1:3] == ["1.0", "no"]
    rc, out, _ = run(capsys, "info", "demo-pancancer")
    assert rc == 0 and out.strip() == repr(od.info("demo-pancancer"))


def test_build_verify_cache_clear(capsys):
    rc, out, err = run(capsys, "build", "demo-pancancer", "--opt", "n_patients=50", "--opt", "n_cancer_types=2")
    target = paths.store_dir("demo-pancancer", "1.0", {"n_patients": 50, "n_cancer_types": 2})  # its options' slot
    assert rc == 0 and re.fullmatch(rf"built {re.escape(str(target))} in \d+\.\d s", out.strip()), out
    assert "writing demo-pancancer: started" in err  # not a terminal: one line per stage (omicsdata.progress)
    assert err.splitlines()[0] == f"demo-pancancer: building the store {target} (cached for the next load): started"
    created = json.loads((target / "manifest.json").read_text())["created"]
    rc, out, err = run(capsys, "build", "demo-pancancer", "--opt", "n_patients=50", "--opt", "n_cancer_types=2")
    assert rc == 0 and out.strip() == f"reused {target} (built {created})"
    assert "building" not in err and "writing" not in err
    assert "\r" not in err
    assert od.load("demo-pancancer", n_patients=50, n_cancer_types=2).n_obs == 50
    rc, out, _ = run(capsys, "list")
    assert next(line for line in out.splitlines() if line.startswith("demo-pancancer")).split()[2] == "yes"

    rc, out, _ = run(capsys, "verify", "demo-pancancer")
    assert rc == 0 and out.startswith("ok: ") and str(target) in out
    rc, out, _ = run(capsys, "verify", str(target))
    assert rc == 0

    chunk = target / "mod" / "rna" / "X" / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 1
    chunk.write_bytes(bytes(data))
    rc, out, err = run(capsys, "verify", "demo-pancancer")
    assert rc == 1 and out == ""
    assert err.startswith("omicsdata verify: error: ") and "mismatched: mod/rna/X/c/0/0" in err
    assert "Traceback" not in err

    rc, out, _ = run(capsys, "cache")
    assert rc == 0 and str(paths.home()) in out
    row = next(line for line in out.splitlines() if line.startswith("demo-pancancer"))
    cols = row.split()  # the version column is the cache slot: <version>-<options hash> (issue 15)
    assert cols[0] == "demo-pancancer" and cols[1] in ("1.0", target.name) and cols[2] == "50" and cols[-1] == "ok"

    rc, out, _ = run(capsys, "build", "demo-pancancer", "--opt", "n_patients=50", "--opt", "n_cancer_types=2", "--force")
    assert rc == 0 and out.startswith(f"built {target} in ")  # --force rebuilds: never "reused"
    assert od.verify("demo-pancancer")["ok"]

    rc, out, _ = run(capsys, "cache", "--clear", "demo-pancancer")
    assert rc == 0 and out.startswith("removed demo-pancancer 1.0")
    assert not target.exists() and list(target.parent.iterdir()) == []
    rc, out, _ = run(capsys, "cache")
    assert "(empty)" in out
    rc, out, _ = run(capsys, "cache", "--clear", "demo-pancancer")
    assert rc == 0 and "nothing cached" in out
    rc, out, err = run(capsys, "cache", "--clear", "demo-pancanceer")
    assert rc == 1 and "Did you mean: demo-pancancer" in err


def test_build_errors_exit_1(capsys):
    rc, out, err = run(capsys, "build", "demo-pancancer", "--opt", "n_patiens=3")
    assert rc == 1 and "dataset 'demo-pancancer': bad builder option" in err and "n_patiens" in err
    rc, out, err = run(capsys, "build", "demo-pancancer", "--opt", "oops")
    assert rc == 1 and "--opt 'oops': expected key=value" in err
    rc, out, err = run(capsys, "verify", "demo-pancancer")
    assert rc == 1 and "no store there" in err


def test_download_synthetic_has_nothing_to_fetch(capsys):
    rc, out, _ = run(capsys, "download", "demo-pancancer")
    assert rc == 0 and "nothing to download" in out and "simulated" in out
    assert not paths.store_dir("demo-pancancer", "1.0").exists()  # nothing built


def test_download_hook_is_called(capsys, tmp_path, monkeypatch):
    import yaml

    from omicsdata.builders import _DOWNLOADERS, register_download
    from omicsdata.catalog import DATASETS_DIR

    entry = yaml.safe_load((DATASETS_DIR / "demo_pancancer" / "card.yaml").read_text())
    entry.update(name="dl-test", builder="dl-test-builder", source={"kind": "url", "location": "http://127.0.0.1/x"})
    (tmp_path / "dl-test.yaml").write_text(yaml.safe_dump(entry))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    calls = []

    @register_download("dl-test-builder")
    def fetch(card, **options):
        calls.append((card.name, options))
        f = paths.raw_dir("url") / "x.txt"
        f.write_text("raw")
        return [f]

    try:
        rc, out, _ = run(capsys, "download", "dl-test", "--opt", "files=[a, b]")
    finally:
        _DOWNLOADERS.pop("dl-test-builder", None)
    assert rc == 0 and calls == [("dl-test", {"files": ["a", "b"]})]
    assert str(paths.raw_dir("url") / "x.txt") in out and "1 raw file(s)" in out


def test_parse_opts_types():
    assert _parse_opts(["n=3", "f=true", "x=0.5", "s=abc", "l=[1, 2]", "e="]) == \
        {"n": 3, "f": True, "x": 0.5, "s": "abc", "l": [1, 2], "e": ""}


def test_first_load_shows_progress_at_once_and_setting_silences_it(tmp_path):
    """A first ``od.load`` (no logging set up by the user, stderr not a terminal) with
    ``$OMICSDATA_PROGRESS=1``: the build line is the first thing on stderr, written before the
    builder runs; ``=0`` writes nothing."""
    code = ("import omicsdata as od; from omicsdata import builders\n"
            "real = builders.get_builder\n"
            "def spy(name):\n"
            "    import sys; sys.stderr.write('<builder starts>\\n'); return real(name)\n"
            "import omicsdata.api as api; api.get_builder = spy\n"
            "od.load('demo-pancancer', n_patients=40, n_cancer_types=2)\n")
    for setting in ("1", "0"):
        env = {**os.environ, "OMICSDATA_HOME": str(tmp_path / setting), "OMICSDATA_PROGRESS": setting}
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        err = r.stderr.lstrip()  # text mode reads tqdm's \r as a newline
        if setting == "0":
            assert err == "<builder starts>\n", err
        else:
            assert err.startswith("demo-pancancer: building the store "), err[:300]
            assert 0 < err.index("<builder starts>"), err[:300]
