#!/usr/bin/env bash
# Adds the real SpeechBrain (PyPI `speechbrain`) and a pure-Python torchaudio to the project's venv,
# keeping the CPU torch pinned by constraints.txt (torch==2.13.0).
#
# Why the detour: torchaudio's PyPI wheels pin an exact, different torch release and ship native
# libraries built against CUDA; beside the CPU torch they fail to load ("libc10_cuda.so: cannot
# open shared object file"). SpeechBrain needs torchaudio importable, and the parts used here
# (torchaudio.compliance.kaldi, the functional ops SpeechBrain touches) are plain torch code. So:
#   1. torchaudio is installed with --no-deps (it would otherwise drag in its own torch), and its
#      compiled libraries (*.so under site-packages/torchaudio) are deleted; torchaudio then finds no
#      extension and runs as pure Python;
#   2. speechbrain is installed with --no-deps, and its own requirements, other than torch and
#      torchaudio, are installed normally under constraints.txt (installing speechbrain with deps
#      would make pip re-resolve torchaudio's exact torch pin and fail).
# `pip check` will report torchaudio's torch pin as unmet; that is expected.
#
# Idempotent: rerunning it reinstalls nothing that is already at the pinned version, and always
# re-deletes the native libraries. Venv: $SPARSE_VENV, default <repo root>/.venv (as setup_env.sh);
# create it first with `bash scripts/setup_env.sh test`.
# Usage: bash scripts/setup_speechbrain.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${SPARSE_VENV:-$root/.venv}"
py="$venv/bin/python"
speechbrain_version="${SPARSE_SPEECHBRAIN_VERSION:-1.1.2}"
torchaudio_version="${SPARSE_TORCHAUDIO_VERSION:-2.11.1}"

if [ ! -x "$py" ]; then
    echo "setup_speechbrain.sh: no Python at $py; run 'bash scripts/setup_env.sh test' first" >&2
    exit 1
fi

pip_install() {
    # pip's find-links/extra-index settings point at local folders that lack most packages, which
    # it reports as 'Location ... is ignored' warnings: harmless, so they are filtered out.
    "$py" -m pip install --quiet --disable-pip-version-check -c constraints.txt "$@" 2>&1 \
        | { grep -v "^WARNING: Location '" || true; }
    return "${PIPESTATUS[0]}"
}

installed_version() {
    "$py" - "$1" <<'EOF'
import sys
from importlib import metadata
try:
    print(metadata.version(sys.argv[1]))
except metadata.PackageNotFoundError:
    print("")
EOF
}

# 1. torchaudio, no deps, native libraries removed.
current="$(installed_version torchaudio)"
if [ "${current%%+*}" != "$torchaudio_version" ]; then
    pip_install --no-deps "torchaudio==$torchaudio_version"
fi
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
find "$site/torchaudio" \( -name '*.so' -o -name '*.so.*' \) -type f -delete
find "$site" -maxdepth 1 -name 'torchaudio.libs' -type d -exec rm -rf {} +

# 2. speechbrain, no deps; then its requirements except torch and torchaudio.
current="$(installed_version speechbrain)"
if [ "$current" != "$speechbrain_version" ]; then
    pip_install --no-deps "speechbrain==$speechbrain_version"
fi
mapfile -t reqs < <("$py" - <<'EOF'
from importlib import metadata
from packaging.requirements import Requirement
for line in metadata.requires("speechbrain") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an extra (dev tools), not a runtime requirement
    if req.name.lower() in {"torch", "torchaudio"}:
        continue
    print(str(req))
EOF
)
if [ "${#reqs[@]}" -gt 0 ]; then
    pip_install "${reqs[@]}"
fi

# 3. A torchvision wheel (Norse pulls one in) is a CUDA build whose operators cannot register
#    beside the CPU torch; SpeechBrain's train logger imports it and then fails with "operator
#    torchvision::nms does not exist". Nothing here needs torchvision, so a broken one goes.
if [ -n "$(installed_version torchvision)" ] && ! "$py" -c 'import torchvision' 2>/dev/null; then
    echo "setup_speechbrain.sh: removing torchvision, which cannot load beside the CPU torch" >&2
    "$py" -m pip uninstall --quiet --yes torchvision
fi

# 4. Verify on the CPU and print the versions.
"$py" - <<'EOF'
import torch
import torchaudio
from torchaudio.compliance.kaldi import fbank as kaldi_fbank

import speechbrain
import speechbrain.utils.train_logger  # imports torchvision when one is installed
from speechbrain.lobes.features import Fbank

wav = torch.randn(2, 16000)
assert Fbank(n_mels=80)(wav).shape == (2, 101, 80)
assert kaldi_fbank(wav[:1], num_mel_bins=80).shape == (98, 80)
assert torch.__version__.startswith("2.13.0"), f"torch changed to {torch.__version__}"
print(
    f"speechbrain {speechbrain.__version__}, torchaudio {torchaudio.__version__} (pure Python), "
    f"torch {torch.__version__}: Fbank and torchaudio.compliance.kaldi.fbank OK on CPU"
)
EOF
