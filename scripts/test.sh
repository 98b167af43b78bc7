#!/usr/bin/env bash
# Sets up .venv with the test extras (plus the real SpeechBrain and a pure-Python torchaudio,
# the reference implementations some tests compare against, and Debian's chromium, the browser
# that opens the run pages), lints, and runs the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh test
bash scripts/setup_speechbrain.sh
venv="${SPARSE_VENV:-$root/.venv}"
# a real browser for the tests that open the run pages (Debian's chromium)
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        echo "chromium is missing and cannot be installed here (not root or no apt-get): the" >&2
        echo "page-rendering tests will fail; install it (apt-get install chromium)." >&2
    fi
fi
"$venv/bin/ruff" check .
# reference-compatibility tests must run, not skip, where the references were just installed
export SPARSE_REQUIRE_REFERENCES=1
"$venv/bin/python" -m pytest -n "${SPARSE_TEST_WORKERS:-2}" "$@"
