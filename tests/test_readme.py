"""The README says only what is true: every ```python block of README.md runs against the demo.

The blocks run in order, in one namespace for the whole file (later sections use ``od``,
``zoo`` and ``mdata`` from earlier ones), in a subprocess whose working directory and
``$OMICSDATA_HOME`` are a temporary folder, offline (``OMICSDATA_OFFLINE=1``,
``HF_HUB_OFFLINE=1``). A block that needs the network, a GPU or a big download is skipped only
when the line before its fence is ``<!-- readme-test: skip (reason) -->``; the skipped blocks
are printed with their reasons.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->")

RUNNER = r'''
import json, sys, time, traceback
blocks = json.load(open(sys.argv[1]))
ns = {"__name__": "__readme__"}
for b in blocks:
    t0 = time.perf_counter()
    try:
        exec(compile(b["code"], f"README.md:{b['line']}", "exec"), ns)
    except BaseException:
        traceback.print_exc()
        print(f"README BLOCK FAILED: line {b['line']} ({b['section']})", flush=True)
        sys.exit(1)
    print(f"ok {time.perf_counter() - t0:6.1f} s  README.md:{b['line']} ({b['section']})", flush=True)
'''


def readme_blocks(text: str) -> tuple[list[dict], list[dict]]:
    """``(run, skipped)``: the python blocks of ``text`` with their first code line and section;
    a skipped one carries its ``reason``."""
    run, skipped, section, prev = [], [], "", ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        fence = line.strip()
        if fence.startswith("```"):
            lang = fence[3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            if lang == "python":
                block = {"line": i + 2, "section": section, "code": "\n".join(lines[i + 1:j]) + "\n"}
                m = SKIP.search(prev)
                if m:
                    skipped.append({**block, "reason": m.group("reason").strip()})
                else:
                    run.append(block)
            i, prev = j + 1, ""
            continue
        if line.strip():
            prev = line
        i += 1
    return run, skipped


def test_block_parser_sees_fences_sections_and_skip_marks():
    text = ("# T\n## A\n```python\nx = 1\n```\n<!-- readme-test: skip (needs the network) -->\n"
            "```python\nraise SystemExit\n```\n## B\n```bash\nls\n```\n```python\ny = x + 1\n```\n")
    run, skipped = readme_blocks(text)
    assert [(b["section"], b["code"]) for b in run] == [("A", "x = 1\n"), ("B", "y = x + 1\n")]
    assert run[0]["line"] == 4
    assert [(b["section"], b["reason"]) for b in skipped] == [("A", "needs the network")]


def test_every_readme_python_block_runs(tmp_path):
    run, skipped = readme_blocks(README.read_text())
    assert run, "README.md has no python block"
    for b in skipped:
        print(f"skipped README.md:{b['line']} ({b['section']}): {b['reason']}")
        assert b["reason"], f"README.md:{b['line']}: a skip needs a reason"
    (tmp_path / "blocks.json").write_text(json.dumps(run))
    (tmp_path / "runner.py").write_text(RUNNER)
    home = tmp_path / "home"
    env = {**os.environ, "OMICSDATA_HOME": str(home), "HF_HOME": str(home / "hf"), "OMICSDATA_OFFLINE": "1",
           "HF_HUB_OFFLINE": "1", "OMICSDATA_PROGRESS": "0", "MPLBACKEND": "Agg"}
    env.pop("OMICSDATA_CATALOG", None)
    r = subprocess.run([sys.executable, "runner.py", "blocks.json"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=900)
    print(r.stdout)
    assert r.returncode == 0, f"a README block failed:\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
    assert r.stdout.count("\nok ") + r.stdout.startswith("ok ") == len(run)
