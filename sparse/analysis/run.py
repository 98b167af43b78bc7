"""The whole analysis of a trained encoder on a set of utterances, written to one folder.

This is the only place where the analysis meets a model: it runs the encoder (eval mode, no
gradients) on the utterances and on a Gaussian-noise control of the same lengths and
loudness, then hands plain arrays to the measures, the plots and the report writers.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..params import count_parameters, format_parameter_table
from ..snn import SpikingFCLayer, SpikingNeurons
from .activity import firing_rates
from .report import (
    atomic_write_text,
    format_pac_report,
    skip_explanations,
    strongest_coupling,
    write_all,
)
from .signals import (
    AMPLITUDE_BANDS,
    PHASE_BANDS,
    filter_length,
    population_signal,
    resolve_bands,
    sampling_rate,
    waveform_to_rate,
)
from .significance import (
    ALL_POPULATIONS,
    PACResults,
    pac_pair_test,
    pac_significance,
    pooled_spikes,
)
from .staging import published_path, staged_output

__all__ = ["AnalysisOutputs", "Utterance", "run_analysis", "spiking_parameters"]

Featurizer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Utterance:
    """One utterance to analyse: ``waveform`` ``(samples,)`` at ``sample_rate`` Hz, and its
    phone ``segments`` ``(start s, end s, phone)`` when the corpus has them."""

    id: str
    waveform: Any
    sample_rate: int
    segments: list[tuple[float, float, str]] | None = None


@dataclass
class AnalysisOutputs:
    """What :func:`run_analysis` wrote (paths) and computed (results)."""

    out_dir: Path
    figures: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    results: PACResults | None = None
    control: PACResults | None = None
    messages: list[str] = field(default_factory=list)
    pac_figure: dict[str, Any] = field(default_factory=dict)


def spiking_parameters(encoder: torch.nn.Module) -> dict[str, dict[str, np.ndarray]]:
    """Neuron parameters and weights of every spiking population, by population name.

    Returns ``{name: {"tau_u", "tau_w", "a", "b", "adaptive", "W"?, "V"?, "V_mask"?}}``
    (arrays); names follow the encoder's ``population_names`` when it has them.
    """
    names = list(getattr(encoder, "population_names", []))
    out: dict[str, dict[str, np.ndarray]] = {}
    layers = {id(m.neurons): m for m in encoder.modules() if isinstance(m, SpikingFCLayer)}
    pops = [m for m in encoder.modules() if isinstance(m, SpikingNeurons)]
    for i, pop in enumerate(pops):
        name = names[i] if i < len(names) else f"population{i + 1}"
        entry = {
            "tau_u": pop.tau_u.detach().cpu().numpy(),
            "tau_w": pop.tau_w.detach().cpu().numpy(),
            "a": pop.a.detach().cpu().numpy(),
            "b": pop.b.detach().cpu().numpy(),
            "adaptive": pop.adaptation_mask.cpu().numpy(),
        }
        layer = layers.get(id(pop))
        if layer is not None:
            mask = layer.feedforward_mask.cpu().numpy()
            entry["W"] = layer.linear.weight.detach().cpu().numpy()[mask]
        if pop.V is not None:
            entry["V"] = pop.V.detach().cpu().numpy()
            entry["V_mask"] = pop.recurrent_mask.cpu().numpy()
        out[name] = entry
    return out


@torch.no_grad()
def _population_spikes(encoder: torch.nn.Module, featurize: Featurizer, waveform: torch.Tensor
                       ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Spikes ``{name: (T, N)}`` of one utterance and its features ``(T, mels)``."""
    wav = waveform.reshape(1, -1).float()
    feats, frame_lengths = featurize(wav, torch.tensor([wav.shape[1]]))
    feats = feats[:, : int(frame_lengths[0])]
    out = encoder(feats)
    spikes = out.spikes if hasattr(out, "spikes") else out[-1]
    return ({k: v[0].cpu().numpy().astype(np.float32) for k, v in spikes.items()},
            feats[0].cpu().numpy())


def _noise_like(waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    rms = waveform.float().pow(2).mean().sqrt().clamp_min(1e-4)
    return torch.randn(waveform.shape, generator=generator) * rms


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="test", leave=False)


