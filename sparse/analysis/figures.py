"""Stage 3 of the analysis pipeline: every figure of an analysis, as PNG files.

:func:`render_figures` draws, into ``<folder>/figures``: the neuron parameters and weights;
for the first utterances a raster over the spectrogram, the firing rates and the band signals
(and for the first one the raster and rates of its noise control); and for one coupling, the
strongest found by the significance stage unless chosen, the PAC figure, the phase-frequency
amplitude map (with its numbers in ``<folder>/phase_amplitude_map.json``), the overlay of the
two populations' band signals and the comodulogram. A figure that cannot be made (a silent
population, a band above Nyquist, an utterance shorter than a filter) is left out with a
note in :attr:`Figures.messages`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_text as atomic_write_text
from .activity import firing_rates, rate_summary
from .collect import Activity
from .coupling import CouplingResults
from .options import PlotOptions
from .report import strongest_coupling
from .signals import (
    AMPLITUDE_BANDS,
    PHASE_BANDS,
    filter_length,
    population_signal,
    resolve_bands,
    sampling_rate,
)
from .significance import ALL_POPULATIONS, pac_pair_test, pooled_spikes

__all__ = ["Figures", "check_pair", "choose_pair_bands", "render_figures", "safe_name"]


@dataclass
class Figures:
    """What :func:`render_figures` drew and wrote.

    Attributes:
        figures: figure name -> PNG path, in the order they were drawn (the page's order).
        files: data written beside the figures (``phase_amplitude_map`` -> its JSON).
        messages: notes on figures left out or partly drawn, in order.
        pac_figure: the coupling of the PAC figure and why it was chosen
            (``phase_population``, ``phase_band``, ``amplitude_population``,
            ``amplitude_band``, ``utterance``, ``why``, ``overlay_populations``).
        firing_rates: for each rate figure, its input (``speech`` or ``noise control``),
            utterance and per-population summary (:func:`~sparse.analysis.activity.rate_summary`).
    """

    figures: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    pac_figure: dict[str, Any] = field(default_factory=dict)
    firing_rates: list[dict[str, Any]] = field(default_factory=list)


def safe_name(name: str) -> str:
    """``name`` with every character that is not alphanumeric or ``-_.`` replaced by ``_``
    (for file names)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def check_pair(activity: Activity, pair: tuple[str, str] | None) -> None:
    """Raise ``ValueError`` when ``pair`` names a population ``activity`` does not have."""
    for name in pair or ():
        if name not in activity.speech and name != ALL_POPULATIONS:
            raise ValueError(f"unknown population {name!r}; the model has "
                             f"{sorted(activity.speech)} and {ALL_POPULATIONS!r}")


def render_figures(activity: Activity, coupling: CouplingResults,
                   options: PlotOptions | None = None, folder: str | Path = ".") -> Figures:
    """Draw every figure of the analysis into ``<folder>/figures`` (created).

    Args:
        activity: the encoder's activity (:func:`~sparse.analysis.collect.collect_activity`).
        coupling: its PAC significance (:func:`~sparse.analysis.coupling.assess_coupling`):
            picks the coupling of the PAC figure; the figure draws its own shuffles with
            the table's settings (``n_shuffles``, ``method``, ``seed``).
        options: which utterances and which coupling (default: the defaults).
        folder: the analysis folder.

    Returns:
        :class:`Figures`.

    Raises:
        ValueError: ``options.pair`` names a population the activity does not have.
    """
    from . import plots  # matplotlib only when figures are made

    options = options or PlotOptions()
    check_pair(activity, options.pair)
    folder = Path(folder)
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    out = Figures()
    _model_figures(activity, folder / "figures", out)
    for k in range(min(int(options.plot_utterances), len(activity.utterances))):
        _utterance_figures(activity, k, folder / "figures", out)
    out.pac_figure = _coupling_figures(activity, coupling, options, folder, out, plots)
    return out


def _model_figures(activity: Activity, figures: Path, out: Figures) -> None:
    """The neuron parameter histograms and the weight histograms."""
    from . import plots

    params = activity.parameters
    if not params:  # an activity that no spiking model made (e.g. spike trains of a recording)
        out.messages.append("parameter and weight figures skipped: the activity holds no "
                            "neuron parameters")
        return
    fig = plots.plot_parameter_histograms(
        {k: v["tau_u"] for k, v in params.items()},
        {k: v["tau_w"] for k, v in params.items()}, {k: v["a"] for k, v in params.items()},
        {k: v["b"] for k, v in params.items()}, {k: v["adaptive"] for k, v in params.items()},
        title="Neuron parameters (tau_w, a, b: adaptive neurons only)")
    out.figures["parameters"] = plots.save_figure(fig, figures / "parameters.png")
    ff = {k: v["W"] for k, v in params.items() if "W" in v}
    rec = {k: v["V"] for k, v in params.items() if "V" in v}
    rec_masks = {k: v["V_mask"] for k, v in params.items() if "V" in v}
    if ff:
        fig = plots.plot_weight_histograms(ff, rec or None, rec_masks or None)
        out.figures["weights"] = plots.save_figure(fig, figures / "weights.png")


def _utterance_figures(activity: Activity, k: int, figures: Path, out: Figures) -> None:
    """Raster, rates and band signals of utterance ``k``; for the first utterance also the
    raster and rates of its noise control (as the original SPARSE code draws them)."""
    from . import plots

    utt, dt_ms = activity.utterances[k], activity.dt_ms
    model_pops = {n: v[k] for n, v in activity.speech.items() if n != "input"}
    safe = safe_name(utt.id)
    fig = plots.plot_raster(model_pops, dt_ms, spectrogram=activity.features[k],
                            title=f"Spike rasters: {utt.id}", segments=utt.segments)
    out.figures[f"raster {utt.id}"] = plots.save_figure(fig, figures / f"raster_{safe}.png")
    rates = {n: firing_rates(v, dt_ms) for n, v in model_pops.items()}
    fig = plots.plot_firing_rates(rates, title=f"Firing rates: {utt.id}")
    out.figures[f"rates {utt.id}"] = plots.save_figure(fig, figures / f"rates_{safe}.png")
    out.firing_rates.append({"input": "speech", "utterance": utt.id,
                             "populations": rate_summary(rates)})
    if k == 0:
        noise_pops = {n: v[k] for n, v in activity.control.items() if n != "input"}
        fig = plots.plot_raster(
            noise_pops, dt_ms, spectrogram=activity.control_features[k],
            title=f"Spike rasters: Gaussian-noise control of {utt.id} (same length "
                  "and loudness)")
        out.figures[f"noise raster {utt.id}"] = plots.save_figure(
            fig, figures / f"raster_noise_{safe}.png")
        rates = {n: firing_rates(v, dt_ms) for n, v in noise_pops.items()}
        fig = plots.plot_firing_rates(
            rates, title=f"Firing rates: Gaussian-noise control of {utt.id}")
        out.figures[f"noise rates {utt.id}"] = plots.save_figure(
            fig, figures / f"rates_noise_{safe}.png")
        out.firing_rates.append({"input": "noise control", "utterance": utt.id,
                                 "populations": rate_summary(rates)})
    # the deepest population that fired: a silent one has no signal to filter
    active = [n for n in model_pops if np.any(model_pops[n])]
    if active:
        last = active[-1]
        fig = plots.plot_band_signals(model_pops[last], dt_ms,
                                      title=f"Population signal of {last}: {utt.id}")
        out.figures[f"bands {utt.id}"] = plots.save_figure(fig, figures / f"bands_{safe}.png")
    else:
        out.messages.append(f"band-signal figure of {utt.id} skipped: no population fired a spike")
    silent = [n for n in model_pops if n not in active]
    if silent:
        out.messages.append(
            f"{', '.join(silent)} fired no spike on {utt.id}: no population signal "
            "(its PAC tests on this utterance are skipped)")


def choose_pair_bands(steps: int, dt_ms: float) -> tuple[str, str]:
    """Bands of the PAC figure for an utterance of ``steps`` steps of ``dt_ms`` when no
    coupling was significant: theta and low gamma as in the original SPARSE code when they
    fit (below Nyquist, filters and edge margins no longer than the utterance), else the
    slowest phase band and the first amplitude band that do; theta and low gamma when
    nothing fits (the figure is then skipped with the reason)."""
    fs = sampling_rate(dt_ms)

    def fits(*names: str) -> bool:
        bands = resolve_bands(list(names))
        taps = max(filter_length(b, fs) for b in bands)
        return all(b.high < fs / 2 for b in bands) and steps >= 2 * taps - 1

    phase_order = ["theta", *[b for b in PHASE_BANDS if b != "theta"]]
    for amp in AMPLITUDE_BANDS:
        for phase in phase_order:
            if fits(phase, amp):
                return phase, amp
    return "theta", "low_gamma"


def _choose_coupling(activity: Activity, coupling: CouplingResults, options: PlotOptions
                     ) -> tuple[str, str, str, str, int, str]:
    """(phase population, phase band, amplitude population, amplitude band, utterance index,
    why) of the PAC figure.

    What ``options`` does not give is chosen from the significance results: the coupling
    (matching ``pair`` and ``pair_bands`` where given) significant on the most utterances
    beyond the noise control, on the utterance where its p is smallest; without any
    significant match, ``pair`` or (nerve, last population) with ``pair_bands`` or the first
    bands that fit, on the first utterance.
    """
    pair, pair_bands = options.pair, options.pair_bands
    chosen = strongest_coupling(
        coupling.model, coupling.control,
        phase_population=pair[0] if pair else None,
        amplitude_population=pair[1] if pair else None,
        phase_band=pair_bands[0] if pair_bands else None,
        amplitude_band=pair_bands[1] if pair_bands else None)
    if chosen is not None:
        (phase_pop, phase_band, amp_pop, amp_band), u = chosen
        why = ("significant (MI, FDR) on the most utterances beyond the noise control"
               + (" among the requested ones" if pair or pair_bands else "")
               + "; shown on the utterance where its p is smallest")
        return phase_pop, phase_band, amp_pop, amp_band, u, why
    names = activity.population_names
    phase_pop, amp_pop = pair or (names[0], names[-1])
    steps = next(iter(activity.speech.values()))[0].shape[0]  # all share the first's length
    phase_band, amp_band = pair_bands or choose_pair_bands(steps, activity.dt_ms)
    if len(coupling.model) == 0:
        why = "no PAC test could run (see the skipped items): the default pair"
    else:
        why = ("no significant coupling" + (" among the requested ones" if pair or pair_bands
                                            else "") + ": the default pair")
    return phase_pop, phase_band, amp_pop, amp_band, 0, why + " on the first utterance"


def _coupling_figures(activity: Activity, coupling: CouplingResults, options: PlotOptions,
                      folder: Path, out: Figures, plots: Any) -> dict[str, Any]:
    """The PAC figure, the phase-frequency amplitude map, the band overlay and the
    comodulogram of one coupling on one utterance; returns the choice and why."""
    phase_pop, phase_band, amp_pop, amp_band, u, why = _choose_coupling(activity, coupling,
                                                                        options)
    uid, dt_ms = activity.ids[u], activity.dt_ms

    def spikes_of(name: str) -> np.ndarray:
        if name == ALL_POPULATIONS and name not in activity.speech:
            return pooled_spikes([v[u] for v in activity.speech.values() if v[u].ndim == 2])
        return activity.speech[name][u]

    phase_spikes, amp_spikes = spikes_of(phase_pop), spikes_of(amp_pop)
    params = coupling.model.params
    try:
        test = pac_pair_test(phase_spikes, amp_spikes, dt_ms, phase_band, amp_band,
                             n_shuffles=int(params.get("n_shuffles", 1000)),
                             method=params.get("method", "cut_reverse"),
                             seed=int(params.get("seed", 0)))
        fig = plots.plot_pac(test, title=f"PAC: {phase_band} phase of {phase_pop} vs "
                                         f"{amp_band} amplitude of {amp_pop} ({uid})")
        out.figures["pac pair"] = plots.save_figure(fig, folder / "figures" / "pac_pair.png")
    except ValueError as err:  # e.g. a silent population or a too-short utterance
        out.messages.append(f"PAC figure skipped: {err}")
    labels = {"utterance": uid, "phase_population": phase_pop, "amplitude_population": amp_pop}
    _phase_amplitude_map(phase_spikes, amp_spikes, dt_ms, (phase_band, amp_band), labels,
                         folder, out, plots)
    overlay = _overlay_pair(phase_pop, amp_pop, activity.population_names)
    try:
        fig = plots.plot_band_signals(
            {n: spikes_of(n) for n in overlay}, dt_ms,
            title=f"Population signals of {' and '.join(overlay)} by EEG band: {uid}")
        out.figures["bands pair"] = plots.save_figure(fig, folder / "figures" / "bands_pair.png")
    except ValueError as err:  # a silent population has no signal
        out.messages.append(f"band-signal overlay skipped: {err}")
    _comodulogram(phase_spikes, amp_spikes, dt_ms, labels, folder, out, plots)
    return {"phase_population": phase_pop, "phase_band": phase_band,
            "amplitude_population": amp_pop, "amplitude_band": amp_band,
            "utterance": uid, "why": why, "overlay_populations": list(overlay)}


def _phase_amplitude_map(phase_spikes: np.ndarray, amp_spikes: np.ndarray, dt_ms: float,
                         bands: tuple[str, str], labels: dict[str, str], folder: Path,
                         out: Figures, plots: Any) -> None:
    """The phase-frequency amplitude map of the chosen coupling, and its numbers as JSON."""
    from .pac import phase_amplitude_map

    (phase_band, amp_band), uid = bands, labels["utterance"]
    phase_pop, amp_pop = labels["phase_population"], labels["amplitude_population"]
    try:
        pam = phase_amplitude_map(population_signal(phase_spikes), population_signal(amp_spikes),
                                  sampling_rate(dt_ms), phase_band, amp_band)
        fig = plots.plot_phase_amplitude_map(
            pam, title=f"Phase-frequency amplitude map: {phase_band} phase of {phase_pop} x "
                       f"{amp_band} amplitude of {amp_pop}\n{uid}",
            phase_name=phase_pop, amplitude_name=amp_pop)
        out.figures["phase-amplitude map"] = plots.save_figure(
            fig, folder / "figures" / "phase_amplitude_map.png")
        data = {"format": "sparse.phase_amplitude_map/1", "utterance": uid,
                "phase_population": phase_pop, "amplitude_population": amp_pop,
                **pam.to_json()}
        out.files["phase_amplitude_map"] = atomic_write_text(
            folder / "phase_amplitude_map.json", json.dumps(data) + "\n")
        if pam.notes:
            out.messages.append(f"phase-frequency amplitude map: {len(pam.notes)} row(s) not "
                                f"computed, e.g. {pam.notes[0]}")
    except ValueError as err:
        out.messages.append(f"phase-frequency amplitude map skipped: {err}")
        # not the numbers of an earlier run into the same folder
        (folder / "phase_amplitude_map.json").unlink(missing_ok=True)


def _comodulogram(phase_spikes: np.ndarray, amp_spikes: np.ndarray, dt_ms: float,
                  labels: dict[str, str], folder: Path, out: Figures, plots: Any) -> None:
    """MI over a grid of phase (2-13 Hz) x amplitude (30 Hz up, 10 Hz apart) frequencies."""
    from .pac import comodulogram

    fs = sampling_rate(dt_ms)
    phase_freqs = np.arange(2.0, 14.0, 1.0)
    amp_freqs = np.arange(30.0, min(150.0, fs / 2 - 15), 10.0)
    try:
        mi, notes = comodulogram(population_signal(phase_spikes), population_signal(amp_spikes),
                                 fs, phase_freqs, amp_freqs)
        out.messages.extend(notes[:5])
        fig = plots.plot_comodulogram(
            mi, phase_freqs, amp_freqs,
            title=f"Comodulogram: {labels['phase_population']} phase x "
                  f"{labels['amplitude_population']} amplitude\n{labels['utterance']}")
        out.figures["comodulogram"] = plots.save_figure(
            fig, folder / "figures" / "comodulogram.png")
    except ValueError as err:
        out.messages.append(f"comodulogram skipped: {err}")


def _overlay_pair(phase_pop: str, amp_pop: str, names: list[str]) -> tuple[str, ...]:
    """The two populations whose band signals are overlaid: those of the PAC figure, in the
    order of the hierarchy; a population coupled with itself is shown beside the first
    spiking population (the last when it is the first)."""
    if phase_pop == amp_pop:
        others = [n for n in (names[0], names[-1]) if n != phase_pop]
        if not others:
            return (phase_pop,)
        amp_pop = others[0]
    order = ["input", *names, ALL_POPULATIONS]
    return tuple(sorted((phase_pop, amp_pop),
                        key=lambda n: order.index(n) if n in order else len(order)))
