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

if TYPE_CHECKING:
    import torch

__all__ = ["firing_rates", "pooled_firing_rates", "time_mask"]


def _as_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _steps_per_second(dt_ms: float) -> float:
    if not dt_ms > 0:
        raise ValueError(f"the step size dt must be positive (in ms), got {dt_ms}")
    return 1000.0 / float(dt_ms)


def time_mask(spikes: np.ndarray, lengths: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """``spikes`` (T, N) or (B, T, N) with padded steps dropped (one utterance) or zeroed (a
    batch), and the number of valid steps: () or (B,) float64."""
    if spikes.ndim == 2:
        n = spikes.shape[0]
        if lengths is not None:
            n = int(np.asarray(lengths).reshape(-1)[0])
            if not 0 < n <= spikes.shape[0]:
                raise ValueError(f"length {n} outside [1, {spikes.shape[0]}]")
            spikes = spikes[:n]
        return spikes, np.asarray(float(n))
    if spikes.ndim != 3:
        raise ValueError(
            f"spikes must be (time, neurons) or (batch, time, neurons), got {spikes.shape}"
        )
    b, t, _ = spikes.shape
    if lengths is None:
        return spikes, np.full(b, float(t))
    lens = _as_numpy(lengths, np.int64).reshape(-1)
    if lens.shape[0] != b:
        raise ValueError(f"lengths has {lens.shape[0]} entries for a batch of {b}")
    if np.any(lens < 1) or np.any(lens > t):
        raise ValueError(f"lengths must lie in [1, {t}], got {lens.tolist()}")
    mask = np.arange(t)[None, :] < lens[:, None]
    return spikes * mask[:, :, None], lens.astype(np.float64)


def firing_rates(spikes: Any, dt_ms: float, lengths: Any | None = None) -> np.ndarray:
    """Firing rate of each neuron in Hz: (N,) for (T, N) spikes, (B, N) for (B, T, N), each
    utterance over its own valid steps (float64)."""
    fs = _steps_per_second(dt_ms)
    s, steps = time_mask(_as_numpy(spikes), lengths)
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
            t = torch.arange(steps, device=s.device)[None, :]
            valid = (t < torch.as_tensor(lengths, device=s.device)[:, None]).float()
        valid = valid.to(s.dtype)
        seconds = valid.sum().clamp_min(1.0) * (dt_ms / 1000.0)
        out[name] = (s * valid.unsqueeze(-1)).sum(dim=(0, 1)) / seconds
    return out
