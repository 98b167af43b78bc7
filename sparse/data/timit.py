"""TIMIT (and any corpus in its layout, such as the synthesised one).

Layout: ``<root>/{train,test}/dr<N>/<speaker>/<utt>.{wav,phn,wrd,txt}``, in lower or upper
case (``TRAIN/DR1/FCJF0/SI1027.WAV``); audio in NIST SPHERE or RIFF wav (a converted copy named
``SI1027.WAV.wav`` is found too). The ``sa`` sentences (read by every speaker) are left out.

Splits:

* ``train``: everything under ``train/``;
* ``valid``: the 50 speakers of the standard development set (under ``test/``);
* ``test``: the 24 speakers of the core test set;
* ``test_full``: every ``test/`` speaker outside the development set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .manifest import AudioDataset, ManifestEntry
from .phonemes import TIMIT_61, fold
from .phonemes import phone_set as _phone_set
from .synth import CORE_TEST_SPEAKERS, DEV_SPEAKERS

__all__ = ["TimitDataset", "TimitFormatError", "read_phn", "read_wrd"]

_CORE = frozenset(n for names in CORE_TEST_SPEAKERS.values() for n in names)
_DEV = frozenset(DEV_SPEAKERS)
_SPLITS = ("train", "valid", "test", "test_full")


class TimitFormatError(ValueError):
    """A TIMIT label file is malformed; the message names the file and line."""


def read_phn(path: str | Path) -> list[tuple[int, int, str]]:
    """Parse a ``.phn`` file: ``(start, end, phone)`` per line, samples at 16 kHz.

    Raises:
        TimitFormatError: a line is not ``start end phone``, a phone is not one of the 61,
            or a segment is empty or runs backwards.
    """
    out = []
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            a, b, ph = int(parts[0]), int(parts[1]), parts[2].lower()
            if len(parts) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise TimitFormatError(
                f"{path}:{n}: expected 'start end phone', got {line!r}"
            ) from None
        if ph not in TIMIT_61:
            raise TimitFormatError(f"{path}:{n}: {ph!r} is not a TIMIT phone")
        if b <= a or a < 0 or (out and a < out[-1][0]):
            raise TimitFormatError(f"{path}:{n}: bad segment {a}..{b}")
        out.append((a, b, ph))
    if not out:
        raise TimitFormatError(f"{path}: no phone segments")
    return out


def read_wrd(path: str | Path) -> list[tuple[int, int, str]]:
    """Parse a ``.wrd`` file: ``(start, end, word)`` per line (empty list if missing)."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            out.append((int(parts[0]), int(parts[1]), parts[2].lower()))
        except (ValueError, IndexError):
            raise TimitFormatError(f"{p}:{n}: expected 'start end word', got {line!r}") from None
    return out


def _children(d: Path) -> dict[str, Path]:
    return {c.name.lower(): c for c in sorted(d.iterdir())} if d.is_dir() else {}


