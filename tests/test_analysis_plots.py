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
    test = pac_pair_test(a, b, 2.0, "theta", "low_gamma", n_shuffles=200)
    _check(plot_pac(test), tmp_path / "pac.png")
    sig = a.mean(axis=1)
    pf, af = np.arange(4.0, 14.0, 2.0), np.arange(30.0, 120.0, 15.0)
    mi, _ = comodulogram(sig, b.mean(axis=1), 500.0, pf, af)
    _check(plot_comodulogram(mi, pf, af), tmp_path / "comod.png")


def test_comodulogram_scale_comes_from_its_values() -> None:
    pf, af = np.arange(2.0, 6.0), np.arange(30.0, 60.0, 10.0)
    mi = np.array([[0.001, 0.002, np.nan, 0.004], [0.0, 0.003, 0.002, 0.001],
                   [0.0005, 0.001, 0.0, 0.002]])
    fig = plot_comodulogram(mi, pf, af, title="Comodulogram: a phase x b amplitude\nutt1")
    mesh = fig.axes[0].collections[0]
    assert mesh.norm.vmin == 0.0 and mesh.norm.vmax == pytest.approx(0.004)  # MI >= 0
    assert "1 of 12 cells not computed" in fig.axes[0].get_title()
    assert "utt1" in fig._suptitle.get_text()
    # the title is inside the figure, not clipped
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent()
    width, height = fig.canvas.get_width_height()
    assert box.x0 >= 0 and box.x1 <= width and box.y1 <= height
    with pytest.raises(ValueError, match="no cell"):
        plot_comodulogram(np.full((3, 4), np.nan), pf, af)
    with pytest.raises(ValueError, match="must be"):
        plot_comodulogram(mi.T, pf, af)


def test_band_signal_names_sit_on_their_own_panels() -> None:
    a, _, _ = coupled_spike_trains(2500, 80, 2.0, seed=1)  # 5 s: delta is 'not shown'
    fig = plot_band_signals(a, 2.0)
    bands = ["delta", "theta", "alpha", "beta", "low_gamma", "high_gamma"]
    for ax, band in zip(fig.axes[1:], bands, strict=True):
        texts = [t.get_text() for t in ax.texts]
        assert any(t.startswith(band + " (") for t in texts), (band, texts)
        assert band.replace("_", " ") in ax.get_ylabel()
        assert not ax.get_title()  # no title that would read as the next panel's name
    delta_texts = " ".join(t.get_text() for t in fig.axes[1].texts)
    assert "not shown" in delta_texts
    assert not any("not shown" in t.get_text() for t in fig.axes[2].texts)


def test_raster_writes_phones_along_the_time_axis(tmp_path: Path) -> None:
    a, b, _ = coupled_spike_trains(500, 20, 2.0, seed=1)
    segments = [(0.0, 0.3, "sil"), (0.3, 0.45, "hh"), (0.45, 1.0, "ay")]
    fig = plot_raster({"nerve": a, "cortex1": b}, 2.0, spectrogram=np.zeros((500, 8)),
                      segments=segments)
    labels = [t.get_text() for t in fig.axes[3].texts]
    assert labels == ["sil", "hh", "ay"] and fig.axes[3].get_ylabel() == "phones"
    cbar = [ax for ax in fig.axes if "log-mel energy" in ax.get_ylabel()]
    assert cbar, "the spectrogram's colour bar says what it shows"
    _check(fig, tmp_path / "raster.png")
    with pytest.raises(ValueError, match="ends"):
        plot_raster({"nerve": a}, 2.0, segments=[(0.5, 0.2, "x")])
