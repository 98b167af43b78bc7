"""Speech corpora for ``sparse``: the synthesised default corpus and loaders of real ones.

* :func:`synthesize_corpus` / ``sparse synth``: keyword clips (Speech Commands layout) and
  phone-labelled sentences (TIMIT layout) spoken by espeak-ng (:mod:`sparse.data.synth`);
* :class:`TimitDataset`, :class:`SpeechCommandsDataset`, :class:`SpikeDataset` (SHD/SSC),
  :class:`FolderDataset`: map-style datasets with a :class:`ManifestEntry` manifest;
* :func:`collate` and :class:`LengthBucketSampler` for batching;
* :mod:`sparse.data.phonemes`: TIMIT 61/48/39 phone sets and the espeak mapping.

Names are imported lazily, so that ``import sparse.data.synth`` (used by worker processes)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "AudioError": "audio",
    "load_audio": "audio",
    "resample": "audio",
    "ManifestEntry": "manifest",
    "read_manifest": "manifest",
    "write_manifest": "manifest",
    "SynthConfig": "synth",
    "SynthCorpus": "synth",
    "synthesize_corpus": "synth",
    "TimitDataset": "timit",
    "SpeechCommandsDataset": "speech_commands",
    "SpikeDataset": "shd",
    "FolderDataset": "folder",
    "collate": "batching",
    "LengthBucketSampler": "batching",
    "PhoneSet": "phonemes",
    "phone_set": "phonemes",
    "fold": "phonemes",
    "PHONES_39": "phonemes",
    "TIMIT_61": "phonemes",
    "KEYWORDS": "words",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sparse.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
