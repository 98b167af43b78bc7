"""Split list files: ``validation_list.txt`` and ``testing_list.txt`` name the clips of the
held-out splits, one path per line, relative to the corpus folder (the Speech Commands
convention, also taken by :class:`~sparse.data.folder.FolderDataset`).

A line must name a clip that is there: a line that matches none (a typo, a deleted file, a path
written another way) would leave the clip it meant in the training data, so it is an error that
names the list file and the line. Before matching, a line is normalised: surrounding blanks and
a byte-order mark go, ``\\`` separators become ``/``, ``.`` and ``..`` segments and doubled
separators are resolved, an absolute path inside the corpus folder is made relative, and where
the file system ignores the case of names, so does the match. A clip listed in two files is an
error too: it would be both validation and test data.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

__all__ = ["ListFileError", "assign_splits", "ignores_case", "normalize_line"]


class ListFileError(ValueError):
    """A split list file names no clip of the corpus, or the same clip as another list; the
    message names the list file and the line."""


def ignores_case(path: Path) -> bool:
    """Whether the file system holding the existing file ``path`` ignores the case of names
    (the same file is found under its name with the case of every letter swapped)."""
    other = path.with_name(path.name.swapcase())
    if other.name == path.name:
        return False
    try:
        return other.exists() and os.path.samefile(path, other)
    except OSError:
        return False


def normalize_line(line: str, root: Path) -> str | None:
    """The clip path a list line names, relative to ``root`` with ``/`` separators; ``None``
    for a blank line.

    Raises:
        ValueError: the line names a path outside ``root``.
    """
    text = line.strip().lstrip("\ufeff").strip()
    if not text:
        return None
    text = text.replace("\\", "/")
    if PurePosixPath(text).is_absolute():
        for base in (root.absolute().as_posix(), root.resolve().as_posix()):
            rel = posixpath.relpath(posixpath.normpath(text), base)
            if not rel.startswith(".."):
                return rel
        raise ValueError("is an absolute path outside the corpus folder")
    rel = posixpath.normpath(text)
    if rel == ".." or rel.startswith("../"):
        raise ValueError("points outside the corpus folder")
    return rel


def assign_splits(root: Path, lists: Mapping[str, Path], clips: Iterable[str]) -> dict[str, str]:
    """The split of every listed clip.

    Args:
        root: the corpus folder the paths are relative to.
        lists: split name -> its list file (which must exist).
        clips: every clip of the corpus, as paths relative to ``root`` with ``/`` separators.

    Returns:
        clip path (as in ``clips``) -> split name, for the listed clips only.

    Raises:
        ListFileError: a line matches no clip (the first such line is named, with a count of
            the others), or a clip is listed in two files.
    """
    exact = {c: c for c in clips}
    folded: dict[str, str] | None = None
    where: dict[str, str] = {}
    line_of: dict[str, str] = {}
    for split, path in lists.items():
        unmatched: list[tuple[int, str, str]] = []
        text = path.read_text(encoding="utf-8-sig")
        for number, line in enumerate(text.splitlines(), 1):
            try:
                rel = normalize_line(line, root)
            except ValueError as exc:
                unmatched.append((number, line.strip(), str(exc)))
                continue
            if rel is None:
                continue
            clip = exact.get(rel)
            if clip is None and ignores_case(path):
                if folded is None:
                    folded = {c.casefold(): c for c in exact}
                clip = folded.get(rel.casefold())
            if clip is None:
                unmatched.append((number, line.strip(), "matches no audio clip"))
                continue
            here = f"{path}:{number}"
            if where.get(clip, split) != split:
                raise ListFileError(
                    f"{here}: '{line.strip()}' is also listed in {line_of[clip]}: a clip "
                    f"belongs to one split ('{where[clip]}' or '{split}'); remove one of the "
                    "two lines"
                )
            where[clip] = split
            line_of.setdefault(clip, here)
        if unmatched:
            number, shown, problem = unmatched[0]
            more = (f" (and {len(unmatched) - 1} more line(s) of this file)"
                    if len(unmatched) > 1 else "")
            example = f" (e.g. '{min(exact)}')" if exact else ""
            raise ListFileError(
                f"{path}, line {number}: '{shown}' {problem} under {root}{more}. "
                f"{path.name} must name existing clips by their path relative to the corpus "
                f"folder{example}; a line that names none would leave the clip it meant in the "
                "training data. Fix or remove the line."
            )
    return where
