"""Handing memory that Python freed back to the system.

glibc keeps freed blocks inside its heaps for reuse, so a process that built a large
temporary (a split's features before they move into one tensor, a finished training before
the analysis) keeps it in its resident set; the next phase then stacks its own peak on top.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

__all__ = ["release_freed_memory"]


def release_freed_memory() -> None:
    """Collect garbage and return every free page of glibc's heaps (``malloc_trim``); a no-op
    where the C library has no ``malloc_trim``."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
