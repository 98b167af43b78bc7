"""Firing rates of spike trains, in Hz: the one definition that training and analysis share.

Spikes are ``(time, neurons)`` for one utterance or ``(batch, time, neurons)`` for a padded
batch, with optional ``lengths`` ``(batch,)``: the true number of steps of each utterance
(padded steps are ignored). ``dt_ms`` is the simulation step in milliseconds, so a rate is
``spike count / (steps * dt_ms / 1000)`` Hz. Every function takes ``(spikes, dt_ms, lengths)``
in that order.

- :func:`firing_rates`: per neuron and per utterance, as float64 NumPy arrays (the analysis:
  rasters, rate figures, summaries);
- :func:`pooled_firing_rates`: per neuron of every population over all valid steps of a
  batch, as torch tensors that stay differentiable through the surrogate gradient (the
  firing-rate regulariser and the training logs).

``sparse.analysis.activity.firing_rates`` is :func:`firing_rates`;
``sparse.train.losses.firing_rates(spikes, lengths, dt_ms)`` computes what
:func:`pooled_firing_rates` does, with its older argument order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .lengths import length_mask, length_mask_np, whole_lengths

if TYPE_CHECKING:
    import torch

__all__ = ["as_numpy", "firing_rates", "pooled_firing_rates", "sampling_rate", "time_mask"]


def as_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """Convert ``x`` (array, list, torch tensor on any device) to a NumPy array of ``dtype``
    (``None``: keep its own)."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def sampling_rate(dt_ms: float) -> float:
    """Sampling rate in Hz of a signal with one sample every ``dt_ms`` milliseconds."""
    if not dt_ms > 0:
        raise ValueError(f"the step size dt must be positive (in ms), got {dt_ms}")
    return 1000.0 / float(dt_ms)


def time_mask(spikes: np.ndarray, lengths: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """``spikes`` (T, N) or (B, T, N) with padded steps dropped (one utterance) or zeroed (a
    batch), and the number of valid steps: () or (B,) float64. ``lengths`` follow the rule of
    :mod:`sparse.lengths` (whole numbers in [1, T])."""
    if spikes.ndim == 2:
        n = spikes.shape[0]
        if lengths is not None:
            n = int(whole_lengths(as_numpy(lengths, None).reshape(-1)[:1], 1, n)[0])
            spikes = spikes[:n]
        return spikes, np.asarray(float(n))
    if spikes.ndim != 3:
        raise ValueError(
            f"spikes must be (time, neurons) or (batch, time, neurons), got {spikes.shape}"
        )
    b, t, _ = spikes.shape
    if lengths is None:
        return spikes, np.full(b, float(t))
    lens = whole_lengths(as_numpy(lengths, None).reshape(-1), b, t)
    return spikes * length_mask_np(lens, t)[:, :, None], lens.astype(np.float64)


def firing_rates(spikes: Any, dt_ms: float, lengths: Any | None = None) -> np.ndarray:
    """Firing rate of each neuron in Hz: (N,) for (T, N) spikes, (B, N) for (B, T, N), each
    utterance over its own valid steps (float64)."""
    fs = sampling_rate(dt_ms)
    s, steps = time_mask(as_numpy(spikes), lengths)
    return s.sum(axis=-2) / (steps[..., None] / fs)


def pooled_firing_rates(spikes: Mapping[str, torch.Tensor], dt_ms: float,
                        lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-neuron firing rate of every population over all valid steps of a batch.

    Args:
        spikes: population name -> spikes ``(batch, steps, neurons)`` (0/1 floats).
        dt_ms: time step in ms.
        lengths: valid steps per item ``(batch,)``; ``None``: all steps are valid.

    Returns:
        name -> rates in Hz ``(neurons,)``: the spikes of all items over their valid steps,
        divided by the valid time of the batch (at least one step), differentiable.
    """
    import torch  # here, so that the NumPy rates do not load torch (sparse.analysis stays light)

    out = {}
    for name, s in spikes.items():
        batch, steps, _ = s.shape
        if lengths is None:
            valid = torch.ones(batch, steps, device=s.device)
        else:
            valid = length_mask(torch.as_tensor(lengths, device=s.device), steps).float()
        valid = valid.to(s.dtype)
        seconds = valid.sum().clamp_min(1.0) * (dt_ms / 1000.0)
        out[name] = (s * valid.unsqueeze(-1)).sum(dim=(0, 1)) / seconds
    return out
