"""The whole analysis of a trained encoder on a set of utterances, written to one folder.

The four stages, each callable alone:

1. :func:`~sparse.analysis.collect.collect_activity`: the encoder on every utterance and on
   its Gaussian-noise control -> :class:`~sparse.analysis.collect.Activity`;
2. :func:`~sparse.analysis.coupling.assess_coupling`: PAC significance of both ->
   :class:`~sparse.analysis.coupling.CouplingResults`;
3. :func:`~sparse.analysis.figures.render_figures`: every figure ->
   :class:`~sparse.analysis.figures.Figures`;
4. :func:`~sparse.analysis.outputs.write_reports`: report, tables, summary, ``index.html``.

:func:`run_pipeline` runs them in that order into a staging folder that is published only
when everything is written; :func:`run_analysis` is the same with flat keyword options.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..deprecation import renamed_keywords
from .collect import Featurizer, Utterance, collect_activity, spiking_parameters
from .coupling import assess_coupling
from .figures import check_pair, choose_pair_bands, render_figures
from .options import AnalysisOptions, options_from_keywords
from .outputs import write_reports
from .significance import PACResults
from .staging import published_path, staged_output

__all__ = ["AnalysisOutputs", "Utterance", "choose_pair_bands", "run_analysis", "run_pipeline",
           "spiking_parameters"]


@dataclass
class AnalysisOutputs:
    """What :func:`run_pipeline` wrote (paths) and computed (results)."""

    out_dir: Path
    figures: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    results: PACResults | None = None
    control: PACResults | None = None
    messages: list[str] = field(default_factory=list)
    pac_figure: dict[str, Any] = field(default_factory=dict)


def run_pipeline(
    encoder: torch.nn.Module,
    utterances: Sequence[Utterance],
    featurize: Featurizer,
    out_dir: str | os.PathLike[str],
    dt_ms: float,
    options: AnalysisOptions | None = None,
    *,
    progress: bool = True,
) -> AnalysisOutputs:
    """Analyse ``encoder`` on ``utterances`` and write every figure, the PAC report (text,
    CSV, JSON) and ``index.html`` into ``out_dir``.

    Args:
        encoder: an encoder whose output carries ``spikes`` ``{population: (1, T, N)}``.
        utterances: the utterances (waveforms at their sample rate).
        featurize: ``(waveforms (B, S), lengths (B,)) -> (features (B, T, mels), lengths)``,
            the same front end the model was trained with.
        out_dir: the analysis folder.
        dt_ms: the model's step in ms.
        options: the settings of every stage (default: the defaults).
        progress: show progress bars.

    The outputs appear in ``out_dir`` together, once all are written
    (:func:`~sparse.analysis.staging.staged_output`): an analysis that fails or is interrupted
    leaves ``out_dir`` as it was, the outputs of an earlier analysis included.
    """
    options = options or AnalysisOptions()
    if int(options.report.more_than_utterances) < 0:
        raise ValueError(f"more_than_utterances must be 0 or more, got "
                         f"{options.report.more_than_utterances}")
    if len(utterances) == 0:
        raise ValueError("run_analysis: no utterances to analyse")
    final = Path(out_dir)
    with staged_output(final) as stage:
        activity = collect_activity(encoder, utterances, featurize, dt_ms,
                                    noise_seed=options.noise_seed, progress=progress)
        check_pair(activity, options.plots.pair)  # before the long part
        coupling = assess_coupling(activity, options.pac, progress=progress)
        figures = render_figures(activity, coupling, options.plots, stage)
        files = write_reports(activity, coupling, figures, stage, options.report)
    return AnalysisOutputs(
        out_dir=final,
        figures={k: published_path(v, stage, final) for k, v in figures.figures.items()},
        files={k: published_path(v, stage, final) for k, v in files.items()},
        results=coupling.model, control=coupling.control, messages=figures.messages,
        pac_figure=figures.pac_figure)


@renamed_keywords(n_surrogates="n_shuffles")
def run_analysis(
    encoder: torch.nn.Module,
    utterances: Sequence[Utterance],
    featurize: Featurizer,
    out_dir: str | os.PathLike[str],
    *,
    dt_ms: float,
    progress: bool = True,
    **options: Any,
) -> AnalysisOutputs:
    """:func:`run_pipeline` with its options given as flat keywords.

    ``options`` are those of :func:`~sparse.analysis.options.options_from_keywords`:
    ``n_shuffles`` (default 1000), ``method`` (``"cut_reverse"``), ``seed`` (0; the
    shuffles and the noise control), ``plot_utterances`` (2), ``pair`` and ``pair_bands``
    (``None``: the strongest coupling), ``more_than_utterances`` (1) and ``title``.
    """
    return run_pipeline(encoder, utterances, featurize, out_dir, dt_ms,
                        options_from_keywords(**options), progress=progress)

