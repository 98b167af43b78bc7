"""Batching: padding collate function and a length-bucketed batch sampler.

Use them together::

    loader = DataLoader(ds, batch_sampler=LengthBucketSampler(ds.lengths, batch_size=8),
                        collate_fn=collate)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["collate", "LengthBucketSampler"]


def _pad_stack(tensors: Sequence[torch.Tensor], value: float) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    longest = int(lengths.max()) if len(tensors) else 0
    out = tensors[0].new_full((len(tensors), longest, *tensors[0].shape[1:]), value)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out, lengths


def collate(batch: Sequence[dict[str, Any] | None], target_pad: int = 0) -> dict[str, Any]:
    """Pad a list of dataset items into one batch.

    ``None`` items (what a dataset built with ``on_error="skip"`` gives for a file it could
    not read) are left out; a batch of nothing else is an error. Produces, from the keys the
    items have:

    * ``waveform`` (each ``(T_i,)``) -> ``waveforms`` float32 ``(B, T_max)`` zero-padded, and
      ``lengths`` int64 ``(B,)``;
    * ``spikes`` (each ``(T_i, C)``) -> ``spikes`` ``(B, T_max, C)`` and ``lengths``;
    * ``label_index`` -> ``labels`` int64 ``(B,)``;
    * ``phone_ids`` (each ``(L_i,)``) -> ``targets`` int64 ``(B, L_max)`` padded with
      ``target_pad``, and ``target_lengths`` ``(B,)`` (the layout ``ctc_loss`` takes);
    * every other key -> a list (``id``, ``speaker``, ``phones``, ``text`` ...);
      ``sample_rate`` must agree and stays an int.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    items = [item for item in batch if item is not None]
    if not items:
        raise ValueError(
            f"every item of this batch of {len(batch)} was skipped (its audio file could not be "
            "read; the dataset's warnings name the files): remove them from the corpus"
        )
    batch = items
    out: dict[str, Any] = {}
    keys = batch[0].keys()
    for key in keys:
        values = [item[key] for item in batch]
        if key == "waveform":
            out["waveforms"], out["lengths"] = _pad_stack(values, 0.0)
        elif key == "spikes":
            out["spikes"], out["lengths"] = _pad_stack(values, 0.0)
        elif key == "label_index":
            out["labels"] = torch.tensor(values, dtype=torch.long)
        elif key == "phone_ids":
            out["targets"], out["target_lengths"] = _pad_stack(values, target_pad)
        elif key == "sample_rate":
            if len(set(values)) != 1:
                raise ValueError(f"items have different sample rates: {sorted(set(values))}")
            out["sample_rate"] = values[0]
        else:
            out[key] = values
    return out


class LengthBucketSampler(torch.utils.data.Sampler):
    """Batches of items of similar length, in a random order that changes every epoch.

    Items are sorted by length (with a little random jitter so that equal-length items mix),
    cut into batches, and the batches shuffled. With several processes (DDP), each rank takes
    every ``num_replicas``-th batch; the batch list is padded by repetition so that all ranks
    get the same number of batches.

    Args:
        lengths: length of every item (samples, frames: any unit).
        batch_size: items per batch; or ``None`` with ``max_total``.
        max_total: cap on ``batch_size_i * longest_length_i`` (padded size) instead of a
            fixed batch size.
        shuffle: shuffle the batch order (and jitter the sort) with ``seed + epoch``.
        drop_last: drop the last, smaller batch (fixed ``batch_size`` only).
        seed: base seed.
        num_replicas: number of DDP processes.
        rank: this process's rank.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int | None = 8,
        max_total: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if (batch_size is None) == (max_total is None):
            raise ValueError("give exactly one of batch_size and max_total")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or len(self.lengths) == 0:
            raise ValueError("lengths must be a non-empty 1-D sequence")
        if max_total is not None and int(self.lengths.max()) > max_total:
            raise ValueError(
                f"an item of length {self.lengths.max()} exceeds max_total {max_total}"
            )
        self.batch_size, self.max_total = batch_size, max_total
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a new order for this epoch (call it before each epoch, as with DDP samplers)."""
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        jitter = rng.random(len(self.lengths)) if self.shuffle else np.zeros(len(self.lengths))
        order = np.lexsort((jitter, self.lengths))
        batches: list[list[int]] = []
        if self.batch_size is not None:
            for i in range(0, len(order), self.batch_size):
                b = order[i : i + self.batch_size].tolist()
                if len(b) < self.batch_size and self.drop_last:
                    continue
                batches.append(b)
        else:
            cur: list[int] = []
            for idx in order.tolist():
                longest = int(self.lengths[idx])  # ascending order: the newest is longest
                if cur and (len(cur) + 1) * longest > self.max_total:
                    batches.append(cur)
                    cur = []
                cur.append(idx)
            if cur:
                batches.append(cur)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.num_replicas > 1:
            total = math.ceil(len(batches) / self.num_replicas) * self.num_replicas
            batches = (batches * math.ceil(total / max(1, len(batches))))[:total]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
