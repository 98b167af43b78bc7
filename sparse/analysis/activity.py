"""Spike counts and firing rates (the rates themselves are :mod:`sparse.rates`, shared with the
training; :func:`firing_rates` is :func:`sparse.rates.firing_rates`).

Spike arrays are ``(time, neurons)`` for one utterance or ``(batch, time, neurons)`` for a
padded batch, with optional ``lengths`` (batch,) giving the true number of steps of each
utterance (padded steps are ignored). ``dt_ms`` is the simulation step in milliseconds, so a
rate is ``count / (steps * dt_ms / 1000)`` in Hz.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..rates import firing_rates, time_mask
from .signals import as_numpy, sampling_rate

__all__ = ["firing_rates", "instantaneous_rate", "population_rate", "rate_order",
           "rate_summary", "rates_by_population", "spike_counts"]


def spike_counts(spikes: Any, lengths: Any | None = None) -> np.ndarray:
    """Number of spikes of each neuron: (N,) for (T, N) spikes, (B, N) for (B, T, N)."""
    s, _ = time_mask(as_numpy(spikes), lengths)
    return s.sum(axis=-2)


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
