"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC): HDF5 spike trains.

File format (Cramer et al., 2020): ``spikes/times`` (one float array per sample, seconds),
``spikes/units`` (one integer array per sample, channel 0-699), ``labels`` (integers), and
optionally ``extra/speaker`` and ``extra/keys`` (class names). Files are named
``shd_train.h5``, ``shd_test.h5``, ``ssc_train.h5``, ``ssc_valid.h5``, ``ssc_test.h5``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .manifest import ManifestEntry

__all__ = ["SpikeDataset", "SHDFormatError", "bin_spikes"]

_REQUIRED = ("spikes/times", "spikes/units", "labels")


class SHDFormatError(ValueError):
    """The HDF5 file is not in the SHD/SSC format; the message names the file and the key."""


def bin_spikes(
    times: np.ndarray, units: np.ndarray, dt: float, num_steps: int, num_channels: int
) -> np.ndarray:
    """Count spikes in time bins.

    Args:
        times: spike times, seconds, shape ``(num_spikes,)``.
        units: channel of each spike, shape ``(num_spikes,)``.
        dt: bin width, seconds.
        num_steps: number of bins; later spikes are dropped.
        num_channels: number of channels; spikes of other channels are dropped.

    Returns:
        float32 array ``(num_steps, num_channels)`` of spike counts.
    """
    t = np.floor(np.asarray(times, dtype=np.float64) / dt).astype(np.int64)
    u = np.asarray(units, dtype=np.int64)
    keep = (t >= 0) & (t < num_steps) & (u >= 0) & (u < num_channels)
    # one count per (step, channel) cell of the flattened grid (np.add.at is far slower)
    cells = np.bincount(t[keep] * num_channels + u[keep], minlength=num_steps * num_channels)
    return cells.reshape(num_steps, num_channels).astype(np.float32)


class SpikeDataset:
    """SHD or SSC spike trains, binned, as a map-style dataset.

    Args:
        path: an ``.h5`` file, or a folder holding ``{shd,ssc}_<split>.h5``.
        split: with a folder: ``"train"``, ``"valid"`` or ``"test"`` (SHD has no ``valid``).
        dt_ms: bin width, milliseconds.
        duration_s: fixed length of every item, seconds; ``None`` makes each item as long as
            its last spike.
        num_channels: input channels (700 for SHD/SSC).

    Items (dicts): ``id``, ``speaker``, ``spikes`` (float32 tensor ``(num_steps,
    num_channels)`` of counts), ``dt_ms``, ``label`` (class name), ``label_index`` (int).
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        dt_ms: float = 10.0,
        duration_s: float | None = None,
        num_channels: int = 700,
    ) -> None:
        import h5py

        p = Path(path)
        if p.is_dir():
            found = [p / f"{name}_{split}.h5" for name in ("shd", "ssc")]
            found = [f for f in found if f.is_file()]
            if not found:
                raise FileNotFoundError(f"no shd_{split}.h5 or ssc_{split}.h5 in {p}")
            p = found[0]
        if not p.is_file():
            raise FileNotFoundError(f"spike file {p} not found")
        if dt_ms <= 0:
            raise ValueError(f"dt_ms must be > 0, got {dt_ms}")
        self.path, self.split = p, split
        self.dt_ms = float(dt_ms)
        self.duration_s = duration_s
        self.num_channels = int(num_channels)
        try:
            with h5py.File(p, "r") as f:
                for key in _REQUIRED:
                    if key not in f:
                        raise SHDFormatError(f"{p}: not an SHD/SSC file, no '{key}' dataset")
                labels = np.asarray(f["labels"][()], dtype=np.int64)
                times = f["spikes/times"]
                if len(times) != len(labels) or len(f["spikes/units"]) != len(labels):
                    raise SHDFormatError(
                        f"{p}: {len(times)} spike trains, {len(f['spikes/units'])} unit lists "
                        f"and {len(labels)} labels"
                    )
                last = np.array([float(np.max(t)) if len(t) else 0.0 for t in times])
                speakers = (
                    np.asarray(f["extra/speaker"][()]).astype(str)
                    if "extra/speaker" in f else np.full(len(labels), "")
                )
                keys = (
                    [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()]]
                    if "extra/keys" in f else []
                )
        except OSError as exc:
            raise SHDFormatError(f"{p}: unreadable HDF5 file ({exc})") from exc
        n_classes = max(len(keys), int(labels.max()) + 1 if len(labels) else 0)
        self.classes = keys if len(keys) == n_classes else [str(i) for i in range(n_classes)]
        self.manifest = [
            ManifestEntry(
                id=f"{p.stem}_{i}", path=str(p), duration=float(duration_s or last[i]),
                speaker=str(speakers[i]), label=self.classes[int(labels[i])], split=split,
                extra={"index": i, "label_index": int(labels[i])},
            )
            for i in range(len(labels))
        ]
        self._file: Any = None

    def __len__(self) -> int:
        return len(self.manifest)

    def _h5(self) -> Any:
        if self._file is None:  # opened lazily: one handle per DataLoader worker
            import h5py

            self._file = h5py.File(self.path, "r")
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    @property
    def lengths(self) -> list[int]:
        """Number of time steps of every item."""
        return [self._steps(e.duration) for e in self.manifest]

    def _steps(self, seconds: float) -> int:
        return max(1, int(math.floor(seconds * 1000.0 / self.dt_ms)) + 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.manifest[index]
        i = entry.extra["index"]
        f = self._h5()
        times = np.asarray(f["spikes/times"][i])
        units = np.asarray(f["spikes/units"][i])
        steps = self._steps(entry.duration)
        spikes = bin_spikes(times, units, self.dt_ms / 1000.0, steps, self.num_channels)
        return {
            "id": entry.id,
            "speaker": entry.speaker,
            "spikes": torch.from_numpy(spikes),
            "dt_ms": self.dt_ms,
            "label": entry.label,
            "label_index": entry.extra["label_index"],
        }
