"""Settings of the analysis pipeline, one frozen dataclass per stage.

- :class:`PacOptions`: the shuffle test of :func:`~sparse.analysis.coupling.assess_coupling`
  and :func:`~sparse.analysis.significance.pac_table`;
- :class:`PlotOptions`: which figures :func:`~sparse.analysis.figures.render_figures` makes;
- :class:`ReportOptions`: what :func:`~sparse.analysis.outputs.write_reports` lists;
- :class:`AnalysisOptions`: the three together, plus the noise control's random generator,
  for :func:`~sparse.analysis.run.run_pipeline`;
- :class:`AnalyzeOptions`: which utterances of a dataset and the settings of the whole
  analysis, for :func:`~sparse.analysis.analyze.analyze_model` (``sparse analyze``).

Options are checked where they are used; :func:`check_options` checks an
:class:`AnalyzeOptions` against a model's populations before anything long starts and raises
:class:`AnalyzeError` with one paragraph naming the option, its value and why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..deprecation import moved_names, renamed_fields, renamed_keywords
from .pac import N_BINS
from .shuffles import SHUFFLE_METHODS
from .signals import AMPLITUDE_BANDS, DEFAULT_CYCLES, EEG_BANDS, PHASE_BANDS, Band

__all__ = ["DEFAULT_SHUFFLES", "DEFAULT_UTTERANCES", "AnalysisOptions", "AnalyzeError",
           "AnalyzeOptions", "PacOptions", "PlotOptions", "ReportOptions", "check_options",
           "options_from_keywords"]

DEFAULT_UTTERANCES = 64
DEFAULT_SHUFFLES = 1000

#: former module-level names -> their new names (kept for one release)
__getattr__ = moved_names(__name__, {"DEFAULT_SURROGATES": (__name__, "DEFAULT_SHUFFLES")})


class AnalyzeError(ValueError):
    """The analysis cannot start: a bad option, an unknown population or utterance id."""


@renamed_fields(n_surrogates="n_shuffles")
@dataclass(frozen=True)
class PacOptions:
    """How phase-amplitude coupling is tested (:func:`~sparse.analysis.significance.pac_table`).

    Attributes:
        phase_bands, amplitude_bands: band names of :data:`~sparse.analysis.signals.EEG_BANDS`
            or :class:`~sparse.analysis.signals.Band` objects (Hz).
        pairs: ordered ``(phase population, amplitude population)`` pairs to report; ``None``:
            every ordered pair, a population with itself included.
        include_all: add the pooled population ``"all"`` of the spiking populations.
        n_shuffles: shuffles per test; p-values are ``(k + 1) / (n + 1)``.
        method: ``"cut_reverse"`` (the original SPARSE code's) or ``"circular_shift"``.
        seed: shuffle cut points of utterance ``u`` of set ``stream`` come from
            ``default_rng([seed, stream, u])``.
        min_shift_fraction: circular shifts are drawn in ``[f T, (1 - f) T]`` (keep 0 for a
            valid test; see :func:`~sparse.analysis.shuffles.default_margin`).
        trim_edges: measure PAC only where no filter saw the padding at the utterance's ends
            (half the longest analysed filter dropped at each end; a band needs
            ``2 * numtaps - 1`` samples).
        alpha: significance level stored with the results (FDR and report).
        n_bins: phase bins of Tort's MI.
        n_cycles: filter length in cycles of a band's low edge.
        workers: threads for the FFTs (scipy.fft ``workers``; ``None``: scipy's default).
    """

    phase_bands: Sequence[str | Band] = PHASE_BANDS
    amplitude_bands: Sequence[str | Band] = AMPLITUDE_BANDS
    pairs: Sequence[tuple[str, str]] | None = None
    include_all: bool = True
    n_shuffles: int = DEFAULT_SHUFFLES
    method: str = "cut_reverse"
    seed: int = 0
    min_shift_fraction: float = 0.0
    trim_edges: bool = True
    alpha: float = 0.05
    n_bins: int = N_BINS
    n_cycles: float = DEFAULT_CYCLES
    workers: int | None = None

    def check(self) -> None:
        """Raise ``ValueError`` naming a shuffle method or count that cannot work."""
        if self.method not in SHUFFLE_METHODS:
            raise ValueError(f"unknown shuffle method {self.method!r}; choose from "
                             f"{SHUFFLE_METHODS}")
        if int(self.n_shuffles) < 1:
            raise ValueError(f"n_shuffles must be at least 1, got {self.n_shuffles}")


@dataclass(frozen=True)
class PlotOptions:
    """Which figures :func:`~sparse.analysis.figures.render_figures` makes.

    Attributes:
        plot_utterances: how many utterances (the first ones) get raster, rate and
            band-signal figures; the first one's Gaussian-noise control gets a raster and
            rates too.
        pair: (phase population, amplitude population) of the PAC figure, the
            phase-frequency amplitude map, the band overlay and the comodulogram.
        pair_bands: (phase band, amplitude band) of the PAC figure. What is not given is
            chosen from the significance results: the coupling significant on the most
            utterances beyond the noise control, on the utterance where its p is smallest;
            without one, (nerve, last population) and the first bands that fit, on the
            first utterance.
    """

    plot_utterances: int = 2
    pair: tuple[str, str] | None = None
    pair_bands: tuple[str, str] | None = None


@dataclass(frozen=True)
class ReportOptions:
    """What :func:`~sparse.analysis.outputs.write_reports` writes.

    Attributes:
        more_than_utterances: ``pac_analysis.txt`` and ``pac_results.json`` list the
            couplings significant on more than this many utterances (0 or more).
        title: the title of ``index.html``.
    """

    more_than_utterances: int = 1
    title: str = "sparse analysis"


@dataclass(frozen=True)
class AnalysisOptions:
    """The settings of the whole pipeline (:func:`~sparse.analysis.run.run_pipeline`).

    Attributes:
        pac, plots, report: the settings of each stage.
        noise_seed: seed of the Gaussian-noise control's generator
            (:func:`~sparse.analysis.collect.collect_activity`).
    """

    pac: PacOptions = field(default_factory=PacOptions)
    plots: PlotOptions = field(default_factory=PlotOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
    noise_seed: int = 0


@renamed_keywords(n_surrogates="n_shuffles")
def options_from_keywords(n_shuffles: int = DEFAULT_SHUFFLES, method: str = "cut_reverse",
                          seed: int = 0, plot_utterances: int = 2,
                          pair: tuple[str, str] | None = None,
                          pair_bands: tuple[str, str] | None = None,
                          more_than_utterances: int = 1,
                          title: str = "sparse analysis") -> AnalysisOptions:
    """:class:`AnalysisOptions` from the flat keywords of
    :func:`~sparse.analysis.run.run_analysis` (``seed`` drives the shuffles and the noise
    control, as it always has)."""
    return AnalysisOptions(
        pac=PacOptions(n_shuffles=n_shuffles, method=method, seed=seed),
        plots=PlotOptions(plot_utterances=plot_utterances, pair=pair, pair_bands=pair_bands),
        report=ReportOptions(more_than_utterances=more_than_utterances, title=title),
        noise_seed=seed)


@renamed_fields(n_surrogates="n_shuffles")
@dataclass(frozen=True)
class AnalyzeOptions:
    """Which utterances of a dataset to analyse, and how (``sparse analyze``'s options).

    Attributes:
        num_utterances: analyse the longest ``num_utterances`` utterances (ties spread over
            classes and speakers; see :func:`~sparse.analysis.selection.select_utterances`).
        ids: analyse exactly these utterance ids instead, in this order.
        n_shuffles, method, seed: the shuffle test (:class:`PacOptions`); ``seed`` also
            draws the noise control and spreads tied utterances.
        pair, pair_bands, plot_utterances: the figures (:class:`PlotOptions`).
        more_than_utterances: the report's coupling lists (:class:`ReportOptions`).
        progress: show progress bars.
        verbose: log every skipped band and utterance as it happens (otherwise they are only
            listed in ``pac_analysis.txt``).
    """

    num_utterances: int | None = DEFAULT_UTTERANCES
    ids: Sequence[str] | None = None
    n_shuffles: int = DEFAULT_SHUFFLES
    method: str = "cut_reverse"
    seed: int = 0
    pair: tuple[str, str] | None = None
    pair_bands: tuple[str, str] | None = None
    plot_utterances: int = 2
    more_than_utterances: int = 1
    progress: bool = True
    verbose: bool = False

    @classmethod
    def from_keywords(cls, options: AnalyzeOptions | None, keywords: dict[str, Any]
                      ) -> AnalyzeOptions:
        """``options`` (default: the defaults) with the fields named in ``keywords``
        replaced; an unknown keyword is a ``TypeError`` that names it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(keywords) - names)
        if unknown:
            raise TypeError(f"unknown analysis option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(names))}")
        return dataclasses.replace(options or cls(), **keywords)

    def analysis_options(self, title: str) -> AnalysisOptions:
        """The pipeline's settings for these options (``title``: of ``index.html``)."""
        return options_from_keywords(
            n_shuffles=int(self.n_shuffles), method=self.method, seed=self.seed,
            plot_utterances=self.plot_utterances,
            pair=(self.pair[0], self.pair[1]) if self.pair else None,
            pair_bands=(self.pair_bands[0], self.pair_bands[1]) if self.pair_bands else None,
            more_than_utterances=int(self.more_than_utterances), title=title)


def check_options(options: AnalyzeOptions, populations: Sequence[str]) -> None:
    """Raise :class:`AnalyzeError` (one paragraph: option, value, why) for an option that
    cannot work with a model whose populations are ``populations`` (``input``, the spiking
    populations and ``all``)."""
    if int(options.n_shuffles) < 1:
        raise AnalyzeError(f"--shuffles must be at least 1, got {int(options.n_shuffles)}")
    if int(options.more_than_utterances) < 0:
        raise AnalyzeError(f"--more-than-utterances must be 0 or more, got "
                           f"{int(options.more_than_utterances)} (the report lists the "
                           "couplings significant on more than that many utterances)")
    if options.method not in SHUFFLE_METHODS:
        raise AnalyzeError(f"unknown shuffle method {options.method!r}; choose from "
                           f"{', '.join(SHUFFLE_METHODS)}")
    for name in options.pair or ():
        if name not in populations:
            raise AnalyzeError(
                f"population {name!r} (--pair) does not exist in this model; its "
                f"populations are {', '.join(populations)} ('input' is the waveform "
                "brought to the spike rate, 'all' every spiking population together)")
    for band in options.pair_bands or ():
        if band not in EEG_BANDS:
            raise AnalyzeError(f"unknown band {band!r} (--pair-bands); known bands: "
                               f"{', '.join(EEG_BANDS)}")