def run_analysis(
    encoder: torch.nn.Module,
    utterances: Sequence[Utterance],
    featurize: Featurizer,
    out_dir: str | os.PathLike[str],
    *,
    dt_ms: float,
    n_surrogates: int = 1000,
    method: str = "cut_reverse",
    seed: int = 0,
    plot_utterances: int = 2,
    pair: tuple[str, str] | None = None,
    pair_bands: tuple[str, str] | None = None,
    more_than_utterances: int = 1,
    progress: bool = True,
    title: str = "sparse analysis",
) -> AnalysisOutputs:
    """Analyse ``encoder`` on ``utterances`` and write every figure, the PAC report (text,
    CSV, JSON) and ``index.html`` into ``out_dir``.

    Args:
        encoder: an encoder whose output carries ``spikes`` ``{population: (1, T, N)}``.
        utterances: the utterances (waveforms at their sample rate).
        featurize: ``(waveforms (B, S), lengths (B,)) -> (features (B, T, mels), lengths)``,
            the same front end the model was trained with.
        dt_ms: the model's step in ms.
        n_surrogates, method, seed: surrogate test settings (see :func:`pac_significance`).
        plot_utterances: how many utterances get rasters, rate and band-signal figures; the
            first one's Gaussian-noise control gets a raster and rates too.
        pair: (phase population, amplitude population) for the PAC figure and comodulogram.
        pair_bands: (phase band, amplitude band) of the PAC figure. What is not given is
            chosen from the results: the coupling significant on the most utterances beyond
            the noise control, on the utterance where its p is smallest (see
            :func:`strongest_coupling`); without one, (nerve, last population) and the first
            bands that fit, on the first utterance. ``outputs.pac_figure`` says which. The
            same coupling gets the phase-frequency amplitude map and the overlay of its two
            populations' band signals.
        more_than_utterances: ``pac_analysis.txt`` and ``pac_results.json`` list the
            couplings significant on more than this many utterances.

    The outputs appear in ``out_dir`` together, once all are written
    (:func:`~sparse.analysis.staging.staged_output`): an analysis that fails or is interrupted
    leaves ``out_dir`` as it was, the outputs of an earlier analysis included.
    """
    if int(more_than_utterances) < 0:
        raise ValueError(f"more_than_utterances must be 0 or more, got {more_than_utterances}")
    if len(utterances) == 0:
        raise ValueError("run_analysis: no utterances to analyse")
    final = Path(out_dir)
    with staged_output(final) as stage:
        out = _write_analysis(encoder, utterances, featurize, stage, dt_ms=dt_ms,
                              n_surrogates=n_surrogates, method=method, seed=seed,
                              plot_utterances=plot_utterances, pair=pair, pair_bands=pair_bands,
                              progress=progress, title=title,
                              more_than_utterances=more_than_utterances)
    out.out_dir = final
    out.figures = {k: published_path(v, stage, final) for k, v in out.figures.items()}
    out.files = {k: published_path(v, stage, final) for k, v in out.files.items()}
    return out


