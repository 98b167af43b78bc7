"""Figures of the analysis (matplotlib, no pyplot: each function builds a
:class:`matplotlib.figure.Figure` on the Agg canvas and returns it, so nothing depends on a
display or on the global backend). :func:`save_figure` writes one atomically.

Arrays follow the rest of :mod:`sparse.analysis`: spikes ``(time, neurons)``, time steps of
``dt_ms`` milliseconds, rates in Hz, time constants in ms.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..atomic import write_bytes as atomic_write_bytes
from .activity import firing_rates
from .pac import N_BINS, PhaseAmplitudeMap
from .signals import (
    DEFAULT_CYCLES,
    EEG_BANDS,
    SignalTooShortError,
    as_numpy,
    band_filter,
    filter_length,
    resolve_bands,
    sampling_rate,
    zscore,
)
from .significance import PairTest

_BAND_COLOURS = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd"]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _as_dict(x: Any, default: str) -> dict[str, np.ndarray]:
    if x is None:
        return {}
    if isinstance(x, Mapping):
        return {str(k): as_numpy(v).ravel() for k, v in x.items()}
    return {default: as_numpy(x).ravel()}


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Render ``fig`` (format from the file suffix, PNG by default) and write it atomically."""
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return atomic_write_bytes(target, buf.getvalue())


def plot_parameter_histograms(
    tau_u: Any,
    tau_w: Any | None = None,
    a: Any | None = None,
    b: Any | None = None,
    adaptive: Any | None = None,
    bins: int = 40,
    title: str = "Neuron parameters",
) -> Figure:
    """Histograms of ``tau_u`` (ms, every neuron) and of ``tau_w`` (ms), ``a`` and ``b`` (the
    adaptive neurons only). Each argument is an (N,) array or ``{layer: (N,)}`` (one colour
    per layer); ``adaptive`` is the matching boolean mask (True = AdLIF). Without a mask, the
    neurons with ``a == b == 0`` are taken as LIF."""
    tu = _as_dict(tau_u, "all")
    tw, aa, bb = _as_dict(tau_w, "all"), _as_dict(a, "all"), _as_dict(b, "all")
    mask = {k: v.astype(bool) for k, v in _as_dict(adaptive, "all").items()}
    for layer in tu:
        if layer not in mask and layer in aa and layer in bb:
            mask[layer] = (aa[layer] != 0) | (bb[layer] != 0)
    panels = [("tau_u", "membrane time constant $\\tau_u$ (ms)", tu, False),
              ("tau_w", "adaptation time constant $\\tau_w$ (ms)", tw, True),
              ("a", "sub-threshold coupling $a$", aa, True),
              ("b", "spike-triggered adaptation $b$", bb, True)]
    panels = [p for p in panels if p[2]]
    fig = _figure(4.0 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, xlabel, data, adaptive_only) in zip(axes, panels, strict=True):
        for i, (layer, vals) in enumerate(data.items()):
            if adaptive_only and layer in mask:
                vals = vals[mask[layer][: vals.size]]
            label = f"{layer} (n={vals.size})"
            if vals.size:
                ax.hist(vals, bins=bins, alpha=0.6, color=_BAND_COLOURS[i % 6], label=label)
            else:
                ax.plot([], [], color=_BAND_COLOURS[i % 6], label=f"{layer}: none")
        who = "adaptive (AdLIF) neurons" if adaptive_only else "all neurons"
        ax.set_title(f"{name}: {who}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("neurons")
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return fig


def plot_weight_histograms(
    feedforward: Any,
    recurrent: Any | None = None,
    recurrent_masks: Any | None = None,
    bins: int = 80,
    title: str = "Weights",
) -> Figure:
    """Histograms of the feed-forward weights ``W`` and of the recurrent weights ``V`` over
    their unmasked (kept) entries, with the share of positive and negative weights in the
    legend. Each argument is an array or ``{layer: array}``; ``recurrent_masks`` are the
    matching 0/1 connectivity masks (default: the non-zero entries)."""
    w = _as_dict(feedforward, "W")
    v = _as_dict(recurrent, "V")
    masks = _as_dict(recurrent_masks, "V")
    n_panels = 1 + bool(v)
    fig = _figure(5.5 * n_panels, 3.6)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]

    def panel(ax: Any, data: dict[str, np.ndarray], label: str, masked: bool) -> None:
        for i, (layer, vals) in enumerate(data.items()):
            if masked:
                keep = masks[layer].astype(bool) if layer in masks else vals != 0
                vals = vals[keep[: vals.size]]
            n = max(vals.size, 1)
            pos, neg = 100.0 * (vals > 0).sum() / n, 100.0 * (vals < 0).sum() / n
            ax.hist(vals, bins=bins, alpha=0.6, color=_BAND_COLOURS[i % 6],
                    label=f"{layer}: {pos:.1f}% > 0, {neg:.1f}% < 0 (n={vals.size})")
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_xlabel("weight")
        ax.set_ylabel("connections")
        ax.set_title(label)
        ax.legend(fontsize="small")

    panel(axes[0], w, "feed-forward W", masked=False)
    if v:
        panel(axes[1], v, "recurrent V (unmasked entries)", masked=True)
    fig.suptitle(title)
    return fig


