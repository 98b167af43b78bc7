"""The C++ extension behind the compiled time loop: built just in time, cached, optional.

The extension (``csrc/spiking.cpp``) holds

* the AdLIF recurrence forward, one loop per batch item (items are independent in time, so
  the threads of torch's pool split the batch and never wait for each other inside the loop);
  the recurrent input ``V s_{t-1}`` is the sum of the rows of ``V^T`` selected by the active
  spikes, so a step costs in proportion to the spikes, not to ``N^2``;
* the reverse-time backward of one checkpoint chunk, which evaluates the dense adjoint
  ``du_{t+1} V`` only where the surrogate derivative is non-zero (the boxcar's support);
* ``spike_linear`` and ``spike_outer``: ``x W^T`` and ``G^T x`` for a binary ``x``, from the
  indices of the active spikes (the feed-forward projection of a spike train and the weight
  gradients of both products).

The first call builds it with PyTorch's extension tools (a C++ compiler and ninja) into a
cache folder (``$SPARSE_EXTENSIONS_DIR``, else ``~/.cache/sparse/extensions``), keyed on the
source, the flags, the torch version and the processor; later processes load it in
milliseconds. ``bash scripts/setup_env.sh`` builds it once at set-up. Where it cannot be built
(no compiler, no ninja) one warning line says so and how to get it, and the layers run the
torch loop (:mod:`sparse.kernels.fused`), which gives the same results more slowly.
``SPARSE_COMPILED=0`` turns the extension off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

__all__ = ["build_dir", "build_error", "extension", "extension_dir", "is_available"]

_SOURCE = Path(__file__).with_name("csrc") / "spiking.cpp"
_CFLAGS = ("-O3", "-fopenmp", "-ffp-contract=off", "-std=c++17")
_LDFLAGS = ("-fopenmp",)

_module: ModuleType | None = None
_error: str | None = None
_tried = False


def _native_flags() -> tuple[str, ...]:
    # tuned for this processor; the cache key includes the processor, so a cache shared by
    # different machines never hands one of them code it cannot run
    return ("-march=native",) if platform.machine() in ("x86_64", "AMD64") else ("-mcpu=native",)


def _processor_fingerprint() -> str:
    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features")):
                    text += line
                    if line.startswith(("flags", "Features")):
                        break
    except OSError:
        text += platform.processor()
    return text


def extension_dir() -> Path:
    """Where builds are cached."""
    root = os.environ.get("SPARSE_EXTENSIONS_DIR")
    if root:
        return Path(root)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "sparse" / "extensions"


def _build_name() -> str:
    key = hashlib.sha256()
    key.update(_SOURCE.read_bytes())
    # ninja's build file records the source's path: two checkouts sharing one folder would
    # rebuild each other's library at every load
    key.update(str(_SOURCE.resolve()).encode())
    key.update(" ".join(_CFLAGS + _native_flags() + _LDFLAGS).encode())
    key.update(torch.__version__.encode())
    key.update(sys.version.encode())
    key.update(_processor_fingerprint().encode())
    return f"sparse_spiking_{key.hexdigest()[:16]}"


def _load() -> ModuleType:
    from torch.utils import cpp_extension

    # a pip-installed ninja lives beside the interpreter, which may not be on PATH
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    folder = build_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder / "sparse-build.lock"):
        # The extension tools guard a build with a plain file named 'lock' that a process
        # killed mid-build leaves behind, and every later process then waits for it forever.
        # Builders of this folder hold the lock above first (the kernel drops it when its
        # holder dies), so a 'lock' file found while holding it is such a leftover.
        (folder / "lock").unlink(missing_ok=True)
        # fresh lists: the extension tools append their own flags to the lists they are given
        return cpp_extension.load(
            name=folder.name, sources=[str(_SOURCE)],
            extra_cflags=[*_CFLAGS, *_native_flags()], extra_ldflags=list(_LDFLAGS),
            build_directory=str(folder), verbose=False,
        )


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``path`` (released by the kernel if the process dies); a
    no-op where the platform has no ``fcntl``."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def extension() -> ModuleType | None:
    """The loaded extension, building it on first use; ``None`` where it cannot be had (a
    warning line says why, once per process)."""
    global _module, _error, _tried
    if _tried:
        return _module
    _tried = True
    if os.environ.get("SPARSE_COMPILED", "1") == "0":
        _error = "turned off by SPARSE_COMPILED=0"
        return None
    try:
        _module = _load()
    except Exception as exc:  # noqa: BLE001 - any build failure means: use the torch loop
        lines = str(exc).strip().splitlines()
        errors = [line.strip() for line in lines if "error" in line.lower()]
        _error = (errors or lines or [type(exc).__name__])[0]
        warnings.warn(
            f"sparse: the compiled time loop could not be built ({_error[:200]}); running the "
            "slower torch loop, which gives the same results. To get the fast one, install a "
            "C++ compiler (e.g. 'apt-get install g++') and ninja ('pip install ninja'), then "
            "run 'python -m sparse.kernels.build'.",
            RuntimeWarning, stacklevel=2,
        )
    return _module


def is_available() -> bool:
    """True when the compiled extension is built and loaded."""
    return extension() is not None


def build_error() -> str | None:
    """Why the extension is not available (``None`` when it is, or was not tried yet)."""
    return _error


def build_dir() -> Path:
    """The cache folder of this build."""
    return extension_dir() / _build_name()