def _write_analysis(
    encoder: torch.nn.Module,
    utterances: Sequence[Utterance],
    featurize: Featurizer,
    out_dir: Path,
    *,
    dt_ms: float,
    n_surrogates: int,
    method: str,
    seed: int,
    plot_utterances: int,
    pair: tuple[str, str] | None,
    pair_bands: tuple[str, str] | None,
    progress: bool,
    title: str,
    more_than_utterances: int,
) -> AnalysisOutputs:
    """:func:`run_analysis` into the (empty) folder ``out_dir``."""
    from . import plots  # matplotlib only when figures are made

    out = AnalysisOutputs(out_dir)
    figures = out.out_dir / "figures"
    figures.mkdir(exist_ok=True)
    encoder.eval()

    # the model itself: parameters and weights
    params = spiking_parameters(encoder)
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

    # every utterance and its noise control through the model
    gen = torch.Generator().manual_seed(seed)
    populations: dict[str, list[np.ndarray]] = {}
    control: dict[str, list[np.ndarray]] = {}
    ids = []
    rate_tables: list[dict[str, Any]] = []
    iterator = utterances
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(utterances, desc="running the model", unit="utt", leave=False)
    for k, utt in enumerate(iterator):
        wav = torch.as_tensor(np.asarray(utt.waveform), dtype=torch.float32).reshape(-1)
        noise = _noise_like(wav, gen)
        spikes, feats = _population_spikes(encoder, featurize, wav)
        noise_spikes, noise_feats = _population_spikes(encoder, featurize, noise)
        steps = next(iter(spikes.values())).shape[0]
        spikes = {"input": waveform_to_rate(wav.numpy(), utt.sample_rate, dt_ms, steps),
                  **spikes}
        noise_spikes = {"input": waveform_to_rate(noise.numpy(), utt.sample_rate, dt_ms, steps),
                        **noise_spikes}
        for name, value in spikes.items():
            populations.setdefault(name, []).append(value)
        for name, value in noise_spikes.items():
            control.setdefault(name, []).append(value)
        ids.append(utt.id)
        if k < plot_utterances:
            model_pops = {n: v for n, v in spikes.items() if n != "input"}
            safe = _safe_name(utt.id)
            fig = plots.plot_raster(model_pops, dt_ms, spectrogram=feats,
                                    title=f"Spike rasters: {utt.id}", segments=utt.segments)
            out.figures[f"raster {utt.id}"] = plots.save_figure(
                fig, figures / f"raster_{safe}.png")
            rates = {n: firing_rates(v, dt_ms) for n, v in model_pops.items()}
            fig = plots.plot_firing_rates(rates, title=f"Firing rates: {utt.id}")
            out.figures[f"rates {utt.id}"] = plots.save_figure(fig, figures / f"rates_{safe}.png")
            rate_tables.append({"input": "speech", "utterance": utt.id,
                                "populations": rate_summary(rates)})
            if k == 0:  # the noise control as the original draws it: raster and rates
                noise_pops = {n: v for n, v in noise_spikes.items() if n != "input"}
                fig = plots.plot_raster(
                    noise_pops, dt_ms, spectrogram=noise_feats,
                    title=f"Spike rasters: Gaussian-noise control of {utt.id} (same length "
                          "and loudness)")
                out.figures[f"noise raster {utt.id}"] = plots.save_figure(
                    fig, figures / f"raster_noise_{safe}.png")
                rates = {n: firing_rates(v, dt_ms) for n, v in noise_pops.items()}
                fig = plots.plot_firing_rates(
                    rates, title=f"Firing rates: Gaussian-noise control of {utt.id}")
                out.figures[f"noise rates {utt.id}"] = plots.save_figure(
                    fig, figures / f"rates_noise_{safe}.png")
                rate_tables.append({"input": "noise control", "utterance": utt.id,
                                    "populations": rate_summary(rates)})
            # the deepest population that fired: a silent one has no signal to filter
            active = [n for n in model_pops if np.any(model_pops[n])]
            if active:
                last = active[-1]
                fig = plots.plot_band_signals(model_pops[last], dt_ms,
                                              title=f"Population signal of {last}: {utt.id}")
                out.figures[f"bands {utt.id}"] = plots.save_figure(
                    fig, figures / f"bands_{safe}.png")
            else:
                out.messages.append(
                    f"band-signal figure of {utt.id} skipped: no population fired a spike")
            silent = [n for n in model_pops if n not in active]
            if silent:
                out.messages.append(
                    f"{', '.join(silent)} fired no spike on {utt.id}: no population signal "
                    "(its PAC tests on this utterance are skipped)")

    for name in pair or ():  # before the long part
        if name not in populations and name != ALL_POPULATIONS:
            raise ValueError(f"unknown population {name!r}; the model has "
                             f"{sorted(populations)} and {ALL_POPULATIONS!r}")

    # significance over every pair x band pair x utterance, with the noise control
    results_sets = []
    for stream, (label, pops) in enumerate((("model", populations),
                                            ("noise control", control))):
        n_tests = len(ids)
        bar = _progress(n_tests, f"PAC significance ({label})", progress)

        def report(done: int, total: int, bar=bar) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        results_sets.append(pac_significance(
            pops, dt_ms, n_surrogates=n_surrogates, method=method, seed=seed, stream=stream,
            utterance_ids=ids, label=label, progress=report))
        if bar is not None:
            bar.close()
    out.results, out.control = results_sets
    out.pac_figure = _pac_figures(out, populations, ids, dt_ms, pair, pair_bands,
                                  n_surrogates=n_surrogates, method=method, seed=seed)
    out.files.update(write_all(out.out_dir, out.results, out.control,
                               more_than=int(more_than_utterances)))
    table = format_parameter_table(count_parameters(encoder))
    out.files["parameters"] = atomic_write_text(out.out_dir / "parameters.txt", table + "\n")
    summary = {
        "utterances": ids,
        "durations_s": [np.asarray(u.waveform).size / u.sample_rate for u in utterances],
        "skipped_explanations": {r.label: skip_explanations(r) for r in (out.results, out.control)
                                 if r is not None and r.skipped},
        "dt_ms": dt_ms, "n_surrogates": n_surrogates, "method": method,
        "seed": seed, "pac_figure": out.pac_figure,
        "more_than_utterances": int(more_than_utterances),
        "firing_rates": rate_tables,
        "figures": {k: str(v.relative_to(out.out_dir)) for k, v in out.figures.items()},
        "messages": out.messages,
    }
    out.files["summary"] = atomic_write_text(out.out_dir / "analysis_summary.json",
                                             json.dumps(summary, indent=2) + "\n")
    out.files["html"] = write_index_html(out, title, table, int(more_than_utterances))
    return out


