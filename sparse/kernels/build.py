"""``python -m sparse.kernels.build``: build (or find in the cache) the compiled time loop and
say whether it is ready; exit status 1 where it cannot be built. ``scripts/setup_env.sh`` runs
it, so that a fresh set-up never leaves the build to the first training step."""

from __future__ import annotations

import sys
import time
import warnings

from .extension import build_dir, build_error, extension


def main() -> int:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the reason is printed below
        ready = extension() is not None
    if not ready:
        print(f"sparse: the compiled time loop is NOT available ({build_error()}); the slower "
              "torch loop will run. Install a C++ compiler (e.g. 'apt-get install g++') and "
              "run this again.", file=sys.stderr)
        return 1
    print(f"sparse: compiled time loop ready in {time.perf_counter() - start:.1f} s "
          f"({build_dir()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
