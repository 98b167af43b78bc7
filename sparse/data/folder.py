"""Any folder of labelled audio clips.

The label of a clip comes from its first sub-folder (``<root>/<label>/.../clip.wav``) or from a
regular expression with a named group ``label`` (and optionally ``speaker``) searched in its
path relative to the root (forward slashes), e.g. ``r"(?P<speaker>[a-z]+)_(?P<label>\\d)_"``.

Splits, by ``split_by``:

* ``"lists"``: ``validation_list.txt`` and ``testing_list.txt`` in the root list relative paths
  (as in Speech Commands); every other clip is training data. A line that names no clip is an
  error (:mod:`sparse.data.lists`);
* ``"speaker"``: a stable hash of the speaker decides, so no speaker is in two splits;
* ``"hash"``: a stable hash of the relative path decides;
* ``"auto"`` (default): lists if both list files exist, else speaker if the pattern has a
  ``speaker`` group, else hash.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .lists import assign_splits
from .manifest import AudioDataset, ManifestEntry

__all__ = ["FolderDataset", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".sph", ".nist", ".aiff", ".aif")
_SPLITS = ("train", "valid", "test")


def _fraction(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def _resolve_split_by(
    split_by: str, regex: re.Pattern[str] | None, lists: tuple[Path, Path], held_out: float
) -> str:
    """The split rule to use (``"auto"`` resolved), after checking that it can work: a
    speaker split needs a ``speaker`` group, a list split both list files, and the held-out
    share ``held_out`` (valid + test fraction) must lie in ``[0, 1)``."""
    has_speaker = regex is not None and "speaker" in regex.groupindex
    if split_by == "auto":
        split_by = (
            "lists" if all(p.is_file() for p in lists)
            else "speaker" if has_speaker else "hash"
        )
    if split_by not in ("lists", "speaker", "hash"):
        raise ValueError(f"split_by must be auto, lists, speaker or hash, got {split_by!r}")
    if split_by == "speaker" and not has_speaker:
        raise ValueError("split_by='speaker' needs a pattern with a 'speaker' group")
    if not 0 <= held_out < 1:
        raise ValueError("valid_fraction + test_fraction must be in [0, 1)")
    if split_by == "lists":
        for p in lists:
            if not p.is_file():
                raise FileNotFoundError(f"split_by='lists' needs {p}")
    return split_by


def _scan(
    root: Path, exts: tuple[str, ...], regex: re.Pattern[str] | None
) -> list[tuple[str, Path, str, str]]:
    """The labelled clips under ``root``, sorted by path: ``(relative path with forward
    slashes, path, label, speaker)``; ``speaker`` is ``""`` without a ``speaker`` group.
    ``exts`` are lower-case suffixes."""
    has_speaker = regex is not None and "speaker" in regex.groupindex
    found = []
    for f in sorted(root.rglob("*")):
        # everything named like audio is a candidate, a folder or a broken link too: they
        # are reported as bad files (raise / skip with a warning), never passed over
        if f.suffix.lower() not in exts:
            continue
        rel = f.relative_to(root).as_posix()
        if rel.startswith("_") or "/_" in rel:  # _background_noise_ and the like
            continue
        if regex is not None:
            m = regex.search(rel)
            if m is None:
                continue
            label = m.group("label")
            speaker = m.group("speaker") if has_speaker else ""
        else:
            if "/" not in rel:
                continue  # a clip in the root has no label folder
            label = rel.split("/", 1)[0]
            speaker = ""
        found.append((rel, f, label, speaker))
    return found


class FolderDataset(AudioDataset):
    """Labelled clips from a folder tree, as a classification dataset.

    Args:
        root: the folder.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``.
        pattern: regular expression with a ``label`` group (and optionally ``speaker``); clips
            whose path does not match are ignored. ``None``: label = first sub-folder.
        split_by: ``"auto"``, ``"lists"``, ``"speaker"`` or ``"hash"``.
        valid_fraction: share of speakers (or clips) in ``valid`` for hash splits.
        test_fraction: share in ``test`` for hash splits.
        classes: the class list (fixes the order of ``label_index``); default: the labels
            found, sorted.
        extensions: audio file suffixes to take.
        sample_rate: rate of the returned waveforms, Hz.
        on_error: ``"raise"`` or ``"skip"`` for unreadable audio files; a folder or a
            broken link named like an audio file is one of them.

    Items (dicts): ``id``, ``speaker``, ``waveform`` (float32 tensor ``(num_samples,)``),
    ``sample_rate``, ``label``, ``label_index``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        pattern: str | None = None,
        split_by: str = "auto",
        valid_fraction: float = 0.1,
        test_fraction: float = 0.1,
        classes: list[str] | None = None,
        extensions: tuple[str, ...] = AUDIO_EXTENSIONS,
        sample_rate: int = 16000,
        on_error: str = "raise",
    ) -> None:
        super().__init__(sample_rate, on_error)
        if split not in (*_SPLITS, "all"):
            raise ValueError(f"split must be one of {(*_SPLITS, 'all')}, got {split!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"folder {self.root} not found")
        regex = re.compile(pattern) if pattern is not None else None
        if regex is not None and "label" not in regex.groupindex:
            raise ValueError(f"pattern {pattern!r} has no named group 'label'")
        lists = (self.root / "validation_list.txt", self.root / "testing_list.txt")
        split_by = _resolve_split_by(split_by, regex, lists, valid_fraction + test_fraction)
        found = _scan(self.root, tuple(e.lower() for e in extensions), regex)
        # every list line must match a clip: one that matches none would leave the clip it
        # meant in the training data
        listed = (assign_splits(self.root, dict(zip(("valid", "test"), lists, strict=True)),
                                [c[0] for c in found])
                  if split_by == "lists" else {})

        def split_of(rel: str, speaker: str) -> str:
            if split_by == "lists":
                return listed.get(rel, "train")
            u = _fraction(speaker if split_by == "speaker" else rel)
            return ("valid" if u < valid_fraction
                    else "test" if u < valid_fraction + test_fraction else "train")

        candidates = [(rel, f, label, speaker, split_of(rel, speaker))
                      for rel, f, label, speaker in found]
        all_labels = sorted({c[2] for c in candidates})
        if not all_labels:
            raise FileNotFoundError(f"no labelled audio clips under {self.root}")
        self.classes = list(classes) if classes is not None else all_labels
        unknown = set(all_labels) - set(self.classes)
        if unknown:
            raise ValueError(f"labels {sorted(unknown)} are not in the given classes")
        self.split, self.split_by = split, split_by
        chosen = [c for c in candidates if split == "all" or c[4] == split]
        for (rel, f, label, speaker, where), frames, sr in self._check_files(
            chosen, lambda c: c[1]
        ):
            self.manifest.append(ManifestEntry(
                id=rel.rsplit(".", 1)[0], path=str(f), duration=frames / sr,
                speaker=speaker, label=label, split=where,
            ))
        self._index = {c: i for i, c in enumerate(self.classes)}

    def _item(self, entry: ManifestEntry) -> dict[str, Any]:
        x = self._load(entry)
        return {
            "id": entry.id,
            "speaker": entry.speaker,
            "waveform": torch.from_numpy(np.ascontiguousarray(x)),
            "sample_rate": self.sample_rate,
            "label": entry.label,
            "label_index": self._index[entry.label],
        }
