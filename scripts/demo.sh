#!/usr/bin/env bash
# The main job: set up .venv, then run `sparse demo`: synthesise the default corpus, train the
# spiking ASR encoder at a 2 ms step (CTC on 39 phones), test it on held-out speakers, and test
# the phase-amplitude coupling between its populations for speech against a noise control,
# all into one run folder (open its index.html). Extra arguments go to `sparse demo`
# (--task kws, --tiny, --out DIR, --set key=value ...; see `sparse demo --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
venv="${SPARSE_VENV:-$root/.venv}"
if ! "$venv/bin/sparse" demo --help >/dev/null 2>&1; then
    echo "sparse demo does not start in $venv: run 'bash scripts/setup_env.sh' again and read" >&2
    echo "its messages ('$venv/bin/sparse demo --help' shows the error)." >&2
    exit 2
fi
# Let glibc back large tensors with huge pages: inputs of thousands of steps allocate blocks
# above 32 MB, which glibc otherwise maps afresh (page faults) at every allocation
# (benchmarks/README.md, section 1, measured the difference).
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1"
exec "$venv/bin/sparse" demo "$@"
