"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer of sparse (checkpoints, reports, figures, exports, corpus listings) writes to a
temporary file in the target's folder, flushes it to disk (``fsync``), then renames it over
the target with ``os.replace``, which is atomic within one file system. A failure or an
exception on the way removes the temporary file and leaves the old target untouched; only a
process killed between the write and the rename leaves its temporary file behind.

The temporary file is ``.<name>.<pid>.<8 hex>.tmp`` (hidden, next to the target, named after
the writing process): ``sparse.train.checkpoints.remove_stale_temporaries`` recognises the
files of killed checkpoint writes by exactly this form.

This module imports only the standard library at load time (torch only inside
:func:`save_torch`), so every layer of sparse may use it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["replacing", "save_torch", "temporary_path", "write_bytes", "write_text",
           "write_with"]


def temporary_path(target: Path) -> Path:
    """A fresh name for the temporary file of a write of ``target``:
    ``<folder>/.<name>.<pid>.<8 hex>.tmp``."""
    return target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def _fsync(path: Path) -> None:
    # fsync acts on the file, not the descriptor: a fresh descriptor flushes what any writer
    # (h5py, nir) wrote through its own
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Context for writers that need a file name (h5py, ``nir.write``): yields the temporary
    path to write; on a normal exit the file is flushed to disk and renamed over ``path``, on
    an exception it is removed and ``path`` keeps its old content. The target's folder is
    created if missing."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_with(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Atomically write ``path`` by calling ``write`` on a binary file object; return the path.

    The file is created with ``O_EXCL`` and mode ``0o666`` minus the umask, as ``open()``
    would create it.
    """
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; return the path."""
    return write_with(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` to ``path`` as UTF-8; return the path."""
    return write_bytes(path, text.encode("utf-8"))


def save_torch(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Atomically ``torch.save`` ``obj`` to ``path``; return the path."""
    import torch  # here, so that the writers of text and bytes do not load torch

    return write_with(path, lambda f: torch.save(obj, f))