def plot_raster(
    populations: Mapping[str, Any],
    dt_ms: float,
    spectrogram: Any | None = None,
    spectrogram_frame_ms: float | None = None,
    spectrogram_label: str = "mel channel",
    title: str = "Spike rasters",
    max_neurons: int | None = None,
    segments: Sequence[tuple[float, float, str]] | None = None,
    colorbar_label: str = "log-mel energy\n(normalised, z)",
) -> Figure:
    """Raster of every population (``{name: (T, N)}`` spikes) under the input spectrogram
    (``(frames, channels)``, one frame every ``spectrogram_frame_ms``, default ``dt_ms``).
    Neurons are sorted by firing rate, fastest at the top; time in seconds.
    ``max_neurons`` keeps the fastest that many of each population. ``segments``
    (``(start s, end s, label)``, e.g. the phones of a TIMIT .phn file) are written along the
    time axis under the rasters, with their boundaries marked on every panel."""
    pops = {k: as_numpy(v, np.float32) for k, v in populations.items()}
    n_rows = len(pops) + (spectrogram is not None) + (segments is not None)
    heights = ([1.2] if spectrogram is not None else []) + [
        max(0.8, min(2.5, np.log10(max(p.shape[1], 10)))) for p in pops.values()] + (
        [0.45] if segments is not None else [])
    fig = _figure(10.0, 1.2 * sum(heights) + 0.8)
    axes = fig.subplots(n_rows, 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
    if segments is not None:
        _segment_row(axes[-1], segments, axes[:-1])
    row = 0
    if spectrogram is not None:
        spec = as_numpy(spectrogram)
        frame_s = (spectrogram_frame_ms or dt_ms) / 1000.0
        im = axes[0].imshow(spec.T, aspect="auto", origin="lower", cmap="magma",
                            extent=(0.0, spec.shape[0] * frame_s, 0, spec.shape[1]),
                            interpolation="nearest")
        axes[0].set_ylabel(spectrogram_label)
        axes[0].set_title("input spectrogram")
        fig.colorbar(im, ax=axes[0], label=colorbar_label, pad=0.01, shrink=0.9)
        row = 1
    dt_s = dt_ms / 1000.0
    for name, s in pops.items():
        ax = axes[row]
        row += 1
        if s.ndim != 2:
            raise ValueError(f"population {name!r}: spikes must be (time, neurons), got {s.shape}")
        rates = firing_rates(s, dt_ms)
        order = np.argsort(-rates, kind="stable")
        if max_neurons is not None:
            order = order[:max_neurons]
        t_idx, n_idx = np.nonzero(s[:, order] > 0)
        y = order.size - 1 - n_idx  # fastest at the top
        ax.scatter(t_idx * dt_s, y, s=0.5, marker="|", color="k", linewidths=0.5,
                   rasterized=True)
        ax.set_xlim(0.0, s.shape[0] * dt_s)
        ax.set_ylim(-0.5, order.size - 0.5)
        ax.set_ylabel(f"{name}\nneuron (fastest on top)")
        ax.set_title(f"{name}: {s.shape[1]} neurons, mean rate {rates.mean():.1f} Hz, "
                     f"{(rates == 0).sum()} silent", fontsize="small")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title)
    return fig


