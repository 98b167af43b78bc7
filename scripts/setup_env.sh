#!/usr/bin/env bash
# Creates (or updates) the project's virtual environment in .venv and installs sparse into it.
# Usage: bash scripts/setup_env.sh [EXTRAS]   e.g. EXTRAS=test
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${1:-}"
venv="${SPARSE_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$spec"
