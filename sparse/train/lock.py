"""One writer per output folder.

Every command that writes a folder (``sparse train``, ``demo``, ``evaluate``, ``analyze``)
holds :func:`folder_lock` on it while it writes: a lock file ``.sparse-lock`` in the folder,
created atomically (``O_CREAT | O_EXCL``), holding the writer's pid, host, start time and
command line. A second writer is refused with a :class:`LockError` naming the holder. A lock
whose pid no longer runs on this host (a writer killed with SIGKILL, a machine reboot) is stale
and taken over. The lock is released when the block ends, whatever ends it, SIGTERM included;
a folder the lock created and nothing else was written to is removed again.

A folder that is replaced as a whole (``sparse synth --force`` builds a corpus in a temporary
sibling and renames it into place) cannot hold its own lock, which would be swapped away with
it: :func:`replacement_lock` keeps the same lock file beside it, ``.<name>.sparse-lock``, and
:func:`check_not_replaced` lets a reader refuse a folder that is being replaced.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LOCK_NAME", "LockError", "check_not_replaced", "folder_lock", "process_running",
           "read_lock", "replacement_lock", "sibling_lock_file"]

LOCK_NAME = ".sparse-lock"

#: lock files this process holds (resolved path -> nesting depth), so nested writers in one
#: process (``sparse demo`` trains, then analyses into the same run folder) do not refuse
#: each other
_HELD: dict[Path, int] = {}


class LockError(RuntimeError):
    """Another process is writing the folder; the message names it."""


def sibling_lock_file(folder: str | Path) -> Path:
    """The lock file of a folder that is replaced as a whole: ``.<name>.sparse-lock`` beside
    it."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}{LOCK_NAME}"


def read_lock(folder: Path) -> dict[str, Any] | None:
    """The holder recorded in ``folder``'s lock file (``None``: no lock file); an unreadable
    or half-written lock file reads as an empty dict."""
    return _read(Path(folder) / LOCK_NAME)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (under any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _is_stale(holder: dict[str, Any]) -> bool:
    """A lock is stale when its pid is gone on this host; a lock from another host is not
    (its process cannot be checked from here)."""
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    return pid != os.getpid() and not process_running(pid)


def _holder(holder: dict[str, Any]) -> str:
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) \
        if isinstance(since, (int, float)) else "an unknown time"
    command = holder.get("command") or "an unknown command"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, since {when}: "
            f"{command}")


def _describe(folder: Path, holder: dict[str, Any], path: Path) -> str:
    return (
        f"folder {folder} is being written by another process ({_holder(holder)}); two "
        f"writers would mix their results. Wait for it to finish, or choose another output "
        f"folder. If that process is gone for good, delete {path}. Nothing was changed."
    )


def _create(path: Path, holder: dict[str, Any]) -> bool:
    """Create the lock file with ``holder`` in it; ``False`` if it already exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(holder) + "\n")
    return True


def _take_over(path: Path, stale: dict[str, Any]) -> None:
    """Remove a stale lock file, unless another process replaced it meanwhile."""
    if _read(path) == stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _acquire(folder: Path, path: Path) -> None:
    """Create the lock file ``path`` of ``folder`` (taking over a stale one)."""
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
              "command": " ".join(["sparse", *sys.argv[1:]])}
    for _ in range(3):
        if _create(path, holder):
            return
        current = _read(path)
        if current is None:  # released meanwhile
            continue
        if not current:  # being written right now: give the writer a moment
            time.sleep(0.2)
            current = _read(path) or {}
        if current and _is_stale(current):
            _take_over(path, current)
            continue
        raise LockError(_describe(folder, current, path))
    raise LockError(_describe(folder, _read(path) or {}, path))


def _release(path: Path) -> None:
    holder = _read(path)
    if holder and holder.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _on_sigterm(signum: int, frame: Any) -> None:  # noqa: ARG001
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """While the block runs, SIGTERM (when it would kill the process outright) raises
    ``SystemExit`` instead, so that ``finally`` blocks, the lock's included, run."""
    try:
        old = signal.getsignal(signal.SIGTERM)
        if old != signal.SIG_DFL:
            old = None
        else:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the write lock of ``folder`` (created if missing) for the block.

    Raises:
        LockError: another live process holds it (the message names its pid, host, start
            time and command).
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LockError(f"cannot create output folder {folder}: "
                        f"{exc.strerror or errno.errorcode.get(exc.errno or 0, exc)}") from None
    try:
        with _held(folder, folder / LOCK_NAME):
            yield folder
    finally:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: nothing was written


@contextlib.contextmanager
def _held(folder: Path, path: Path) -> Iterator[None]:
    """Hold the lock file ``path`` of ``folder`` for the block (SIGTERM ends it too); a lock
    this process already holds is held once more."""
    key = path.resolve()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    with _sigterm_exits():
        _acquire(folder, path)
        _HELD[key] = 1
        try:
            yield
        except OSError as exc:
            # a write that failed without naming its file (a full disk while saving) is
            # reported with the folder being written
            if exc.filename is None and getattr(exc, "sparse_folder", None) is None:
                exc.sparse_folder = folder  # type: ignore[attr-defined]
            raise
        finally:
            _HELD.pop(key, None)
            _release(path)


@contextlib.contextmanager
def replacement_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the write lock of ``folder``, a folder replaced as a whole, for the block: the
    lock file is :func:`sibling_lock_file`, created in ``folder``'s parent (made if missing);
    ``folder`` itself is neither created nor removed.

    Raises:
        LockError: another live process holds it (the message names its pid, host, start
            time and command).
    """
    folder = Path(folder)
    path = sibling_lock_file(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LockError(f"cannot create folder {path.parent}: "
                        f"{exc.strerror or errno.errorcode.get(exc.errno or 0, exc)}") from None
    with _held(folder, path):
        yield folder


def check_not_replaced(folder: str | Path) -> None:
    """Raise :class:`LockError` when another live process holds ``folder``'s
    :func:`replacement_lock`: its contents are about to be replaced, so they cannot be used
    now. A stale lock file (its process gone) and this process's own lock pass."""
    folder = Path(folder)
    path = sibling_lock_file(folder)
    holder = _read(path)
    if holder is None or _HELD.get(path.resolve()):
        return
    if not holder:  # being written right now: give the writer a moment
        time.sleep(0.2)
        holder = _read(path)
        if holder is None:
            return
    if holder and (holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
                   or _is_stale(holder)):
        return
    raise LockError(
        f"folder {folder} is being rebuilt by another process ({_holder(holder)}); what it "
        f"holds now is about to be replaced, so it is not used. Wait for that process to "
        f"finish and run again. If that process is gone for good, delete {path}. Nothing was "
        "changed."
    )