def rate_summary(rates: dict[str, np.ndarray]) -> dict[str, dict[str, float | int]]:
    """What the raster and rate figures say of each population (``{name: rates (N,) Hz}``):
    ``neurons``, ``mean_hz``, ``median_hz`` and ``silent`` (neurons without a spike)."""
    return {name: {"neurons": int(r.size), "mean_hz": float(r.mean()),
                   "median_hz": float(np.median(r)), "silent": int((r == 0).sum())}
            for name, r in rates.items()}


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


def _pac_figures(
    out: AnalysisOutputs,
    populations: dict[str, list[np.ndarray]],
    ids: list[str],
    dt_ms: float,
    pair: tuple[str, str] | None,
    pair_bands: tuple[str, str] | None,
    *,
    n_surrogates: int,
    method: str,
    seed: int,
) -> dict[str, Any]:
    """The PAC figure and the comodulogram of one coupling on one utterance.

    What is not given is chosen from the significance results: the coupling (matching
    ``pair`` and ``pair_bands`` where given) significant on the most utterances beyond the
    noise control, shown on the utterance where its p is smallest; without any significant
    match, ``pair`` or (nerve, last population) with ``pair_bands`` or the first bands that
    fit, on the first utterance. Returns the choice and why, for the summary.
    """
    from . import plots
    from .pac import comodulogram, phase_amplitude_map

    names = [n for n in populations if n != "input"]
    chosen = strongest_coupling(
        out.results, out.control,
        phase_population=pair[0] if pair else None,
        amplitude_population=pair[1] if pair else None,
        phase_band=pair_bands[0] if pair_bands else None,
        amplitude_band=pair_bands[1] if pair_bands else None)
    if chosen is not None:
        (phase_pop, phase_band, amp_pop, amp_band), u = chosen
        why = ("significant (MI, FDR) on the most utterances beyond the noise control"
               + (" among the requested ones" if pair or pair_bands else "")
               + "; shown on the utterance where its p is smallest")
    else:
        phase_pop, amp_pop = pair or (names[0], names[-1])
        u = 0
        steps = next(iter(populations.values()))[0].shape[0]  # all share the first's length
        phase_band, amp_band = pair_bands or choose_pair_bands(steps, dt_ms)
        if len(out.results) == 0:
            why = "no PAC test could run (see the skipped items): the default pair"
        else:
            why = ("no significant coupling" + (" among the requested ones" if pair or pair_bands
                                                else "") + ": the default pair")
        why += " on the first utterance"
    uid = ids[u]

    def spikes_of(name: str) -> np.ndarray:
        if name == ALL_POPULATIONS and name not in populations:
            return pooled_spikes([v[u] for v in populations.values() if v[u].ndim == 2])
        return populations[name][u]

    phase_spikes, amp_spikes = spikes_of(phase_pop), spikes_of(amp_pop)
    fs = sampling_rate(dt_ms)
    try:
        test = pac_pair_test(phase_spikes, amp_spikes, dt_ms,
                             phase_band, amp_band, n_surrogates=n_surrogates, method=method,
                             seed=seed)
        fig = plots.plot_pac(test, title=f"PAC: {phase_band} phase of {phase_pop} vs "
                                         f"{amp_band} amplitude of {amp_pop} ({uid})")
        out.figures["pac pair"] = plots.save_figure(fig, out.out_dir / "figures" / "pac_pair.png")
    except ValueError as err:  # e.g. a silent population or a too-short utterance
        out.messages.append(f"PAC figure skipped: {err}")
    try:
        pam = phase_amplitude_map(population_signal(phase_spikes),
                                  population_signal(amp_spikes), fs, phase_band, amp_band)
        fig = plots.plot_phase_amplitude_map(
            pam, title=f"Phase-frequency amplitude map: {phase_band} phase of {phase_pop} x "
                       f"{amp_band} amplitude of {amp_pop}\n{uid}",
            phase_name=phase_pop, amplitude_name=amp_pop)
        out.figures["phase-amplitude map"] = plots.save_figure(
            fig, out.out_dir / "figures" / "phase_amplitude_map.png")
        data = {"format": "sparse.phase_amplitude_map/1", "utterance": uid,
                "phase_population": phase_pop, "amplitude_population": amp_pop,
                **pam.to_json()}
        out.files["phase_amplitude_map"] = atomic_write_text(
            out.out_dir / "phase_amplitude_map.json", json.dumps(data) + "\n")
        if pam.notes:
            out.messages.append(f"phase-frequency amplitude map: {len(pam.notes)} row(s) not "
                                f"computed, e.g. {pam.notes[0]}")
    except ValueError as err:
        out.messages.append(f"phase-frequency amplitude map skipped: {err}")
        # not the numbers of an earlier run into the same folder
        (out.out_dir / "phase_amplitude_map.json").unlink(missing_ok=True)
    overlay = _overlay_pair(phase_pop, amp_pop, names)
    try:
        fig = plots.plot_band_signals(
            {n: spikes_of(n) for n in overlay}, dt_ms,
            title=f"Population signals of {' and '.join(overlay)} by EEG band: {uid}")
        out.figures["bands pair"] = plots.save_figure(
            fig, out.out_dir / "figures" / "bands_pair.png")
    except ValueError as err:  # a silent population has no signal
        out.messages.append(f"band-signal overlay skipped: {err}")
    phase_freqs = np.arange(2.0, 14.0, 1.0)
    amp_freqs = np.arange(30.0, min(150.0, fs / 2 - 15), 10.0)
    try:
        mi, notes = comodulogram(population_signal(phase_spikes), population_signal(amp_spikes), fs,
                                 phase_freqs, amp_freqs)
        out.messages.extend(notes[:5])
        fig = plots.plot_comodulogram(mi, phase_freqs, amp_freqs,
                                      title=f"Comodulogram: {phase_pop} phase x {amp_pop} "
                                            f"amplitude\n{uid}")
        out.figures["comodulogram"] = plots.save_figure(
            fig, out.out_dir / "figures" / "comodulogram.png")
    except ValueError as err:
        out.messages.append(f"comodulogram skipped: {err}")
    return {"phase_population": phase_pop, "phase_band": phase_band,
            "amplitude_population": amp_pop, "amplitude_band": amp_band,
            "utterance": uid, "why": why, "overlay_populations": list(overlay)}


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


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _skipped_html(out: AnalysisOutputs) -> list[str]:
    """The section that says which PAC tests were skipped, why, and what would make them run
    (empty when nothing was skipped)."""
    sets = [r for r in (out.results, out.control) if r is not None and r.skipped]
    if not sets:
        return []
    parts = ["<h2 id='skipped'>Tests that could not run, and what would make them run</h2>"]
    for r in sets:
        parts.append(f"<p>{html.escape(r.label)}: {len(r.skipped)} skipped item(s)</p><ul>")
        parts += [f"<li>{html.escape(x)}</li>" for x in skip_explanations(r)]
        parts.append("</ul>")
    return parts