class TimitDataset(AudioDataset):
    """TIMIT-layout corpus as a dataset of phone-labelled utterances.

    Args:
        root: the folder holding ``train/`` and ``test/`` (any case).
        split: ``"train"``, ``"valid"``, ``"test"`` (core test) or ``"test_full"``.
        phone_set: 39 (default), 48 or 61 phones in the labels.
        sample_rate: rate of the returned waveforms; label boundaries are scaled to it.
        on_error: ``"raise"`` or ``"skip"`` for unreadable audio files.

    Items (dicts):
        ``id`` (``speaker_utt``), ``speaker``, ``waveform`` (float32 tensor ``(num_samples,)``),
        ``sample_rate``, ``phones`` (folded symbols, ``q`` deleted), ``phone_ids`` (int64
        tensor ``(num_phones,)``, indices into :attr:`phones`), ``phone_segments`` (int64
        tensor ``(num_phones, 2)``, start/end samples at ``sample_rate``), ``words``, ``text``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        phone_set: int = 39,
        sample_rate: int = 16000,
        on_error: str = "raise",
    ) -> None:
        super().__init__(sample_rate, on_error)
        if split == "dev":
            split = "valid"
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        self.root = Path(root)
        self.split = split
        self.phones = _phone_set(phone_set)
        self.phone_set_size = phone_set
        top = _children(self.root)
        folder = "train" if split == "train" else "test"
        if folder not in top:
            raise FileNotFoundError(
                f"{self.root} is not a TIMIT-layout corpus: no '{folder}' folder (any case)"
            )
        candidates = []
        for dr in _children(top[folder]).values():
            for spk_dir in _children(dr).values():
                if not spk_dir.is_dir():
                    continue
                spk = spk_dir.name.lower()
                if split == "valid" and spk not in _DEV:
                    continue
                if split == "test" and spk not in _CORE:
                    continue
                if split == "test_full" and spk in _DEV:
                    continue
                candidates.extend(self._utterances(spk_dir, spk))
        if not candidates:
            raise FileNotFoundError(f"no {split} utterances with .phn labels under {self.root}")
        for cand, frames, sr in self._check_files(candidates, lambda c: c["wav"]):
            self.manifest.append(ManifestEntry(
                id=f"{cand['speaker']}_{cand['utt']}", path=str(cand["wav"]),
                duration=frames / sr, speaker=cand["speaker"], split=split,
                phones=tuple(self._fold([p for _, _, p in read_phn(cand["phn"])])),
                extra={"phn": str(cand["phn"]), "wrd": str(cand["wrd"]), "txt": str(cand["txt"]),
                       "file_rate": sr, "frames": frames},
            ))

    @staticmethod
    def _utterances(spk_dir: Path, spk: str) -> list[dict[str, Any]]:
        files: dict[str, dict[str, Path]] = {}
        for f in sorted(spk_dir.iterdir()):
            if not f.is_file():
                continue
            parts = f.name.lower().split(".")
            utt, ext = parts[0], parts[1] if len(parts) > 1 else ""
            if utt.startswith("sa"):
                continue
            slot = files.setdefault(utt, {})
            if ext == "wav" and (ext not in slot or f.name.lower().endswith(".wav.wav")):
                slot["wav"] = f  # prefer a converted RIFF copy (x.WAV.wav) when both exist
            elif ext in ("phn", "wrd", "txt") and len(parts) == 2:
                slot[ext] = f
        out = []
        for utt, slot in sorted(files.items()):
            if "wav" not in slot or "phn" not in slot:
                continue
            out.append({
                "speaker": spk, "utt": utt, "wav": slot["wav"], "phn": slot["phn"],
                "wrd": slot.get("wrd", spk_dir / f"{utt}.wrd"),
                "txt": slot.get("txt", spk_dir / f"{utt}.txt"),
            })
        return out

    def _fold(self, phones: list[str]) -> list[str]:
        out = []
        for p in phones:
            f = fold(p, self.phone_set_size)
            if f:
                out.append(f)
        return out

    def _item(self, entry: ManifestEntry) -> dict[str, Any]:
        x = self._load(entry)
        file_sr = entry.extra["file_rate"]
        scale = self.sample_rate / file_sr
        labels, bounds = [], []
        for a, b, p in read_phn(entry.extra["phn"]):
            f = fold(p, self.phone_set_size)
            if f:
                labels.append(f)
                bounds.append((min(round(a * scale), len(x)), min(round(b * scale), len(x))))
        txt = Path(entry.extra["txt"])
        text = ""
        if txt.is_file():
            parts = txt.read_text(encoding="utf-8", errors="replace").split(maxsplit=2)
            text = parts[2].strip() if len(parts) == 3 else ""
        return {
            "id": entry.id,
            "speaker": entry.speaker,
            "waveform": torch.from_numpy(x),
            "sample_rate": self.sample_rate,
            "phones": labels,
            "phone_ids": torch.tensor(self.phones.encode(labels), dtype=torch.long),
            "phone_segments": torch.tensor(np.array(bounds, dtype=np.int64).reshape(-1, 2)),
            "words": [w for _, _, w in read_wrd(entry.extra["wrd"])],
            "text": text,
        }
