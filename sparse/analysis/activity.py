"""Spike counts and firing rates.

Spike arrays are ``(time, neurons)`` for one utterance or ``(batch, time, neurons)`` for a
padded batch, with optional ``lengths`` (batch,) giving the true number of steps of each
utterance (padded steps are ignored). ``dt_ms`` is the simulation step in milliseconds, so a
rate is ``count / (steps * dt_ms / 1000)`` in Hz.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .signals import as_numpy, sampling_rate


def _time_mask(spikes: np.ndarray, lengths: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Spikes with padded steps zeroed, and the number of valid steps per utterance."""
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
    lens = as_numpy(lengths, np.int64).reshape(-1)
    if lens.shape[0] != b:
        raise ValueError(f"lengths has {lens.shape[0]} entries for a batch of {b}")
    if np.any(lens < 1) or np.any(lens > t):
        raise ValueError(f"lengths must lie in [1, {t}], got {lens.tolist()}")
    mask = np.arange(t)[None, :] < lens[:, None]
    return spikes * mask[:, :, None], lens.astype(np.float64)


def spike_counts(spikes: Any, lengths: Any | None = None) -> np.ndarray:
    """Number of spikes of each neuron: (N,) for (T, N) spikes, (B, N) for (B, T, N)."""
    s, _ = _time_mask(as_numpy(spikes), lengths)
    return s.sum(axis=-2)


def firing_rates(spikes: Any, dt_ms: float, lengths: Any | None = None) -> np.ndarray:
    """Firing rate of each neuron in Hz: (N,) for (T, N) spikes, (B, N) for (B, T, N)."""
    fs = sampling_rate(dt_ms)
    s, steps = _time_mask(as_numpy(spikes), lengths)
    return s.sum(axis=-2) / (steps[..., None] / fs)


def population_rate(spikes: Any, dt_ms: float, lengths: Any | None = None) -> np.ndarray:
    """Mean firing rate over the neurons of a population in Hz: () or (B,)."""
    return firing_rates(spikes, dt_ms, lengths).mean(axis=-1)


def instantaneous_rate(spikes: Any, dt_ms: float) -> np.ndarray:
    """Population rate at each step in Hz (spikes per neuron per second): (T,) from (T, N)."""
    s = as_numpy(spikes)
    if s.ndim != 2:
        raise ValueError(f"spikes must be (time, neurons), got {s.shape}")
    return s.mean(axis=1) * sampling_rate(dt_ms)


def rate_order(spikes: Any) -> np.ndarray:
    """Neuron indices (N,) sorted by decreasing spike count over ``spikes`` (T, N)."""
    counts = spike_counts(spikes)
    return np.argsort(-counts, kind="stable")


def rates_by_population(
    populations: Mapping[str, Sequence[Any] | Any], dt_ms: float
) -> dict[str, np.ndarray]:
    """Firing rate of every neuron of every population, pooled over utterances.

    ``populations`` maps a name to a list of (T_u, N) spike arrays (one per utterance; lengths
    may differ) or to one (T, N) array. Returns ``{name: (N,)}``: total spikes over total time
    per neuron, in Hz. One-dimensional entries (continuous signals) are left out.
    """
    fs = sampling_rate(dt_ms)
    out: dict[str, np.ndarray] = {}
    for name, value in populations.items():
        items = [value] if hasattr(value, "ndim") else list(value)
        arrays = [as_numpy(x) for x in items]
        if not arrays or any(a.ndim != 2 for a in arrays):
            continue
        counts = sum(a.sum(axis=0) for a in arrays)
        steps = sum(a.shape[0] for a in arrays)
        out[name] = np.asarray(counts, dtype=np.float64) / (steps / fs)
    return out


def rate_summary(rates: Mapping[str, np.ndarray]) -> dict[str, dict[str, float | int]]:
    """What the raster and rate figures say of each population (``{name: rates (N,) Hz}``):
    ``neurons``, ``mean_hz``, ``median_hz`` and ``silent`` (neurons without a spike)."""
    return {name: {"neurons": int(r.size), "mean_hz": float(r.mean()),
                   "median_hz": float(np.median(r)), "silent": int((r == 0).sum())}
            for name, r in rates.items()}
