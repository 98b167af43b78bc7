"""sparse.train.memory: freed memory really leaves the process (measured in its own resident
set, in fresh processes, so that nothing else this test session allocated is counted)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sparse.train.memory import return_large_blocks

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/self/statm and calls glibc")

_SCRIPT = textwrap.dedent("""
    import ctypes, sys
    from sparse.train.memory import return_large_blocks
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    if sys.argv[1] == "on":
        assert return_large_blocks(1 << 20)
    size = 24 << 20
    for _ in range(3):
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.malloc(64)  # a small block after it keeps the heap's top from shrinking
        libc.free(block)
    print(int(open("/proc/self/statm").read().split()[1]) * 4096)
""")


def _resident_after_freeing(mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


def test_freed_large_blocks_leave_the_resident_set():
    """glibc's adaptive threshold keeps a freed 24 MB block resident for reuse; with a fixed
    threshold the block is unmapped when it is freed."""
    kept = _resident_after_freeing("off")
    returned = _resident_after_freeing("on")
    assert kept - returned >= 16 << 20, (kept >> 20, returned >> 20)


def test_a_threshold_must_be_positive():
    with pytest.raises(ValueError, match="threshold_bytes must be positive"):
        return_large_blocks(0)
