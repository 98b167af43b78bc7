"""Synthetic spike trains with known coupling, to validate the analysis (tests, benchmarks).

All generators return ``(T, N)`` float32 arrays of 0/1 spikes at step ``dt_ms`` (Bernoulli
approximation of a Poisson process: spike probability ``rate * dt_ms / 1000`` per step).
"""

from __future__ import annotations

import numpy as np

from .signals import sampling_rate


def _bernoulli(rate_hz: np.ndarray, n_neurons: int, dt_ms: float,
               rng: np.random.Generator) -> np.ndarray:
    prob = np.clip(np.asarray(rate_hz, dtype=np.float64) * dt_ms / 1000.0, 0.0, 1.0)
    return (rng.random((prob.shape[0], n_neurons)) < prob[:, None]).astype(np.float32)


def noisy_phase(n_steps: int, dt_ms: float, freq_hz: float, phase_noise: float,
                rng: np.random.Generator) -> np.ndarray:
    """Phase (T,) in radians of an oscillation at ``freq_hz`` whose phase also random-walks
    with ``phase_noise`` radians per sqrt(second)."""
    fs = sampling_rate(dt_ms)
    steps = rng.normal(0.0, phase_noise / np.sqrt(fs), size=n_steps)
    return 2 * np.pi * freq_hz * np.arange(n_steps) / fs + np.cumsum(steps)


def poisson_spike_trains(n_steps: int, n_neurons: int, dt_ms: float, rate_hz: float,
                         seed: int | np.random.Generator = 0) -> np.ndarray:
    """Independent homogeneous Poisson trains: (T, N)."""
    rng = np.random.default_rng(seed)
    return _bernoulli(np.full(n_steps, float(rate_hz)), n_neurons, dt_ms, rng)


def coupled_spike_trains(
    n_steps: int,
    n_neurons: int,
    dt_ms: float,
    *,
    rate_hz: float = 20.0,
    theta_hz: float = 6.0,
    gamma_hz: float = 50.0,
    theta_depth: float = 0.5,
    gamma_depth: float = 0.8,
    phase_noise: float = 4.0,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two populations with planted theta-gamma phase-amplitude coupling.

    A noisy theta phase ``phi`` (random walk around ``theta_hz``) drives population A's rate,
    ``rate (1 + theta_depth cos phi)``, and sets the gamma amplitude of population B's rate,
    ``rate (1 + gamma_depth (1 + cos phi) / 2 cos(2 pi gamma_hz t))``: B's gamma is strongest at
    A's theta peak. Returns ``(spikes_a (T, N), spikes_b (T, N), phi (T,))``.
    """
    rng = np.random.default_rng(seed)
    fs = sampling_rate(dt_ms)
    phi = noisy_phase(n_steps, dt_ms, theta_hz, phase_noise, rng)
    t = np.arange(n_steps) / fs
    rate_a = rate_hz * (1 + theta_depth * np.cos(phi))
    envelope = (1 + np.cos(phi)) / 2
    rate_b = rate_hz * (1 + gamma_depth * envelope * np.cos(2 * np.pi * gamma_hz * t))
    return (_bernoulli(rate_a, n_neurons, dt_ms, rng), _bernoulli(rate_b, n_neurons, dt_ms, rng),
            phi)
