#!/usr/bin/env bash
# The main job on the embedded default dataset (demo-pancancer):
# build + load the store, print its summary, run auto-survival (leaderboard), test figures, KM plot.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