def _segment_row(ax: Any, segments: Sequence[tuple[float, float, str]], above: Sequence[Any]
                 ) -> None:
    """Labels of ``segments`` along the time axis (alternating two heights so that short
    neighbours do not overlap) and their boundaries on the panels ``above``."""
    for k, (start, end, label) in enumerate(segments):
        if end < start:
            raise ValueError(f"segment {label!r} ends ({end} s) before it starts ({start} s)")
        ax.axvline(start, color="0.6", lw=0.5)
        ax.text(0.5 * (start + end), 0.7 if k % 2 == 0 else 0.25, label, ha="center",
                va="center", fontsize="x-small", clip_on=True)
        for other in above:
            other.axvline(start, color="#1f77b4", lw=0.3, alpha=0.4)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel("phones", rotation=0, ha="right", va="center")


def plot_firing_rates(
    rates: Mapping[str, Any],
    bands: Mapping[str, tuple[float, float]] = EEG_BANDS,
    bins: int = 40,
    title: str = "Single-neuron firing rates",
) -> Figure:
    """Distribution of single-neuron firing rates (Hz, log axis) per population
    (``{name: (N,)}``) with the EEG bands shaded; silent neurons are counted in the legend."""
    data = {k: as_numpy(v).ravel() for k, v in rates.items()}
    fig = _figure(8.0, 4.0)
    ax = fig.subplots()
    positive = np.concatenate([v[v > 0] for v in data.values()] or [np.ones(1)])
    lo = min(0.1, float(positive.min()) if positive.size else 0.1)
    hi = max(300.0, float(positive.max()) if positive.size else 300.0)
    edges = np.logspace(np.log10(lo), np.log10(hi), bins + 1)
    for i, (name, (f1, f2)) in enumerate(bands.items()):
        ax.axvspan(f1, f2, color=_BAND_COLOURS[i % 6], alpha=0.12, lw=0)
        ax.text(np.sqrt(f1 * f2), 1.0, name.replace("_", " "), transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize="x-small")
    for i, (name, v) in enumerate(data.items()):
        ax.hist(v[v > 0], bins=edges, histtype="step", lw=1.6, color=f"C{i}",
                label=f"{name}: median {np.median(v):.1f} Hz, {(v == 0).sum()} silent of {v.size}")
    ax.set_xscale("log")
    ax.set_xlabel("firing rate (Hz)")
    ax.set_ylabel("neurons")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0.0, 0.92))
    ax.set_title(title + " (EEG bands shaded)")
    return fig


