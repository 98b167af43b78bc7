#!/usr/bin/env bash
# Sets up .venv with the test extras (plus the real SpeechBrain and a pure-Python torchaudio,
# the reference implementations some tests compare against), lints, and runs the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh test
bash scripts/setup_speechbrain.sh
venv="${SPARSE_VENV:-$root/.venv}"
"$venv/bin/ruff" check .
# reference-compatibility tests must run, not skip, where the references were just installed
export SPARSE_REQUIRE_REFERENCES=1
"$venv/bin/python" -m pytest -n "${SPARSE_TEST_WORKERS:-2}" "$@"
