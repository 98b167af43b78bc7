"""From a config's ``data`` and ``features`` sections to in-memory feature sets (the task,
:mod:`sparse.train.tasks`, says which corpus reader and which targets).

Each split becomes a :class:`FeatureSet`: log-mel features of every utterance (computed once,
then reused from a cache file), their targets and speakers. Training then never touches audio,
so every epoch is cheap and the data order is the only randomness that reaches the data.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig
from .corpora import format_of
from .memory import release_freed_memory
from .tasks import Task, task_of

__all__ = ["DataError", "FeatureSet", "collate_features", "extract_features",
           "length_sorted_batches", "load_split", "resolve_corpus"]


class DataError(RuntimeError):
    """The corpus cannot be found or read; the message names the path and the problem."""


@dataclass
class FeatureSet:
    """Features and targets of one split.

    Attributes:
        ids: utterance ids.
        features: per utterance ``(frames_i, channels)``: log-mel features (float32), or
            spike counts per bin (uint8, task 'spikes').
        targets: what the task's ``target`` gives: classification: class index per utterance
            (int); phones: phone indices ``(L_i,)`` int64 tensors (0-based, without the CTC
            blank).
        speakers: speaker of every utterance.
        classes: the class names, or the phone symbols.
        split: the split's name.
        skipped: ``"path (problem)"`` of every file left out while the features were
            computed (``data.on_error: skip``).
    """

    ids: list[str]
    features: list[torch.Tensor]
    targets: list[Any]
    speakers: list[str]
    classes: list[str]
    split: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> list[int]:
        return [int(f.shape[0]) for f in self.features]

    def subset(self, indices: list[int]) -> FeatureSet:
        return FeatureSet([self.ids[i] for i in indices], [self.features[i] for i in indices],
                          [self.targets[i] for i in indices],
                          [self.speakers[i] for i in indices], self.classes, self.split,
                          self.skipped)


def collate_features(fs: FeatureSet, indices: list[int], task: Task | str
                     ) -> dict[str, torch.Tensor]:
    """Pad the inputs of ``indices`` into a batch.

    Returns ``features`` ``(B, T_max, channels)`` float32, ``lengths`` ``(B,)`` and the
    targets as ``task`` (a :class:`~sparse.train.tasks.Task` or its name) collates them
    (classification: ``labels`` ``(B,)``; CTC: ``targets`` ``(B, L_max)``, phone index + 1,
    and ``target_lengths`` ``(B,)``).
    """
    task = task_of(task) if isinstance(task, str) else task
    feats = [fs.features[i] for i in indices]
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    out = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for k, f in enumerate(feats):
        out[k, : f.shape[0]] = f
    batch = {"features": out, "lengths": lengths}
    batch.update(task.collate_targets([fs.targets[i] for i in indices]))
    return batch


def length_sorted_batches(fs: FeatureSet, task: Task | str, batch_size: int,
                          device: torch.device | str, indices: list[int] | None = None,
                          ) -> Iterator[tuple[list[int], dict[str, torch.Tensor], torch.Tensor,
                                              torch.Tensor]]:
    """The utterances of ``fs`` (or of ``indices``, in their order) in batches of similar
    length, for evaluation: yields ``(indices, batch, features, lengths)`` with ``features``
    ``(B, T_max, channels)`` and ``lengths`` ``(B,)`` on ``device``. Sorting by length keeps
    the padding, and so the wasted time steps, small."""
    order = (sorted(range(len(fs)), key=lambda i: fs.features[i].shape[0])
             if indices is None else indices)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = collate_features(fs, idx, task)
        yield idx, batch, batch["features"].to(device), batch["lengths"].to(device)


def resolve_corpus(cfg: TrainConfig, build: bool = True) -> Path:
    """The folder of the corpus the config names: the synthesised corpus (built if needed
    and ``build``) or the given path, checked to exist."""
    d = cfg.data
    task = task_of(cfg)
    if d.corpus == "synth":
        from ..data.synth import SynthConfig, synthesize_corpus

        sc = SynthConfig.preset(d.synth_preset, d.synth_seed)
        corpus = synthesize_corpus(sc, root=d.synth_dir) if build else None
        if corpus is None:  # pragma: no cover - only used with build=False
            raise DataError("the synthesised corpus is not built")
        return task.synth_root(cfg, corpus)
    root = Path(d.corpus).expanduser()
    if not root.exists():
        raise DataError(
            f"corpus path {root} (data.corpus) does not exist. Give the path of "
            f"{format_of(cfg).description} for task '{task.name}', or 'synth' for the "
            "synthesised default corpus."
        )
    if not root.is_dir():
        raise DataError(f"corpus path {root} (data.corpus) is a file, not a folder")
    return root


def _dataset(cfg: TrainConfig, root: Path, split: str) -> Any:
    return task_of(cfg).dataset(cfg, root, split)


def _cache_dir() -> Path:
    from ..data.synth import default_cache_dir

    return default_cache_dir() / "features"


def load_split(cfg: TrainConfig, root: Path, split: str, limit: int | None,
               verbose: bool = False, condition: str = "clean") -> FeatureSet:
    """Features of one split (from the cache when it holds them), its audio first put
    through the test ``condition`` (:mod:`sparse.data.conditions`; 'clean': as it is).

    The cache is keyed on every file's state (see :func:`_cache_key`), so an edited file is
    read again. A file whose features are not finite is never kept: it is an error naming it,
    or, with ``data.on_error: skip``, left out like an unreadable file. Files left out are
    named in a warning, on a cache hit too.

    Raises:
        DataError: the split is missing or empty, a list file names no clip, or an audio file
            cannot be read or gives non-finite features (its path is in the message).
    """
    from ..data.audio import AudioError

    try:
        ds = _dataset(cfg, root, split)
    except AudioError as exc:
        raise DataError(f"cannot read audio file {exc.path}: {exc.problem} (corpus {root}, "
                        f"split '{split}'; set data.on_error=skip to leave such files out)"
                        ) from None
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"corpus {root}, split '{split}': {exc}") from None
    n = len(ds) if limit is None else min(limit, len(ds))
    if n == 0:
        raise DataError(f"corpus {root}, split '{split}' has no utterances")
    cache = None
    task = task_of(cfg)
    if cfg.data.feature_cache and task.feature_cache:
        cache = _cache_dir() / f"features-{_cache_key(cfg, root, split, ds, n, condition)}.pt"
    if cache is not None and cache.is_file():
        try:
            cached = torch.load(cache, weights_only=True)
            if not bool(torch.isfinite(cached["features"]).all()):
                raise ValueError("non-finite features")  # never from this version: rebuilt
            fs = _unpack(cached, split)
        except Exception:  # a broken cache file is rebuilt, never trusted
            cached = None
        else:
            _warn_skipped(split, fs.skipped)
            return fs
    # the utterances' features move into one tensor (the cache's layout) and the split keeps
    # views of it: one copy of the features in memory, not two
    blob = _pack(task.load_inputs(cfg, ds, n, split, verbose, condition))
    if cache is not None:
        from .checkpoints import save_checkpoint

        try:
            save_checkpoint(blob, cache)
        except OSError:
            pass  # a read-only cache folder only costs time
    fs = _unpack(blob, split)
    release_freed_memory()
    _warn_skipped(split, fs.skipped)
    return fs


#: Seconds after its last change during which a file's modification time cannot vouch for its
#: contents: a file system stores times at a resolution of up to 2 s (FAT; 1 s on some network
#: file systems), so a file rewritten within that tick of an earlier version keeps its time.
_MTIME_RESOLUTION_S = 2.0


def _cache_key(cfg: TrainConfig, root: Path, split: str, ds: Any, n: int,
               condition: str = "clean") -> str:
    """The feature cache's key: everything the cached features, targets and skipped files
    depend on.

    That is the options that shape them (task, classes, front end, ``data.on_error``), the
    resulting list of utterances with their labels, and the state of every file read: its size
    and modification time (``data.cache_check: stat``) or its size and the SHA-1 of its bytes
    (``hash``), so that a file edited in place, even to the same duration, is read again.
    """
    manifest = ds.manifest[:n]
    paths = sorted({e.path for e in manifest})
    classes = task_of(cfg).classes(ds)
    fc = cfg.features
    key_src = {
        "version": 2, "root": str(root.resolve()), "split": split, "task": cfg.task,
        "kws_task": cfg.data.kws_task, "phone_set": cfg.data.phone_set, "seed": cfg.seed,
        "on_error": cfg.data.on_error, "classes": classes,
        "features": {k: getattr(fc, k) for k in ("n_mels", "hop_ms", "win_ms", "sample_rate")},
        "items": [(e.id, e.path, round(e.duration, 6), e.label, list(e.phones or ()), e.extra)
                  for e in manifest],
    }
    if condition != "clean":  # (absent for clean audio: the keys of existing caches hold)
        from ..data.conditions import VERSION

        key_src["condition"] = [condition, VERSION]
    try:
        key_src["files"] = _file_states(paths, cfg.data.cache_check)
    except OSError as exc:  # a file removed or made unreadable since the split was listed
        raise DataError(f"cannot read audio file {exc.filename}: {exc.strerror} (corpus "
                        f"{root}, split '{split}')") from None
    return hashlib.sha1(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]


def _file_states(paths: list[str], check: str) -> list[list[Any]]:
    """``[size, mtime_ns]`` (``check="stat"``) or ``[size, sha1]`` (``"hash"``) per file.

    A modification time tells contents apart only once the clock has left its tick: for files
    changed within :data:`_MTIME_RESOLUTION_S`, this waits until that time has passed (so that
    any later edit gets a later time), and hashes the contents of files stamped in the future
    (a clock ahead of this one)."""
    stats = [os.stat(p) for p in paths]
    if check == "hash":
        return [[st.st_size, _sha1(p)] for p, st in zip(paths, stats, strict=True)]
    newest = max((st.st_mtime_ns for st in stats), default=0) / 1e9
    wait = newest + _MTIME_RESOLUTION_S - time.time()
    if 0 < wait <= _MTIME_RESOLUTION_S:
        time.sleep(wait)
    recent = time.time() - _MTIME_RESOLUTION_S
    return [[st.st_size, st.st_mtime_ns] + ([_sha1(p)] if st.st_mtime_ns / 1e9 > recent else [])
            for p, st in zip(paths, stats, strict=True)]


def _sha1(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _warn_skipped(split: str, skipped: list[str]) -> None:
    """The warning that names the files left out of a split while its features were computed
    (repeated when the features come from the cache, so that every run reports them)."""
    if skipped:
        import warnings

        shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more"
                                          if len(skipped) > 5 else "")
        warnings.warn(f"split '{split}': skipped {len(skipped)} unreadable audio file(s): "
                      f"{shown}", stacklevel=3)


def _concat_releasing(parts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(parts)``, dropping each part from ``parts`` once copied, so that the peak
    holds one copy of the data and not two."""
    total = sum(p.shape[0] for p in parts)
    out = parts[0].new_empty((total, *parts[0].shape[1:]))
    row = 0
    for i, part in enumerate(parts):
        out[row:row + part.shape[0]] = part
        row += part.shape[0]
        parts[i] = None  # type: ignore[call-overload]
    return out


