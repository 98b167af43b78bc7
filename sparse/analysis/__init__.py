"""Analysis of spiking populations like a brain recording (docs/analysis.md).

Array in, array out; plotting (:mod:`.plots`) and file writing (:mod:`.report`) are separate.

The pipeline, four stages that can each be called alone (options: :mod:`.options`):

- :mod:`.collect`: :func:`collect_activity` runs an encoder on utterances and on their
  Gaussian-noise controls -> :class:`Activity` (plain arrays);
- :mod:`.coupling`: :func:`assess_coupling` tests PAC of both -> :class:`CouplingResults`;
- :mod:`.figures`: :func:`render_figures` draws every figure -> :class:`Figures`;
- :mod:`.outputs`: :func:`write_reports` writes the report, tables, summary and page;
- :mod:`.run`: :func:`run_pipeline` (and :func:`run_analysis`, flat keywords) runs the four
  into a folder that receives all outputs or none;
- :mod:`.selection`, :mod:`.analyze`: which utterances of a dataset, and the analysis of a
  model or checkpoint (``sparse analyze``; :mod:`.cli` only parses its arguments).

The stages import torch and the model code, so they are loaded on first use
(``sparse.analysis.collect_activity`` etc. work; ``import sparse.analysis`` stays light).

The measures:

- :mod:`.activity`: spike counts and firing rates (Hz from the step size in ms);
- :mod:`.signals`: population signals, EEG bands, zero-phase band-pass filters, Hilbert
  transform, input waveform brought to the spike rate;
- :mod:`.pac`: Tort's modulation index, Canolty's mean vector length, comodulogram;
- :mod:`.shuffles`: shuffled amplitude series, vectorised, and their p-values;
- :mod:`.stats`: Benjamini-Hochberg FDR and the max-statistic correction;
- :mod:`.significance`: PAC significance over populations x bands x utterances;
- :mod:`.report`: text report, CSV and JSON (atomic writes);
- :mod:`.plots`: matplotlib figures (imported on demand, Agg backend);
- :mod:`.synthetic`: spike trains with planted coupling, for validation;
- :mod:`.original`: the original SPARSE code's entry points under its names and with its
  arguments (``analyse_spikes``, ``firing_rates``, ``pac_plots``, ``filter_population_signal``,
  ``pac_analysis``), thin wrappers over the rest.

``sparse.analysis.firing_rates`` is the original's figure of the rates (its arguments);
per-neuron rates of a spike array are :func:`sparse.analysis.activity.firing_rates` (that is,
:func:`sparse.rates.firing_rates`).
"""

import importlib
from typing import Any

from .activity import population_rate, rate_order, rates_by_population, spike_counts
from .options import (
    AnalysisOptions,
    AnalyzeError,
    AnalyzeOptions,
    PacOptions,
    PlotOptions,
    ReportOptions,
)
from .original import (
    PACPlots,
    analyse_spikes,
    filter_population_signal,
    firing_rates,
    pac_analysis,
    pac_plots,
)
from .pac import (
    PhaseAmplitudeMap,
    comodulogram,
    mean_vector_length,
    modulation_index,
    phase_amplitude_map,
    phase_binned_amplitude,
)
from .report import format_pac_report, write_all, write_results_csv, write_results_json
from .shuffles import (
    SHUFFLE_METHODS,
    make_shuffle,
    null_p_value,
    shuffle_cuts,
    shuffled_pac,
    shuffled_pac_loop,
)
from .signals import (
    AMPLITUDE_BANDS,
    EEG_BANDS,
    PHASE_BANDS,
    Band,
    EmptyPopulationError,
    SignalTooShortError,
    band_filter,
    filter_bands,
    hilbert_phase_amplitude,
    population_signal,
    waveform_to_rate,
)
from .significance import PACResults, SkipRecord, pac_pair_test, pac_significance, pac_table
from .stats import benjamini_hochberg, max_statistic_p

#: the pipeline's names, loaded on first use (they import torch and the model code)
_LAZY: dict[str, str] = {
    "Activity": ".collect",
    "Utterance": ".collect",
    "collect_activity": ".collect",
    "CouplingResults": ".coupling",
    "assess_coupling": ".coupling",
    "Figures": ".figures",
    "render_figures": ".figures",
    "write_reports": ".outputs",
    "AnalysisOutputs": ".run",
    "run_analysis": ".run",
    "run_pipeline": ".run",
}


#: former names of :mod:`.shuffles`' functions, still served with a ``DeprecationWarning``
_RENAMED = ("SURROGATE_METHODS", "make_surrogate", "surrogate_cuts", "surrogate_p_value",
            "surrogate_pac", "surrogate_pac_loop")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name in _RENAMED:
        from . import surrogates  # warns with the new name

        return getattr(surrogates, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AMPLITUDE_BANDS",
    "Activity",
    "AnalysisOptions",
    "AnalysisOutputs",
    "AnalyzeError",
    "AnalyzeOptions",
    "CouplingResults",
    "Figures",
    "PacOptions",
    "PlotOptions",
    "ReportOptions",
    "Utterance",
    "assess_coupling",
    "collect_activity",
    "pac_table",
    "render_figures",
    "run_analysis",
    "run_pipeline",
    "write_reports",
    "EEG_BANDS",
    "PHASE_BANDS",
    "SHUFFLE_METHODS",
    "Band",
    "EmptyPopulationError",
    "PACPlots",
    "PACResults",
    "PhaseAmplitudeMap",
    "SignalTooShortError",
    "SkipRecord",
    "analyse_spikes",
    "band_filter",
    "benjamini_hochberg",
    "comodulogram",
    "filter_bands",
    "filter_population_signal",
    "firing_rates",
    "format_pac_report",
    "hilbert_phase_amplitude",
    "make_shuffle",
    "max_statistic_p",
    "mean_vector_length",
    "modulation_index",
    "pac_analysis",
    "pac_pair_test",
    "pac_plots",
    "pac_significance",
    "phase_amplitude_map",
    "phase_binned_amplitude",
    "population_rate",
    "population_signal",
    "rate_order",
    "rates_by_population",
    "spike_counts",
    "shuffle_cuts",
    "null_p_value",
    "shuffled_pac",
    "shuffled_pac_loop",
    "waveform_to_rate",
    "write_all",
    "write_results_csv",
    "write_results_json",
]
