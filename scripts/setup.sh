#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test extras.
# torch is installed first, pinned to the CPU build this machine ships
# (torch==2.13.0), falling back to a plain install elsewhere, so pip never
# pulls a multi-GB CUDA build by accident. A re-run with everything
# installed only checks a stamp file and returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.omicszoo-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
installed_ok() {
  # the stamp matches pyproject.toml and both packages import from this tree
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python - <<'PY' >/dev/null 2>&1
import importlib.util, sys
ok = all((s := importlib.util.find_spec(n)) is not None and s.origin for n in ("omicsdata", "zoo"))
sys.exit(0 if ok else 1)
PY
}
if installed_ok; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "torch==2.13.0" \
    || .venv/bin/python -m pip install -q torch
fi
.venv/bin/python -m pip install -q -e ".[test]"
echo "$want" > "$stamp"
