"""The manifest shared by every corpus loader, and the base dataset class.

A manifest is a list of :class:`ManifestEntry`, one per utterance or clip; it can be written
to and read from a TSV file (:func:`write_manifest`, :func:`read_manifest`).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import AudioError, audio_info, check_policy, load_audio

__all__ = [
    "AudioDataset",
    "ManifestEntry",
    "describe_skipped",
    "read_manifest",
    "write_manifest",
]


@dataclass
class ManifestEntry:
    """One item of a corpus.

    Attributes:
        id: unique name within the corpus (``fcjf0_si1027``, ``yes/0a7c2a8d_nohash_0``).
        path: the audio file (or the HDF5 file for spike corpora).
        duration: seconds.
        speaker: speaker name, ``""`` if unknown.
        label: class name for classification corpora, else ``None``.
        phones: folded phone sequence for phone-labelled corpora, else ``None``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        extra: loader-specific fields (label files, offsets ...).
    """

    id: str
    path: str
    duration: float
    speaker: str = ""
    label: str | None = None
    phones: tuple[str, ...] | None = None
    split: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_COLUMNS = ("id", "path", "duration", "speaker", "label", "phones", "split")


def write_manifest(entries: Iterable[ManifestEntry], path: str | Path) -> None:
    """Write a manifest as TSV with the columns id, path, duration, speaker, label, phones
    (space-separated), split."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(_COLUMNS)
        for e in entries:
            w.writerow([
                e.id, e.path, f"{e.duration:.6f}", e.speaker, e.label or "",
                " ".join(e.phones) if e.phones is not None else "", e.split,
            ])


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a manifest written by :func:`write_manifest`."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f, delimiter="\t")
        missing = set(_COLUMNS) - set(r.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a manifest, missing columns {sorted(missing)}")
        for row in r:
            out.append(ManifestEntry(
                id=row["id"], path=row["path"], duration=float(row["duration"]),
                speaker=row["speaker"], label=row["label"] or None,
                phones=tuple(row["phones"].split()) if row["phones"] else None,
                split=row["split"],
            ))
    return out


def describe_skipped(skipped: Sequence[tuple[str, str]], shown: int = 5) -> str:
    """``path (problem)`` of the first ``shown`` skipped files, and how many more there are."""
    text = "; ".join(f"{path} ({problem})" for path, problem in skipped[:shown])
    if len(skipped) > shown:
        text += f"; and {len(skipped) - shown} more"
    return text


class AudioDataset:
    """Base of the audio corpus loaders (a map-style :class:`torch.utils.data.Dataset`).

    Subclasses fill :attr:`manifest` and implement :meth:`_item`. Files that cannot be read
    at construction are skipped with one warning that counts and names them
    (``on_error="skip"``) or raise :class:`~sparse.data.audio.AudioError` naming the first one
    (``on_error="raise"``). Construction reads only the headers: a file whose samples turn out
    unreadable or non-finite when its item is read raises then, or, under ``"skip"``, gives
    ``None`` instead of the item (with a warning naming the file, once; :func:`collate` drops
    such items).

    Attributes:
        manifest: the entries, in a fixed order.
        sample_rate: rate of the returned waveforms, Hz.
        skipped: ``(path, problem)`` of every file skipped.
    """

    manifest: list[ManifestEntry]

    def __init__(self, sample_rate: int = 16000, on_error: str = "raise") -> None:
        self.sample_rate = int(sample_rate)
        self.on_error = check_policy(on_error)
        self.skipped: list[tuple[str, str]] = []
        self.manifest = []

    def _check_files(
        self, candidates: Sequence[Any], path_of: Callable[[Any], Path]
    ) -> list[tuple[Any, int, int]]:
        """Read the header of every candidate's file: ``(candidate, frames, rate)`` of the good
        ones; bad ones raise or are skipped according to ``on_error``."""
        good = []
        for c in candidates:
            try:
                frames, sr = audio_info(path_of(c))
                if frames == 0:
                    raise AudioError(path_of(c), "no audio samples (0 frames)")
            except AudioError as exc:
                if self.on_error == "raise":
                    raise
                self.skipped.append((exc.path, exc.problem))
                continue
            good.append((c, frames, sr))
        if self.skipped:
            warnings.warn(
                f"{type(self).__name__}: skipped {len(self.skipped)} unreadable audio file(s): "
                f"{describe_skipped(self.skipped)}",
                stacklevel=3,
            )
        return good

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        """The item at ``index``; ``None`` under ``on_error="skip"`` when its file cannot be
        read (the file is added to :attr:`skipped` and named in a warning, once)."""
        try:
            return self.read(index)
        except AudioError as exc:
            if self.on_error == "raise":
                raise
            problem = (exc.path, exc.problem)
            if problem not in self.skipped:
                self.skipped.append(problem)
                warnings.warn(f"{type(self).__name__}: skipped unreadable audio file "
                              f"{exc.path} ({exc.problem})", stacklevel=2)
            return None

    def read(self, index: int) -> dict[str, Any]:
        """The item at ``index``, whatever ``on_error`` says.

        Raises:
            AudioError: its file cannot be read, or holds non-finite samples.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return self._item(self.manifest[index])

    def _item(self, entry: ManifestEntry) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self, entry: ManifestEntry) -> np.ndarray:
        x, _ = load_audio(entry.path, self.sample_rate)
        return x

    @property
    def lengths(self) -> list[int]:
        """Length of every item in output samples (from the manifest; for batching)."""
        return [int(round(e.duration * self.sample_rate)) for e in self.manifest]

    @property
    def speakers(self) -> list[str]:
        """Distinct speakers, sorted (items of unknown speaker, ``""``, left out)."""
        return sorted({e.speaker for e in self.manifest if e.speaker})
