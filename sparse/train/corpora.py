"""The corpus formats training can read: :data:`CORPUS_FORMATS` maps a config's
``data.corpus_format`` to the reader that opens a folder of that format for one task.

A new corpus is one module with its reader and an opener ``(cfg, root, split) -> reader``, and
one line in :data:`CORPUS_FORMATS` naming the opener as ``"module:function"``; ``sparse train --set
data.corpus=<folder> --set data.corpus_format=<name>`` then trains on it. The opener returns a
reader of one split: ``len(reader)``, and for an audio task ``reader.manifest`` (a
:class:`~sparse.data.manifest.ManifestEntry` per item) and ``reader.read(i)`` (a dict with
``id``, ``speaker``, ``waveform`` and what the task's ``target`` reads), for the spike task
``reader[i]`` (``docs/design.md``, "Where new things plug in").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CORPUS_FORMATS", "CorpusFormat", "format_of", "formats_for", "open_corpus"]


@dataclass(frozen=True)
class CorpusFormat:
    """One corpus format.

    Attributes:
        task: the config ``task`` that trains on it.
        opener: its opener ``(cfg, root, split) -> reader``, or its ``"module:function"``,
            imported only when a corpus of this format is opened (so that listing the
            formats, e.g. to check a config, loads no reader).
        description: what a folder of this format holds, for messages and the config docs.
    """

    task: str
    opener: Callable[[Any, Path, str], Any] | str
    description: str

    def open(self, cfg: Any, root: Path, split: str) -> Any:
        """The reader of ``split`` of the folder ``root``."""
        opener = self.opener
        if isinstance(opener, str):
            module, function = opener.split(":")
            opener = getattr(importlib.import_module(module), function)
        return opener(cfg, root, split)


# The openers of the formats this package ships: each turns the config's options into its
# reader's arguments, and imports the reader only when called.


def _speech_commands(cfg: Any, root: Path, split: str) -> Any:
    from ..data.speech_commands import SpeechCommandsDataset

    return SpeechCommandsDataset(root, split=split, task=cfg.data.kws_task,
                                 sample_rate=cfg.features.sample_rate,
                                 on_error=cfg.data.on_error, seed=cfg.seed)


def _timit(cfg: Any, root: Path, split: str) -> Any:
    from ..data.timit import TimitDataset

    return TimitDataset(root, split=split, phone_set=cfg.data.phone_set,
                        sample_rate=cfg.features.sample_rate, on_error=cfg.data.on_error)


def _shd(cfg: Any, root: Path, split: str) -> Any:
    from ..data.shd import SpikeDataset
    from ..data.spike_encode import CHANNELS

    return SpikeDataset(root, split=split, dt_ms=cfg.features.hop_ms, num_channels=CHANNELS)


#: ``data.corpus_format`` -> its format; each task's first one is its default.
CORPUS_FORMATS: dict[str, CorpusFormat] = {
    "speech_commands": CorpusFormat(
        "kws", _speech_commands,
        "a Speech Commands folder"),
    "timit": CorpusFormat(
        "asr", _timit,
        "a TIMIT-layout folder (with train/ and test/)"),
    "shd": CorpusFormat(
        "spikes", _shd,
        "a folder of SHD/SSC files ({shd,ssc}_<split>.h5)"),
}


def formats_for(task: str) -> list[str]:
    """The format names that ``task`` can train on, its default first."""
    return [name for name, f in CORPUS_FORMATS.items() if f.task == task]


def format_of(cfg: Any) -> CorpusFormat:
    """The format of the config's corpus: ``data.corpus_format``, or the task's default."""
    name = cfg.data.corpus_format
    return CORPUS_FORMATS[name if name is not None else formats_for(cfg.task)[0]]


def open_corpus(cfg: Any, root: Path, split: str) -> Any:
    """The reader of ``split`` of the corpus folder ``root``, in the config's format."""
    return format_of(cfg).open(cfg, root, split)