def _pack(fs: FeatureSet) -> dict[str, Any]:
    """The cache's layout of ``fs``; consumes ``fs.features``."""
    lengths = torch.tensor(fs.lengths, dtype=torch.long)
    blob: dict[str, Any] = {"ids": fs.ids, "speakers": fs.speakers, "classes": fs.classes,
                            "features": _concat_releasing(fs.features), "lengths": lengths,
                            "skipped": fs.skipped}
    if fs.targets and isinstance(fs.targets[0], torch.Tensor):
        blob["target_lengths"] = torch.tensor([len(t) for t in fs.targets], dtype=torch.long)
        blob["targets"] = torch.cat(fs.targets) if fs.targets else torch.zeros(0)
    else:
        blob["labels"] = torch.tensor(fs.targets, dtype=torch.long)
    return blob


def _unpack(blob: dict[str, Any], split: str) -> FeatureSet:
    feats = list(torch.split(blob["features"], blob["lengths"].tolist()))
    if "labels" in blob:
        targets: list[Any] = blob["labels"].tolist()
    else:
        targets = list(torch.split(blob["targets"], blob["target_lengths"].tolist()))
    return FeatureSet(list(blob["ids"]), feats, targets, list(blob["speakers"]),
                      list(blob["classes"]), split, list(blob["skipped"]))


