"""An output folder that receives a complete set of results or none.

:func:`staged_output` hands out a hidden staging folder inside the output folder,
``.sparse-partial-<pid>-<8 hex>``; everything is written there, and only when the block ends
normally are its files moved into the output folder, each by ``os.replace`` (the page that
shows them, ``index.html``, last). When the block raises, the staging folder is deleted: the
output folder then holds exactly what it held before (the results of an earlier run included),
and a folder that did not exist before is removed again. A staging folder left by a process
that was killed (SIGKILL) is deleted by the next run into the same folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..train.lock import process_running

__all__ = ["published_path", "staged_output"]

_STAGE = re.compile(r"\.sparse-partial-(?P<pid>\d+)-[0-9a-f]{8}")

#: published after everything else, so that it never shows a file that is not there yet
_LAST = "index.html"


def _remove_stale_stages(folder: Path) -> None:
    """Delete the staging folders of ``folder`` whose process no longer runs."""
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            match = _STAGE.fullmatch(entry.name)
            if match is None or not entry.is_dir() or entry.is_symlink():
                continue
            pid = int(match.group("pid"))
            if pid != os.getpid() and not process_running(pid):
                shutil.rmtree(entry, ignore_errors=True)


def _publish(stage: Path, final: Path) -> None:
    """Move every file of ``stage`` to the same place under ``final`` (replacing what is
    there), folders first created, :data:`_LAST` last; then remove ``stage``."""
    files = sorted((p for p in stage.rglob("*") if not p.is_dir()),
                   key=lambda p: (p.relative_to(stage).as_posix() == _LAST,
                                  p.relative_to(stage).as_posix()))
    for path in files:
        target = final / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(stage)


@contextlib.contextmanager
def staged_output(final: str | Path) -> Iterator[Path]:
    """Write into a staging folder and publish it into ``final`` when the block succeeds.

    Yields:
        The staging folder (empty). Paths under it become paths under ``final`` once the
        block ends (:func:`published_path`).
    """
    final = Path(final)
    created = not final.exists()
    final.mkdir(parents=True, exist_ok=True)
    _remove_stale_stages(final)
    stage = final / f".sparse-partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                final.rmdir()  # only when empty: nothing else was written there meanwhile
        raise
    _publish(stage, final)


def published_path(path: Path, stage: Path, final: Path) -> Path:
    """Where ``path`` (under ``stage``) is once the stage is published into ``final``."""
    return Path(final) / Path(path).relative_to(stage)
