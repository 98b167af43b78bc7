"""Every figure renders and is written as a non-empty PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from sparse.analysis.activity import rates_by_population  # noqa: E402
from sparse.analysis.pac import comodulogram  # noqa: E402
from sparse.analysis.plots import (  # noqa: E402
    plot_band_signals,
    plot_comodulogram,
    plot_firing_rates,
    plot_pac,
    plot_parameter_histograms,
    plot_raster,
    plot_weight_histograms,
    save_figure,
)
from sparse.analysis.significance import pac_pair_test  # noqa: E402
from sparse.analysis.synthetic import coupled_spike_trains  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _check(fig, path: Path) -> None:
    out = save_figure(fig, path)
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000
    assert not list(path.parent.glob(".*.tmp"))


def test_all_figures_write_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 64
    adaptive = np.arange(n) < n // 2
    _check(plot_parameter_histograms(
        {"cortex_1": rng.uniform(3, 25, n), "cortex_2": rng.uniform(3, 25, n)},
        {"cortex_1": rng.uniform(30, 350, n), "cortex_2": rng.uniform(30, 350, n)},
        {"cortex_1": np.where(adaptive, rng.uniform(-0.5, 5, n), 0.0),
         "cortex_2": np.where(adaptive, rng.uniform(-0.5, 5, n), 0.0)},
        {"cortex_1": np.where(adaptive, rng.uniform(0, 2, n), 0.0),
         "cortex_2": np.where(adaptive, rng.uniform(0, 2, n), 0.0)},
        adaptive={"cortex_1": adaptive, "cortex_2": adaptive},
    ), tmp_path / "params.png")
    mask = rng.random((n, n)) < 0.5
    _check(plot_weight_histograms({"cortex_1": rng.normal(size=(n, 40))},
                                  {"cortex_1": rng.normal(size=(n, n)) * mask},
                                  {"cortex_1": mask}), tmp_path / "weights.png")

    a, b, _ = coupled_spike_trains(2500, 80, 2.0, seed=1)
    pops = {"nerve": a, "cortex_1": b}
    _check(plot_raster(pops, 2.0, spectrogram=rng.normal(size=(2500, 40))),
           tmp_path / "raster.png")
    _check(plot_firing_rates(rates_by_population(pops, 2.0)), tmp_path / "rates.png")
    # 5 s signal: delta (6 s filter) gets a note, the others a trace
    _check(plot_band_signals(a, 2.0), tmp_path / "bands.png")
    test = pac_pair_test(a, b, 2.0, "theta", "low_gamma", n_surrogates=200)
    _check(plot_pac(test), tmp_path / "pac.png")
    sig = a.mean(axis=1)
    pf, af = np.arange(4.0, 14.0, 2.0), np.arange(30.0, 120.0, 15.0)
    mi, _ = comodulogram(sig, b.mean(axis=1), 500.0, pf, af)
    _check(plot_comodulogram(mi, pf, af), tmp_path / "comod.png")
