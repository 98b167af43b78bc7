#!/usr/bin/env bash
# Sets up .venv with the test extras, lints, and runs the whole test suite on 2 workers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh test
venv="${SPARSE_VENV:-$root/.venv}"
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -n "${SPARSE_TEST_WORKERS:-2}" "$@"
