#!/usr/bin/env bash
# The main job: set up .venv, then synthesise the default corpus, train the KWS encoder on it,
# evaluate on held-out speakers and analyse the model, all into one run folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
venv="${SPARSE_VENV:-$root/.venv}"
if ! "$venv/bin/sparse" demo --help >/dev/null 2>&1; then
    echo "sparse demo is not available yet: the main job (synthesise, train, evaluate, analyse)" >&2
    echo "arrives with the training issue. The spiking core is installed in $venv." >&2
    exit 2
fi
exec "$venv/bin/sparse" demo "$@"