#: Utterances per filterbank call. At a 2 ms hop the framed signal, its spectrum and its power
#: take about 2.5 MB per second of audio: 64 sentences of up to 7 s at once (about 1 GB) made
#: that transient the peak of the main job; 16 keep it near 300 MB at the same speed.
_EXTRACT_BATCH = 16


@torch.no_grad()
def extract_features(cfg: TrainConfig, ds: Any, n: int, split: str, verbose: bool,
                     task: Task, condition: str = "clean") -> FeatureSet:
    """Log-mel features and targets (``task.target``) of the first ``n`` items of the audio
    corpus reader ``ds``, its audio first put through the test ``condition``."""
    from ..data.audio import AudioError
    from ..data.conditions import apply_condition
    from ..features import LogMelFilterbank

    fc = cfg.features
    fbank = LogMelFilterbank(n_mels=fc.n_mels, hop_ms=fc.hop_ms, win_ms=fc.win_ms,
                             sample_rate=fc.sample_rate)
    ids, feats, targets, speakers = [], [], [], []
    classes = task.classes(ds)
    chunk: list[tuple[int, dict[str, Any]]] = []
    skipped: list[str] = []

    def bad_file(path: str, problem: str) -> None:
        if cfg.data.on_error == "skip":
            skipped.append(f"{path} ({problem})")
            return
        raise DataError(f"cannot read audio file {path}: {problem} (split '{split}'; set "
                        "data.on_error=skip to leave such files out)")

    def flush() -> None:
        waves = [torch.as_tensor(apply_condition(condition, item["waveform"].numpy(),
                                                 fc.sample_rate, item["id"]))
                 for _, item in chunk]
        wav = torch.zeros(len(chunk), max(len(w) for w in waves))
        lens = torch.tensor([len(w) for w in waves])
        for k, w in enumerate(waves):
            wav[k, : len(w)] = w
        f, fl = fbank(wav, lens)
        for k, (i, item) in enumerate(chunk):
            feat = f[k, : int(fl[k])].clone().float()
            if not bool(torch.isfinite(feat).all()):
                # finite samples far outside [-1, 1] overflow the power spectrum: such
                # features would poison every batch they are in, so they are never kept
                peak = float(waves[k].abs().max())
                bad_file(ds.manifest[i].path, f"its log-mel features are not finite (its "
                         f"samples reach {peak:.3g}; audio is expected in [-1, 1])")
                continue
            ids.append(item["id"])
            speakers.append(item.get("speaker", ""))
            targets.append(task.target(item))
            feats.append(feat)
        chunk.clear()

    for i in range(n):
        try:
            item = ds.read(i)
        except AudioError as exc:
            bad_file(exc.path, exc.problem)
            continue
        chunk.append((i, item))
        if len(chunk) == _EXTRACT_BATCH:
            flush()
        if verbose and (i + 1) % 2000 == 0:
            print(f"  features: {split} {i + 1}/{n}", flush=True)
    if chunk:
        flush()
    if not ids:
        raise DataError(f"split '{split}': no readable utterances"
                        + (f" (skipped: {'; '.join(skipped[:5])})" if skipped else ""))
    return FeatureSet(ids, feats, targets, speakers, classes, split, skipped)
