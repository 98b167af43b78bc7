#!/usr/bin/env bash
# Creates (or updates) the project's virtual environment in .venv and installs sparse into it.
# Usage: bash scripts/setup_env.sh [EXTRAS]   e.g. bash scripts/setup_env.sh test
# Extras (pyproject.toml): test (pytest, ruff, tensorpac, nir, neurobench: what the suite
# needs), nir ('sparse export --format nir'), neurobench (docs/efficiency.md), speechbrain,
# bench; several: bash scripts/setup_env.sh test,nir
# The venv location can be changed with SPARSE_VENV, the interpreter with PYTHON.
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
# pip's configured local wheel folders lack most packages and say so once per package
# ("WARNING: Location ... is ignored"); those lines are noise and are filtered out.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt \
    -e "$spec" 2>&1 | { grep -v "^WARNING: Location '" || true; }
# NeuroBench (the reference the efficiency numbers are tested against) without its declared
# dependencies: its torchaudio pin would replace the CPU torch, and tonic, librosa and numba
# serve its data sets, not its metrics; what the metrics import (snnTorch) is in the extras.
case ",$extras," in
    *,test,*|*,neurobench,*)
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c constraints.txt --no-deps "neurobench==2.3.0" 2>&1 \
            | { grep -v "^WARNING: Location '" || true; }
        ;;
esac
# Build the compiled time loop now (about 30 s, cached under ~/.cache/sparse/extensions), so
# that the first training step does not wait for it. Without a C++ compiler this prints why
# and the torch loop runs instead: the set-up still succeeds.
"$venv/bin/python" -m sparse.kernels.build || true
