"""The original SPARSE code's analysis entry points, under its names and with its arguments.

``analyse_spikes``, ``firing_rates``, ``pac_plots``, ``filter_population_signal`` and
``pac_analysis`` take the arguments the original functions take (same names, order and
defaults), so a script written for the original runs on this package. Each is a thin wrapper:
the work is done by this package's measures (:mod:`.pac`, :mod:`.significance`), figures
(:mod:`.plots`) and report (:mod:`.report`), so the numbers are this package's:

- band-pass filters are zero-phase FIRs spanning at least 3 cycles of a band's low edge (the
  original used 100-tap filters for every band), and PAC is measured where no filter saw the
  padding at the ends of the signal;
- p-values are ``(k + 1) / (n + 1)`` (never 0) instead of ``k / n``;
- the input waveform is brought to the spike rate before it is filtered (anti-aliased
  resampling, :func:`~sparse.analysis.signals.waveform_to_rate`);
- the phase-frequency map's rows are 1 Hz apart, each filtered wide enough to carry the
  phase rhythm (see :func:`~sparse.analysis.pac.phase_amplitude_map`).

Figures are always returned (``matplotlib.figure.Figure``) and written as PNG into
``save_folder`` when ``save_plots`` / ``save_plot`` is true, under the original's file names;
nothing is shown on screen. Spikes may be NumPy arrays or torch tensors; ``all_spikes`` is a
list of per-layer ``(batch, steps, neurons)`` arrays (layer 0 the auditory nerve, then the
cortex layers) as the original's encoders return them, or the ``{population: (batch, steps,
neurons)}`` dict of this package's encoders (``out.spikes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .pac import N_BINS, PhaseAmplitudeMap, phase_amplitude_map
from .signals import (
    AMPLITUDE_BANDS,
    EEG_BANDS,
    PHASE_BANDS,
    Band,
    as_numpy,
    population_signal,
    waveform_to_rate,
)
from .significance import ALL_POPULATIONS, PACResults, PairTest, pac_pair_test, pac_significance

__all__ = ["PACPlots", "analyse_spikes", "filter_population_signal", "firing_rates",
           "pac_analysis", "pac_plots"]

INPUT = "input"


def _layers(all_spikes: Any) -> tuple[list[str], list[np.ndarray]]:
    """Names and ``(batch, steps, neurons)`` arrays of the layers: a mapping keeps its keys,
    a list is named as the original numbers it (nerve, then cortex1, cortex2, ...)."""
    if isinstance(all_spikes, Mapping):
        names = [str(k) for k in all_spikes]
        arrays = [as_numpy(v, np.float32) for v in all_spikes.values()]
    else:
        arrays = [as_numpy(v, np.float32) for v in all_spikes]
        names = ["nerve", *[f"cortex{i}" for i in range(1, len(arrays))]]
    for name, a in zip(names, arrays, strict=True):
        if a.ndim != 3:
            raise ValueError(f"layer {name!r}: spikes must be (batch, steps, neurons), got "
                             f"{a.shape}")
    if not arrays:
        raise ValueError("all_spikes holds no layer")
    return names, arrays


def _layer_name(layer: int) -> str:
    """The original's layer numbering (0 = the auditory nerve) in this package's names."""
    return "nerve" if int(layer) == 0 else f"cortex{int(layer)}"


def _save(fig: Any, save: bool, folder: str | Path, name: str) -> None:
    if save:
        from .plots import save_figure

        Path(folder).mkdir(parents=True, exist_ok=True)
        save_figure(fig, Path(folder) / name)


def firing_rates(
    all_spikes: Any,
    duration: float,
    num_steps: int,
    input_type: str,
    bin_width: int = 4,
    utterance_id: int = 0,
    sampling_rate: float = 1000,
    use_single_utterance: bool = True,
    save_plot: bool = True,
    save_folder: str | Path = ".",
) -> Any:
    """Histogram of single-neuron firing rates (Hz) per layer, EEG bands shaded, as
    ``rates_{input_type}.png``.

    Args:
        all_spikes: the layers' spikes, each ``(batch, steps, neurons)``.
        duration: seconds the rates are counted over (the utterance's ``num_steps`` steps).
        num_steps: steps of the utterance (the rest of the batch's length is padding).
        input_type: names the file (e.g. ``"utt0"``, ``"gaussian_noise"``).
        bin_width: not used: the rate axis is logarithmic (40 bins from 0.1 Hz).
        utterance_id: the batch element, with ``use_single_utterance``.
        sampling_rate: steps per second (only bounds the rates, as in the original).
        use_single_utterance: rates of that utterance's first ``num_steps`` steps; otherwise
            the mean over the batch of each element's spike count over ``duration``.
        save_plot, save_folder: write the figure there.

    Returns:
        The figure.
    """
    from .plots import plot_firing_rates

    del bin_width, sampling_rate  # kept for the original's signature
    names, arrays = _layers(all_spikes)
    if not duration > 0:
        raise ValueError(f"duration must be positive (seconds), got {duration}")
    if use_single_utterance:
        rates = {n: a[utterance_id, : int(num_steps)].sum(axis=0) / duration
                 for n, a in zip(names, arrays, strict=True)}
    else:
        rates = {n: (a.sum(axis=1) / duration).mean(axis=0)
                 for n, a in zip(names, arrays, strict=True)}
    fig = plot_firing_rates(rates, title=f"Single-neuron firing rates: {input_type}")
    _save(fig, save_plot, save_folder, f"rates_{input_type}.png")
    return fig


def filter_population_signal(
    spike_trains_A: Any,
    spike_trains_B: Any,
    layer_A: int,
    layer_B: int,
    input_type: str,
    num_steps_to_plot: int = 1000,
    time_axis_first: bool = True,
    delta_freq_range: Sequence[float] = (0.5, 4),
    theta_freq_range: Sequence[float] = (4, 8),
    alpha_freq_range: Sequence[float] = (8, 13),
    beta_freq_range: Sequence[float] = (13, 30),
    lowgamma_freq_range: Sequence[float] = (30, 80),
    highgamma_freq_range: Sequence[float] = (80, 150),
    sampling_rate: float = 1000,
    save_plots: bool = False,
    save_folder: str | Path = ".",
) -> Any:
    """The population signals of two layers filtered in each EEG band, overlaid, as
    ``filtered_population_signal_{input_type}.png``
    (:func:`~sparse.analysis.plots.plot_band_signals`).

    ``spike_trains_A`` / ``_B``: ``(steps, neurons)`` spikes, or ``(neurons, steps)`` when
    ``time_axis_first`` is false; ``layer_A`` / ``layer_B`` their layer numbers (0 = the
    auditory nerve); each ``*_freq_range`` a band ``(low, high)`` in Hz; ``sampling_rate``
    steps per second. Each band is filtered over the whole signal and its first
    ``num_steps_to_plot`` steps are shown (the same layer twice is drawn once). Returns the
    figure.
    """
    from .plots import plot_band_signals

    signals = {}
    for layer, spikes in ((layer_A, spike_trains_A), (layer_B, spike_trains_B)):
        s = as_numpy(spikes, np.float32)
        signals[_layer_name(layer)] = s if time_axis_first else s.T
    ranges = (delta_freq_range, theta_freq_range, alpha_freq_range, beta_freq_range,
              lowgamma_freq_range, highgamma_freq_range)
    bands = [(name, float(r[0]), float(r[1])) for name, r in zip(EEG_BANDS, ranges, strict=True)]
    fig = plot_band_signals(signals, 1000.0 / float(sampling_rate), bands=bands,
                            window_s=int(num_steps_to_plot) / float(sampling_rate),
                            title=f"Population signals of {' and '.join(signals)} by band: "
                                  f"{input_type}")
    _save(fig, save_plots, save_folder, f"filtered_population_signal_{input_type}.png")
    return fig


@dataclass
class PACPlots:
    """What :func:`pac_plots` computed and drew: the test (observed MI and MVL, shuffles,
    p-values, phase-binned amplitude), the phase-frequency amplitude map, and the figures
    (``pac.png`` and ``phase_freq.png`` in the original)."""

    test: PairTest
    phase_map: PhaseAmplitudeMap
    pac_figure: Any
    map_figure: Any


def _as_signal(x: Any, kind: str, time_axis_first: bool, fs_spikes: float, fs_wave: float,
               steps: int | None) -> np.ndarray:
    """``(steps, neurons)`` spikes, or a waveform brought to the spike rate, from an argument
    of :func:`pac_plots`."""
    a = as_numpy(x)
    if kind == "spikes":
        if a.ndim != 2:
            raise ValueError(f"spikes must have exactly 2 dimensions, got shape {a.shape}")
        return a if time_axis_first else a.T
    if kind == "waveform":
        if a.ndim != 1:
            raise ValueError(f"a waveform must have exactly one dimension, got shape {a.shape}")
        return waveform_to_rate(a, fs_wave, 1000.0 / fs_spikes, steps)
    raise ValueError(f"the signal type must be 'spikes' or 'waveform', got {kind!r}")


def pac_plots(
    lowfreq_signal: Any,
    highfreq_signal: Any,
    lowfreq_signal_type: str = "spikes",
    highfreq_signal_type: str = "spikes",
    lowfreq_range: Sequence[float] = (3, 8),
    highfreq_range: Sequence[float] = (30, 80),
    lowfreq_name: str = "Theta",
    highfreq_name: str = "Low-Gamma",
    sampling_rate_spikes: float = 1000,
    sampling_rate_waveform: float = 16000,
    num_phase_bins: int = N_BINS,
    num_surrogates: int = 10000,
    time_axis_first: bool = True,
    phase_in_degrees: bool = True,
    save_plots: bool = False,
    save_folder: str | Path = ".",
) -> PACPlots:
    """Phase-amplitude coupling of two signals: the PAC figure (phase-binned amplitude, MI
    and MVL against their shuffles, the polar plot of ``A e^(i phi)``) as ``pac.png`` and
    the phase-frequency amplitude map as ``phase_freq.png``.

    Args:
        lowfreq_signal, highfreq_signal: ``(steps, neurons)`` spikes (``(neurons, steps)``
            when ``time_axis_first`` is false) or a ``(samples,)`` waveform, as the
            ``*_signal_type`` says (``"spikes"`` or ``"waveform"``).
        lowfreq_range, highfreq_range: the phase and amplitude bands ``(low, high)`` in Hz,
            named ``lowfreq_name`` and ``highfreq_name``.
        sampling_rate_spikes, sampling_rate_waveform: steps and samples per second.
        num_phase_bins: phase bins of Tort's MI and of the figures.
        num_surrogates: cut-and-reverse shuffles of the amplitude.
        phase_in_degrees: phase axes in degrees (else radians).
        save_plots, save_folder: write the figures there.

    Returns:
        :class:`PACPlots`.
    """
    from .plots import plot_pac, plot_phase_amplitude_map

    fs = float(sampling_rate_spikes)
    spike_steps = [as_numpy(x).shape[0 if time_axis_first else 1]
                   for x, kind in ((lowfreq_signal, lowfreq_signal_type),
                                   (highfreq_signal, highfreq_signal_type)) if kind == "spikes"]
    steps = min(spike_steps) if spike_steps else None
    low = _as_signal(lowfreq_signal, lowfreq_signal_type, time_axis_first, fs,
                     float(sampling_rate_waveform), steps)
    high = _as_signal(highfreq_signal, highfreq_signal_type, time_axis_first, fs,
                      float(sampling_rate_waveform), steps)
    n = min(low.shape[0], high.shape[0])  # as the original: the common length
    low, high = low[:n], high[:n]
    phase_band = Band(lowfreq_name, float(lowfreq_range[0]), float(lowfreq_range[1]))
    amp_band = Band(highfreq_name, float(highfreq_range[0]), float(highfreq_range[1]))
    test = pac_pair_test(low, high, 1000.0 / fs, phase_band, amp_band,
                         n_shuffles=int(num_surrogates), n_bins=int(num_phase_bins))
    pam = phase_amplitude_map(population_signal(low), population_signal(high), fs, phase_band,
                              amp_band, n_bins=int(num_phase_bins))
    pac_fig = plot_pac(test, title="PAC", degrees=phase_in_degrees)
    map_fig = plot_phase_amplitude_map(pam, title=f"{lowfreq_name} phase - {highfreq_name} "
                                                  "frequency", degrees=phase_in_degrees)
    _save(pac_fig, save_plots, save_folder, "pac.png")
    _save(map_fig, save_plots, save_folder, "phase_freq.png")
    return PACPlots(test, pam, pac_fig, map_fig)


def _combinations(names: list[str]) -> tuple[list[Any], list[tuple[str, str]]]:
    """The original's layer combinations (index pairs ``(i, j)``, ``i <= j``, 0 = the input
    waveform, then ``"all"``) and the population pairs they stand for here."""
    pops = [INPUT, *names]
    combos: list[Any] = [(i, j) for i in range(len(pops)) for j in range(i, len(pops))]
    pairs = [(pops[i], pops[j]) for i, j in combos]
    combos.append("all")
    # 'all' is every spiking layer together: with one layer, that layer
    pairs.append((ALL_POPULATIONS, ALL_POPULATIONS) if len(names) >= 2 else (names[0], names[0]))
    return combos, pairs


def _pac_results(
    all_spikes: Any, waveforms: Any, wav_lens: Any, num_utterances: int, num_phase_bins: int,
    num_surrogates: int, sampling_rate_spikes: float, sampling_rate_waveform: float,
) -> tuple[PACResults, list[Any], list[tuple[str, str]]]:
    """:func:`pac_significance` over the original's layer combinations, band pairs and the
    first ``num_utterances`` utterances of the batch."""
    names, arrays = _layers(all_spikes)
    if num_utterances >= arrays[0].shape[0]:
        raise ValueError("the number of utterances must be smaller than the batch size: the "
                         "last batch element is the Gaussian noise, not an utterance")
    wavs = as_numpy(waveforms)
    lens = as_numpy(wav_lens).reshape(-1)
    dt_ms = 1000.0 / float(sampling_rate_spikes)
    pops: dict[str, list[np.ndarray]] = {INPUT: [], **{n: [] for n in names}}
    for u in range(int(num_utterances)):
        steps = int(arrays[0].shape[1] * lens[u])
        samples = int(wavs.shape[1] * lens[u])
        pops[INPUT].append(waveform_to_rate(wavs[u, :samples], float(sampling_rate_waveform),
                                            dt_ms, steps))
        for name, a in zip(names, arrays, strict=True):
            pops[name].append(a[u, :steps])
    combos, pairs = _combinations(names)
    results = pac_significance(pops, dt_ms, pairs=pairs, include_all=len(names) >= 2,
                               n_shuffles=int(num_surrogates), n_bins=int(num_phase_bins),
                               utterance_ids=[f"utt{u}" for u in range(int(num_utterances))])
    return results, combos, pairs


def pac_analysis(
    all_spikes: Any,
    waveforms: Any,
    wav_lens: Any,
    num_utterances: int = 2,
    num_phase_bins: int = N_BINS,
    num_surrogates: int = 1000,
    sampling_rate_spikes: float = 1000,
    sampling_rate_waveform: float = 16000,
    phase_in_degrees: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[Any], list[str], list[str]]:
    """Shuffle p-values of PAC within and between layers for every phase x amplitude band
    on the first ``num_utterances`` utterances of a batch (its last element is the noise).

    Args:
        all_spikes: the layers' spikes, each ``(batch, steps, neurons)``.
        waveforms: ``(batch, samples)`` input waveforms at ``sampling_rate_waveform`` Hz.
        wav_lens: ``(batch,)`` each utterance's length relative to the batch's.
        num_phase_bins, num_surrogates: of each test (cut-and-reverse shuffles).
        sampling_rate_spikes: steps per second.
        phase_in_degrees: accepted for the original's signature; p-values do not depend on
            the unit of the phase.

    Returns:
        ``(pvalues_mvl, pvalues_mi, layer_combinations, lowfreq_names, highfreq_names)``: the
        p-values ``(num_utterances, combinations, phase bands, amplitude bands)`` (NaN where a
        test could not run: a silent layer, a band longer than the utterance); the
        combinations as the original lists them (``(i, j)`` with 0 = the input waveform, 1 =
        the nerve, 2.. the cortex layers, then ``"all"``); the band names (high gamma is left
        out when it reaches the Nyquist frequency).
    """
    del phase_in_degrees
    results, combos, pairs = _pac_results(all_spikes, waveforms, wav_lens, num_utterances,
                                          num_phase_bins, num_surrogates, sampling_rate_spikes,
                                          sampling_rate_waveform)
    fs = float(sampling_rate_spikes)
    low = list(PHASE_BANDS)
    high = [b for b in AMPLITUDE_BANDS if EEG_BANDS[b][1] < fs / 2]
    shape = (int(num_utterances), len(combos), len(low), len(high))
    p_mvl, p_mi = np.full(shape, np.nan), np.full(shape, np.nan)
    c = results.columns
    where = {pair: k for k, pair in enumerate(pairs)}
    for r in range(len(results)):
        k = where.get((str(c["phase_population"][r]), str(c["amplitude_population"][r])))
        if k is None or c["amplitude_band"][r] not in high:
            continue
        idx = (int(c["utterance"][r]), k, low.index(str(c["phase_band"][r])),
               high.index(str(c["amplitude_band"][r])))
        p_mvl[idx] = c["mvl_p"][r]
        p_mi[idx] = c["mi_p"][r]
    return p_mvl, p_mi, combos, low, high


def _model_figures(model: Any, parameters: bool, weights: bool, save: bool,
                   folder: Path) -> dict[str, Any]:
    """:func:`analyse_spikes`' figures of the model itself: histograms of the neuron
    parameters (``parameters.png``) and of the weights (``weights.png``), as asked."""
    from . import plots
    from .collect import spiking_parameters

    params = spiking_parameters(model)
    figures = {}
    if parameters:
        fig = plots.plot_parameter_histograms(
            *({k: v[p] for k, v in params.items()} for p in ("tau_u", "tau_w", "a", "b")),
            adaptive={k: v["adaptive"] for k, v in params.items()})
        _save(fig, save, folder, "parameters.png")
        figures["parameters"] = fig
    if weights:
        fig = plots.plot_weight_histograms(
            {k: v["W"] for k, v in params.items() if "W" in v},
            {k: v["V"] for k, v in params.items() if "V" in v} or None,
            {k: v["V_mask"] for k, v in params.items() if "V" in v} or None)
        _save(fig, save, folder, "weights.png")
        figures["weights"] = fig
    return figures


# The original SPARSE code's entry point with its 23 arguments (names, order and defaults kept
# so its scripts run unchanged); each figure is one call.
# long: the signature and the docstring that documents each argument are half its length
def analyse_spikes(
    model: Any,
    all_spikes: Any,
    feats: Any,
    wavs: Any,
    wav_lens: Any,
    hop_length_ms: float,
    phase_layer: int = 3,
    amplitude_layer: int = 3,
    phase_freq_range: Sequence[float] = (4, 8),
    amplitude_freq_range: Sequence[float] = (30, 80),
    phase_band_name: str = "Theta",
    amplitude_band_name: str = "Low-Gamma",
    num_utterances_pac_analysis: int = 64,
    utterance_id: int = -1,
    plot_parameters: bool = False,
    plot_weights: bool = False,
    plot_spikes: bool = True,
    plot_rates: bool = True,
    plot_phase_amplitude_coupling: bool = True,
    plot_filtered_population_signal: bool = True,
    run_pac_analysis: bool = False,
    save_plots: bool = True,
    save_folder: str | Path = "results/Analysis_2ms_16chan_3x512_ff1_rnn5_sfa5/plots/",
) -> dict[str, Any]:
    """The original's whole analysis of one batch: the figures of utterance
    ``utterance_id`` (-1: the Gaussian noise, the batch's last element) and, with
    ``run_pac_analysis``, the PAC significance of the first ``num_utterances_pac_analysis``
    utterances, written into ``save_folder``.

    Args:
        model: the encoder (for ``plot_parameters`` and ``plot_weights``).
        all_spikes: the layers' spikes, each ``(batch, steps, neurons)``.
        feats: ``(batch, steps, mels)`` input features (the raster's spectrogram).
        wavs: ``(batch, samples)`` waveforms at 16 kHz; wav_lens: ``(batch,)`` relative
            lengths.
        hop_length_ms: the step in ms.
        phase_layer, amplitude_layer: layers (0 = the auditory nerve) of the band-signal
            and PAC figures; ``phase_freq_range`` / ``amplitude_freq_range`` and their names:
            the PAC figure's bands.
        plot_*: which figures to make (parameters, weights, raster ``spikes_ordered_*``,
            rates, PAC ``pac_layer*/pac.png`` and ``phase_freq.png``, band signals).
        run_pac_analysis: also write ``pac_analysis.txt``, ``pac_results.csv`` and
            ``pac_results.json`` (this package's report, with the original's joint
            criterion beside the FDR-corrected counts).
        save_plots: write the figures (else they are only returned).

    Returns:
        ``{"figures": {name: Figure}, "pac": PACPlots | None, "results": PACResults | None,
        "files": {kind: path}}``.
    """
    from . import plots
    from .report import write_all

    names, arrays = _layers(all_spikes)
    folder = Path(save_folder)
    folder.mkdir(parents=True, exist_ok=True)
    dt_ms = float(hop_length_ms)
    fs = 1000.0 / dt_ms
    lens = as_numpy(wav_lens).reshape(-1)
    utt_steps = int(arrays[0].shape[1] * lens[utterance_id])
    input_type = ("gaussian_noise" if utterance_id in (-1, len(lens))
                  else f"utt{utterance_id}")
    out: dict[str, Any] = {"figures": {}, "pac": None, "results": None, "files": {}}

    if plot_parameters or plot_weights:
        out["figures"].update(_model_figures(model, plot_parameters, plot_weights, save_plots,
                                             folder))
    spikes = [a[utterance_id, :utt_steps] for a in arrays]  # (steps, neurons) each
    if plot_spikes:
        fig = plots.plot_raster(dict(zip(names, spikes, strict=True)), dt_ms,
                                spectrogram=as_numpy(feats)[utterance_id, :utt_steps],
                                title=f"Spike rasters: {input_type}")
        _save(fig, save_plots, folder, f"spikes_ordered_{input_type}.png")
        out["figures"]["spikes"] = fig
    if plot_rates:
        out["figures"]["rates"] = firing_rates(
            dict(zip(names, arrays, strict=True)), utt_steps * dt_ms / 1000.0, utt_steps,
            input_type, bin_width=int(10 / dt_ms), utterance_id=utterance_id,
            sampling_rate=fs, use_single_utterance=True, save_plot=save_plots,
            save_folder=folder)
    if plot_filtered_population_signal:
        out["figures"]["filtered_population_signal"] = filter_population_signal(
            spikes[phase_layer], spikes[amplitude_layer], phase_layer, amplitude_layer,
            input_type, sampling_rate=fs, time_axis_first=True, save_plots=save_plots,
            save_folder=folder)
    if plot_phase_amplitude_coupling:
        pac_folder = folder / (f"pac_layer{phase_layer}_{amplitude_layer}_freq"
                               f"{phase_freq_range[0]}_{phase_freq_range[1]}_"
                               f"{amplitude_freq_range[0]}_{amplitude_freq_range[1]}_"
                               f"{input_type}")
        out["pac"] = pac_plots(
            spikes[phase_layer], spikes[amplitude_layer], "spikes", "spikes",
            phase_freq_range, amplitude_freq_range, phase_band_name, amplitude_band_name,
            sampling_rate_spikes=fs, time_axis_first=True, phase_in_degrees=False,
            save_plots=save_plots, save_folder=pac_folder)
        out["figures"]["pac"] = out["pac"].pac_figure
        out["figures"]["phase_freq"] = out["pac"].map_figure
    if run_pac_analysis:
        results, _, _ = _pac_results(dict(zip(names, arrays, strict=True)), wavs, lens,
                                     int(num_utterances_pac_analysis), N_BINS, 1000, fs, 16000)
        out["results"] = results
        out["files"] = write_all(folder, results)
    return out
