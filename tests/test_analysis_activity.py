"""Spike counts and firing rates in Hz."""

from __future__ import annotations

import numpy as np
import pytest

from sparse.analysis.activity import (
    firing_rates,
    instantaneous_rate,
    population_rate,
    rate_order,
    rates_by_population,
    spike_counts,
)


def test_rates_in_hz_from_dt_in_ms() -> None:
    spikes = np.zeros((500, 3))
    spikes[::10, 0] = 1  # every 10 steps of 2 ms: 50 Hz
    spikes[::50, 1] = 1  # 10 Hz
    assert spike_counts(spikes).tolist() == [50, 10, 0]
    np.testing.assert_allclose(firing_rates(spikes, dt_ms=2.0), [50.0, 10.0, 0.0])
    assert population_rate(spikes, 2.0) == pytest.approx(20.0)
    assert rate_order(spikes).tolist() == [0, 1, 2]
    assert instantaneous_rate(spikes, 2.0).shape == (500,)
    with pytest.raises(ValueError):
        firing_rates(spikes, dt_ms=0)


def test_batch_with_lengths_ignores_padding() -> None:
    spikes = np.ones((2, 100, 4), dtype=np.float32)
    lengths = np.array([100, 40])
    counts = spike_counts(spikes, lengths)
    assert counts.tolist() == [[100] * 4, [40] * 4]
    rates = firing_rates(spikes, 1.0, lengths)
    np.testing.assert_allclose(rates, 1000.0)  # firing at every 1 ms step, padding excluded
    with pytest.raises(ValueError, match="lengths"):
        firing_rates(spikes, 1.0, np.array([100, 0]))


def test_rates_by_population_pools_utterances() -> None:
    pops = {
        "a": [np.ones((100, 2)), np.zeros((300, 2))],
        "wave": [np.zeros(100), np.zeros(300)],  # continuous signal: left out
    }
    out = rates_by_population(pops, dt_ms=1.0)
    assert set(out) == {"a"}
    np.testing.assert_allclose(out["a"], 250.0)  # 100 spikes in 0.4 s


def test_accepts_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    spikes = torch.zeros(2, 50, 3)
    spikes[:, ::5] = 1
    np.testing.assert_allclose(firing_rates(spikes, 2.0), 100.0)