def plot_band_signals(
    signal: Any,
    dt_ms: float,
    bands: Sequence[str | tuple[str, float, float]] | None = None,
    n_cycles: float = DEFAULT_CYCLES,
    title: str = "Population signal by EEG band",
    window_s: float | None = None,
) -> Figure:
    """The z-scored population signal and its zero-phase band-passed versions, one panel per
    band; a band above Nyquist or too long for the signal gets a note instead of a trace.

    ``signal`` is a (T,) signal or (T, N) spikes (whose mean is used), or ``{name: either}``
    of equal lengths to overlay several populations (one colour each, named in the legend),
    e.g. the two populations of a coupling. ``bands``: names of
    :data:`~sparse.analysis.signals.EEG_BANDS` or ``(name, low Hz, high Hz)``. Each band is
    filtered over the whole signal; ``window_s`` shows only its first that many seconds.
    """
    items = signal.items() if isinstance(signal, Mapping) else [("", signal)]
    xs: dict[str, np.ndarray] = {}
    for name, value in items:
        x = as_numpy(value)
        xs[name] = zscore(x.mean(axis=1) if x.ndim == 2 else x,
                          what=f"population signal {name}".strip())
    lengths = {x.size for x in xs.values()}
    if len(lengths) != 1:
        raise ValueError(f"the signals to overlay differ in length: "
                         f"{ {k: v.size for k, v in xs.items()} }")
    n = lengths.pop()
    overlay = isinstance(signal, Mapping)
    fs = sampling_rate(dt_ms)
    band_list = resolve_bands(bands if bands is not None else list(EEG_BANDS))
    shown = n if window_s is None else max(2, min(n, int(round(window_s * fs))))
    t = np.arange(shown) / fs
    fig = _figure(10.0, 1.3 * (len(band_list) + 1) + 0.6)
    axes = fig.subplots(len(band_list) + 1, 1, sharex=True, squeeze=False)[:, 0]

    def colour(j: int, i: int) -> str:
        return f"C{j}" if overlay else ("k" if i < 0 else _BAND_COLOURS[i % 6])

    for j, (name, x) in enumerate(xs.items()):
        axes[0].plot(t, x[:shown], lw=0.6, color=colour(j, -1), label=name or None)
    axes[0].set_ylabel("broadband\n(z)", fontsize="small")
    what = "signals" if overlay else "signal"
    axes[0].set_title(f"population {what} (z-scored mean of the spike trains)",
                      fontsize="small")
    if overlay:
        axes[0].legend(fontsize="small", loc="upper right", ncol=len(xs))
    for i, (ax, band) in enumerate(zip(axes[1:], band_list, strict=True)):
        if band.high >= fs / 2:
            msg = f"not shown: above the Nyquist frequency {fs / 2:g} Hz"
        else:
            try:
                for j, (name, x) in enumerate(xs.items()):
                    y = band_filter(x, fs, band, n_cycles)
                    ax.plot(t, y[:shown], lw=0.7, color=colour(j, i), label=name or None)
                msg = ""
            except SignalTooShortError:
                taps = filter_length(band, fs, n_cycles)
                msg = (f"not shown: its {taps}-tap filter spans {taps / fs:.2f} s, "
                       f"the signal {n / fs:.2f} s")
        if msg:
            ax.text(0.5, 0.5, msg, transform=ax.transAxes, ha="center", va="center",
                    fontsize="small")
            ax.set_yticks([])
        # the name inside its own panel (a title would sit under the panel above)
        ax.set_ylabel(f"{band.name.replace('_', ' ')}\n{band.low:g}-{band.high:g} Hz\n(z)",
                      fontsize="small")
        ax.text(0.005, 0.95, str(band), transform=ax.transAxes, ha="left", va="top",
                fontsize="small", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    axes[-1].set_xlabel("time (s)" + (f", first {shown / fs:.2f} s of {n / fs:.2f} s"
                                      if shown < n else ""))
    fig.suptitle(title)
    return fig


def _phase_axis(degrees: bool) -> tuple[float, str, list[float], list[str]]:
    """Scale from radians, unit name, and ticks over two cycles (-pi .. 3 pi)."""
    if degrees:
        ticks = list(np.arange(-180.0, 541.0, 90.0))
        return 180.0 / np.pi, "degrees", ticks, [f"{x:g}" for x in ticks]
    names = ["$-\\pi$", "$-\\pi/2$", "0", "$\\pi/2$", "$\\pi$", "$3\\pi/2$", "$2\\pi$",
             "$5\\pi/2$", "$3\\pi$"]
    return 1.0, "radians", list(np.arange(-2, 7) * np.pi / 2), names


def plot_pac(test: PairTest, title: str = "Phase-amplitude coupling",
             degrees: bool = True) -> Figure:
    """PAC figure of :func:`~sparse.analysis.significance.pac_pair_test`, as the original
    SPARSE code draws it: the mean amplitude per phase bin over two cycles (Tort et al.
    2010); the observed MI against its null distribution; the polar plot of
    ``A e^(i phi)`` (one point per sample: the phase band's phase, the amplitude band's
    amplitude) with its mean vector, whose length is the MVL (Canolty et al. 2006); the
    observed MVL against its null distribution. Phases in degrees (``degrees``) or
    radians."""
    fig = _figure(12.0, 8.4)
    grid = fig.add_gridspec(2, 2)
    ax_bins = fig.add_subplot(grid[0, 0])
    ax_mi = fig.add_subplot(grid[0, 1])
    ax_polar = fig.add_subplot(grid[1, 0], projection="polar")
    ax_mvl = fig.add_subplot(grid[1, 1])
    scale, unit, ticks, tick_names = _phase_axis(degrees)
    n_bins = test.bin_centres.size
    x = test.bin_centres * scale  # -180 .. 180 degrees, 0 = peak of the slow wave
    width = 2 * np.pi * scale / n_bins
    amp = np.nan_to_num(test.binned_amplitude)
    for k in range(2):
        ax_bins.bar(x + 2 * np.pi * scale * k, amp, width=width * 0.9, color="#4c72b0",
                    label="mean amplitude in the bin" if k == 0 else None)
    ax_bins.set_xlim(ticks[0], ticks[-1])
    ax_bins.set_xticks(ticks, tick_names)
    ax_bins.set_xlabel(f"{test.phase_band.name} phase ({unit}, 0 = peak; {n_bins} bins, "
                       "two cycles)")
    ax_bins.set_ylabel(f"{test.amplitude_band.name} amplitude (z units)")
    ax_bins.set_title("phase-binned amplitude")
    ax_bins.legend(fontsize="small", loc="lower right")

    # A e^(i phi): every sample, and the mean vector (its length is the MVL)
    z = test.amplitude * np.exp(1j * test.phase)
    mean = z.mean()
    ax_polar.scatter(np.angle(z), np.abs(z), s=2, alpha=0.25, color="#4c72b0", lw=0,
                     rasterized=True, label=f"A e^(i phi), {z.size} samples")
    ax_polar.plot([np.angle(mean)] * 2, [0.0, float(np.abs(z).max())], ls="--", lw=1,
                  color="#c44e52", label=f"preferred phase "
                  f"{np.angle(mean) * scale:.3g} {'deg' if degrees else 'rad'}")
    ax_polar.plot([np.angle(mean)] * 2, [0.0, abs(mean)], lw=3, color="#c44e52",
                  label=f"mean vector: MVL = {abs(mean):.3g}")
    if not degrees:
        ax_polar.set_xticks(np.arange(4) * np.pi / 2, ["0", "$\\pi/2$", "$\\pm\\pi$",
                                                       "$-\\pi/2$"])
    ax_polar.set_title(f"$A\\,e^{{i\\phi}}$: {test.amplitude_band.name} amplitude (radius, z "
                       f"units) at {test.phase_band.name} phase (angle)", fontsize="small")
    ax_polar.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax_polar.tick_params(axis="y", labelsize="x-small")

    for ax, metric, name in ((ax_mi, "mi", "modulation index (MI)"),
                             (ax_mvl, "mvl", "mean vector length (MVL, z units)")):
        sur = test.shuffled_pac[metric]
        ax.hist(sur, bins=40, color="0.6", label=f"{sur.size} shuffles ({test.method})")
        ax.axvline(test.observed[metric], color="#c44e52", lw=2,
                   label=f"observed {test.observed[metric]:.3g}, p = {test.p[metric]:.3g}")
        ax.set_xlabel(name)
        ax.set_ylabel("shuffles")
        ax.set_title(f"{name.split(' (')[0]}: observed vs shuffles")
        ax.legend(fontsize="small")
    fig.suptitle(f"{title}: {test.phase_band} phase x {test.amplitude_band} amplitude")
    return fig


def plot_phase_amplitude_map(
    pam: PhaseAmplitudeMap,
    title: str = "Phase-frequency amplitude map",
    phase_name: str | None = None,
    amplitude_name: str | None = None,
    degrees: bool = True,
) -> Figure:
    """The map of :func:`~sparse.analysis.pac.phase_amplitude_map`: each row's mean
    amplitude per phase bin divided by the row's mean (1 = no modulation), rows 1 Hz apart;
    the colour scale runs from the smallest to the largest value; rows not computed are
    hatched. ``phase_name`` / ``amplitude_name`` name the populations on the axes.

    Raises:
        ValueError: no row could be computed.
    """
    rel = pam.relative
    finite = rel[np.isfinite(rel)]
    if finite.size == 0:
        raise ValueError("no row of the phase-frequency map could be computed: "
                         + "; ".join(pam.notes[:3]))
    scale, unit, ticks, tick_names = _phase_axis(degrees)
    fig = _figure(7.5, 5.6)
    ax = fig.subplots()
    ax.set_facecolor("0.85")
    ax.patch.set_hatch("//")
    step = float(pam.frequencies[1] - pam.frequencies[0]) if pam.frequencies.size > 1 else 1.0
    y_edges = np.append(pam.frequencies - step / 2, pam.frequencies[-1] + step / 2)
    lo, hi = float(finite.min()), float(finite.max())
    mesh = ax.pcolormesh(pam.bin_edges * scale, y_edges, np.ma.masked_invalid(rel),
                         cmap="inferno", vmin=lo, vmax=hi if hi > lo else lo + 1e-12)
    fig.colorbar(mesh, ax=ax, label="mean amplitude in the phase bin / the row's mean\n"
                                    "(1 = no modulation)")
    ax.set_xticks(ticks[:5], tick_names[:5])  # one cycle, -pi .. pi
    who = f" of {phase_name}" if phase_name else ""
    ax.set_xlabel(f"{pam.phase_band.name} phase{who} ({unit}, 0 = peak; "
                  f"{pam.bin_edges.size - 1} bins)")
    who = f" of {amplitude_name}" if amplitude_name else ""
    ax.set_ylabel(f"{pam.amplitude_band.name} amplitude frequency{who} (Hz)")
    missing = int(np.sum(~np.isfinite(pam.mean_amplitude).any(axis=1)))
    note = f"rows every {step:g} Hz, each filtered +-{pam.width_hz / 2:g} Hz around it"
    if missing:
        note += f"; {missing} of {pam.frequencies.size} rows not computed (hatched)"
    ax.set_title(note, fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return fig


def plot_comodulogram(
    mi: Any,
    phase_freqs: Any,
    amplitude_freqs: Any,
    title: str = "Comodulogram",
) -> Figure:
    """Tort MI (``(n_amplitude_freqs, n_phase_freqs)``, NaN = not computed, hatched) over the
    phase x amplitude frequency grid; the colour scale runs from 0 (MI is never negative) to
    the largest value. ``title`` may hold a line break; it is drawn inside the figure.

    Raises:
        ValueError: ``mi`` has no finite value (nothing to draw), or its shape does not match
            the frequencies.
    """
    m = as_numpy(mi)
    pf, af = as_numpy(phase_freqs), as_numpy(amplitude_freqs)
    if m.shape != (af.size, pf.size):
        raise ValueError(f"mi must be (n_amplitude_freqs, n_phase_freqs) = ({af.size}, "
                         f"{pf.size}), got {m.shape}")
    finite = m[np.isfinite(m)]
    if finite.size == 0:
        raise ValueError("no cell of the comodulogram could be computed (every band reaches "
                         "the Nyquist frequency or needs a longer signal)")
    fig = _figure(7.0, 5.6)
    ax = fig.subplots()
    ax.set_facecolor("0.85")
    ax.patch.set_hatch("//")  # cells not computed show the hatched background
    vmax = float(finite.max()) if finite.max() > 0 else 1e-12
    mesh = ax.pcolormesh(pf, af, np.ma.masked_invalid(m), shading="nearest", cmap="viridis",
                         vmin=0.0, vmax=vmax)
    fig.colorbar(mesh, ax=ax, label=f"Tort modulation index ({N_BINS} phase bins)")
    ax.set_xlabel("phase frequency (Hz)")
    ax.set_ylabel("amplitude frequency (Hz)")
    n_nan = int(m.size - finite.size)
    if n_nan:
        ax.set_title(f"{n_nan} of {m.size} cells not computed (hatched)", fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return fig