def write_index_html(out: AnalysisOutputs, title: str, parameter_table: str,
                     more_than_utterances: int = 1) -> Path:
    """One page that shows every figure and table of the analysis."""
    report = (format_pac_report(out.results, out.control, more_than=more_than_utterances)
              if out.results is not None else "")
    parts = [
        "<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "img{max-width:100%;border:1px solid #ccc;margin:0.5em 0}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *_skipped_html(out),
        "<h2>Parameters</h2>", f"<pre>{html.escape(parameter_table)}</pre>",
        "<h2>Figures</h2>",
    ]
    for name, path in out.figures.items():
        rel = path.relative_to(out.out_dir).as_posix()
        parts.append(f"<h3>{html.escape(name)}</h3><img src='{html.escape(rel)}' "
                     f"alt='{html.escape(name)}'>")
    parts.append("<h2>Phase-amplitude coupling</h2>")
    if out.pac_figure:  # which coupling the PAC figure and comodulogram show, and why
        fig = out.pac_figure
        parts.append(f"<p>PAC figure, phase-frequency amplitude map, comodulogram and band "
                     f"overlay: {html.escape(fig['phase_band'])} phase "
                     f"of {html.escape(fig['phase_population'])} x "
                     f"{html.escape(fig['amplitude_band'])} amplitude of "
                     f"{html.escape(fig['amplitude_population'])} on "
                     f"{html.escape(fig['utterance'])}: {html.escape(fig['why'])}</p>")
    parts += ["<p>Machine-readable results: "
              + ", ".join(f"<a href='{html.escape(p.name)}'>{html.escape(p.name)}</a>"
                          for k, p in out.files.items()
                          if k in ("csv", "json", "phase_amplitude_map")) + "</p>",
              f"<pre>{html.escape(report)}</pre>"]
    if out.messages:
        parts += ["<h2>Notes</h2><ul>"]
        parts += [f"<li>{html.escape(m)}</li>" for m in out.messages]
        parts += ["</ul>"]
    parts.append("</body></html>")
    return atomic_write_text(out.out_dir / "index.html", "\n".join(parts) + "\n")
