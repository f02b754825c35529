#!/usr/bin/env bash
# Run the test suite: sets up .venv if needed (scripts/setup.sh), then pytest.
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k store -x
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout=600 "$@"
rc=$?
set -e
exit $rc
