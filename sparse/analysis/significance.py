"""PAC significance over populations x band pairs x utterances, with shuffles and
multiple-comparison corrections.

Typical use (``populations`` from a model run, ``control`` from the same model fed noise)::

    options = PacOptions(n_shuffles=1000, seed=0)           # sparse.analysis.options
    results = pac_table(populations, 2.0, options)
    control = pac_table(control_populations, 2.0, options, label="noise control", stream=1)
    text = format_pac_report(results, control)        # sparse.analysis.report

A population is a list with one array per utterance: ``(T_u, N)`` spikes (its population
signal, the z-scored mean over neurons, is analysed) or a ``(T_u,)`` continuous signal already
at the spike rate (e.g. the input waveform through :func:`~sparse.analysis.signals.
waveform_to_rate`; it is z-scored). All populations must have the same number of utterances and
the same ``T_u`` per utterance. With ``include_all`` the spiking populations are pooled into one
more population, ``"all"``.

For each utterance, every (phase population, phase band) is tested against every (amplitude
population, amplitude band) with Tort's MI and Canolty's MVL; the shuffles of an utterance use
the same cut points in every test (so that the max-statistic over band pairs is a proper
permutation max). Problems never stop the analysis: a population without spikes, a band above
Nyquist or a band whose filter is longer than the utterance is skipped, logged and listed in
``results.skipped``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..deprecation import renamed_fields, renamed_keywords
from .options import PacOptions
from .pac import N_BINS, phase_binned_amplitude
from .shuffles import (
    METRICS,
    default_margin,
    null_p_value,
    null_zscore,
    observed_pac,
    shuffle_cuts,
    shuffled_pac,
)
from .signals import (
    DEFAULT_CYCLES,
    Band,
    SignalTooShortError,
    as_numpy,
    band_analytic,
    band_pair,
    edge_samples,
    filter_length,
    longest_filter,
    nyquist_message,
    require_samples,
    resolve_bands,
    samples_needed,
    sampling_rate,
    zscore,
)
from .stats import benjamini_hochberg, max_statistic_p

logger = logging.getLogger("sparse.analysis")

ALL_POPULATIONS = "all"
CORRECTIONS: tuple[str, ...] = ("none", "fdr", "maxstat")
#: The original SPARSE code's criterion: a test counts when MI and MVL both have an
#: uncorrected p below this (strictly).
JOINT_THRESHOLD = 0.05
KEY_COLUMNS: tuple[str, ...] = (
    "utterance",
    "utterance_id",
    "n_steps",
    "n_analysed",
    "phase_population",
    "phase_band",
    "amplitude_population",
    "amplitude_band",
)
METRIC_FIELDS: tuple[str, ...] = ("", "_null_mean", "_null_std", "_z", "_p", "_p_fdr",
                                  "_p_maxstat")


@dataclass(frozen=True)
class SkipRecord:
    """Something that was not analysed, and why. Empty fields mean 'all'."""

    utterance: str
    population: str
    band: str
    reason: str


@dataclass
class PACResults:
    """Results table of :func:`pac_significance`: one row per test.

    ``columns`` maps each name of :attr:`column_names` to an array of length ``len(self)``:
    the keys of :data:`KEY_COLUMNS`, then for each metric ``m`` in ``("mi", "mvl")``: ``m``
    (observed value), ``m_null_mean``, ``m_null_std``, ``m_z``, ``m_p``
    (uncorrected), ``m_p_fdr`` (Benjamini-Hochberg adjusted over all tests) and
    ``m_p_maxstat`` (max-statistic over the band pairs of the population pair).
    """

    columns: dict[str, np.ndarray]
    skipped: list[SkipRecord] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    utterance_ids: list[str] = field(default_factory=list)
    label: str = "model"

    def __len__(self) -> int:
        return int(len(self.columns["utterance"]))

    @property
    def column_names(self) -> list[str]:
        """Column order of the table (and of its CSV)."""
        return list(self.columns)

    @property
    def alpha(self) -> float:
        """Significance level the analysis was run with."""
        return float(self.params.get("alpha", 0.05))

    def p_column(self, metric: str = "mi", correction: str = "fdr") -> np.ndarray:
        """The p-values of ``metric`` under ``correction`` ('none', 'fdr' or 'maxstat')."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
        if correction not in CORRECTIONS:
            raise ValueError(
                f"unknown correction {correction!r}; choose from {', '.join(CORRECTIONS)}"
            )
        suffix = {"none": "_p", "fdr": "_p_fdr", "maxstat": "_p_maxstat"}[correction]
        return self.columns[metric + suffix]

    def significant(
        self, metric: str = "mi", correction: str = "fdr", alpha: float | None = None
    ) -> np.ndarray:
        """Boolean mask (len(self),): the tests with p <= alpha (the run's alpha by default)."""
        a = self.alpha if alpha is None else float(alpha)
        p = self.p_column(metric, correction)
        return np.nan_to_num(p, nan=np.inf) <= a

    def joint_significant(self, threshold: float = JOINT_THRESHOLD) -> np.ndarray:
        """Boolean mask (len(self),) of the original SPARSE code's joint criterion: MI and MVL
        both with an uncorrected p strictly below ``threshold``, no correction for the number
        of tests (NaN counts as not significant)."""
        t = float(threshold)
        mi = np.nan_to_num(self.columns["mi_p"], nan=np.inf)
        mvl = np.nan_to_num(self.columns["mvl_p"], nan=np.inf)
        return (mi < t) & (mvl < t)

    def rows(self) -> list[dict[str, Any]]:
        """The table as a list of dicts (plain Python scalars)."""
        names = self.column_names
        cols = [self.columns[n].tolist() for n in names]
        return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]


def _raw(x: Any) -> np.ndarray:
    """An array view of ``x`` without changing its dtype (spike arrays stay bool/uint8/float32
    until one utterance's population signal is computed)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_utterance_list(name: str, value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray) or hasattr(value, "detach"):
        arr = _raw(value)
        if arr.ndim in (1, 2):
            return [arr]
        if arr.ndim == 3:
            return [a for a in arr]
        raise ValueError(f"population {name!r}: expected a list of (T, N) arrays, got {arr.shape}")
    out = []
    for i, item in enumerate(value):
        arr = _raw(item)
        if arr.ndim not in (1, 2):
            raise ValueError(
                f"population {name!r}, utterance {i}: expected (time, neurons) spikes or a "
                f"(time,) signal, got shape {arr.shape}"
            )
        out.append(arr)
    return out


def _prepare(
    populations: Mapping[str, Any], include_all: bool
) -> tuple[dict[str, list[np.ndarray]], int]:
    if not populations:
        raise ValueError("no populations given")
    pops = {str(k): _as_utterance_list(str(k), v) for k, v in populations.items()}
    n_utt = {len(v) for v in pops.values()}
    if len(n_utt) != 1:
        counts = ", ".join(f"{k}: {len(v)}" for k, v in pops.items())
        raise ValueError(f"populations have different numbers of utterances ({counts})")
    n = n_utt.pop()
    if n == 0:
        raise ValueError("populations hold no utterances")
    for u in range(n):
        lengths = {k: v[u].shape[0] for k, v in pops.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"utterance {u}: populations have different numbers of time steps {lengths}; "
                "bring every signal to the spike rate and length first (waveform_to_rate)"
            )
    if include_all:
        if ALL_POPULATIONS in pops:
            raise ValueError(f"a population is already called {ALL_POPULATIONS!r}")
        spiking = [k for k, v in pops.items() if v[0].ndim == 2]
        if len(spiking) >= 2:
            pops[ALL_POPULATIONS] = [pooled_spikes([pops[k][u] for k in spiking])
                                     for u in range(n)]
    return pops, n


def pooled_spikes(spikes: Sequence[np.ndarray]) -> np.ndarray:
    """All populations together: the mean spike count over every neuron of ``spikes``
    (a list of (T, N_i) arrays), as a (T, 1) float64 array; its population signal is that of
    the populations side by side."""
    total = sum(np.asarray(x).sum(axis=1, dtype=np.float64) for x in spikes)
    width = sum(np.asarray(x).shape[1] for x in spikes)
    return np.asarray(total, dtype=np.float64)[:, None] / max(width, 1)


def _signal(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 2:
        if arr.shape[1] == 0:
            raise ValueError(f"population {name!r} has no neurons")
        return zscore(arr.mean(axis=1, dtype=np.float64), what=f"population {name!r}")
    return zscore(arr.astype(np.float64), what=f"signal {name!r}")


def _analytic_bands(
    stacked: np.ndarray,
    fs: float,
    bands: list[Band],
    n_cycles: float,
    trim_edges: bool,
    workers: int | None,
) -> tuple[list[Band], list[np.ndarray], list[np.ndarray], list[tuple[Band, str]]]:
    """Filter ``stacked`` (n_pops, T) in each band that the length allows; Hilbert phase and
    amplitude (n_pops, T) per kept band, and (band, message) for the skipped ones."""
    n_steps = stacked.shape[-1]
    kept, phases, amps, skipped = [], [], [], []
    for band in bands:
        taps = filter_length(band, fs, n_cycles)
        need = samples_needed(taps, trim_edges)
        if n_steps < need:
            margins = " and its edge margins" if trim_edges else ""
            skipped.append((band, f"band {band} needs {need} samples ({need / fs:.2f} s: its "
                                  f"{taps}-tap filter{margins}), the utterance has {n_steps}: "
                                  "skipped for this utterance"))
            continue
        try:
            ph, am = band_analytic(stacked, fs, band, n_cycles, workers=workers)
        except SignalTooShortError as err:  # pragma: no cover - guarded by the check above
            skipped.append((band, f"{err}: skipped for this utterance"))
            continue
        kept.append(band)
        phases.append(ph)
        amps.append(am)
    return kept, phases, amps, skipped


@renamed_keywords(n_surrogates="n_shuffles")
def pac_significance(
    populations: Mapping[str, Any],
    dt_ms: float,
    options: PacOptions | None = None,
    *,
    utterance_ids: Sequence[str] | None = None,
    label: str = "model",
    stream: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **option_fields: Any,
) -> PACResults:
    """Shuffle-tested PAC of all population pairs x phase bands x amplitude bands x
    utterances: :func:`pac_table` with its options given as keywords.

    ``option_fields`` are fields of :class:`~sparse.analysis.options.PacOptions`
    (``phase_bands``, ``amplitude_bands``, ``pairs``, ``include_all``, ``n_shuffles``,
    ``method``, ``seed``, ``min_shift_fraction``, ``trim_edges``, ``alpha``, ``n_bins``,
    ``n_cycles``, ``workers``) replacing those of ``options`` (default: the defaults).
    """
    try:
        opts = dataclasses.replace(options or PacOptions(), **option_fields)
    except TypeError:
        known = [f.name for f in dataclasses.fields(PacOptions)]
        unknown = sorted(set(option_fields) - set(known))
        raise TypeError(f"pac_significance: unknown option(s) {', '.join(unknown)}; known: "
                        f"{', '.join(known)}") from None
    return pac_table(populations, dt_ms, opts, utterance_ids=utterance_ids, label=label,
                     stream=stream, progress=progress)


def pac_table(
    populations: Mapping[str, Any],
    dt_ms: float,
    options: PacOptions,
    *,
    utterance_ids: Sequence[str] | None = None,
    label: str = "model",
    stream: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> PACResults:
    """Shuffle-tested PAC of all population pairs x phase bands x amplitude bands x
    utterances.

    Args:
        populations: ``{name: [per-utterance (T_u, N) spikes or (T_u,) signal]}``.
        dt_ms: simulation step in ms (the signals are sampled at ``1000 / dt_ms`` Hz).
        options: the bands, pairs and shuffle test (see
            :class:`~sparse.analysis.options.PacOptions`).
        utterance_ids: names of the utterances for the tables (default their indices).
        label: name of this set in reports ("model", "noise control").
        stream: shuffle cut points of utterance ``u`` come from
            ``default_rng([options.seed, stream, u])``; use another ``stream`` for a control
            set.
        progress: called as ``progress(done, total)`` after each utterance.

    Returns:
        :class:`PACResults`, one row per test that could run, plus the skipped items.
    """
    options.check()
    fs = sampling_rate(dt_ms)
    pops, n_utt = _prepare(populations, options.include_all)
    names = list(pops)
    ids = _utterance_names(utterance_ids, n_utt)
    wanted = _wanted_pairs(options.pairs, names)
    skipped: list[SkipRecord] = []

    def skip(utt: str, pop: str, band: str, reason: str) -> None:
        skipped.append(SkipRecord(utt, pop, band, reason))
        where = ", ".join(x for x in (f"utterance {utt}" if utt else "", pop, band) if x)
        logger.warning("PAC: %s: %s", where or "all", reason)

    pb_all = resolve_bands(options.phase_bands)
    ab_all = resolve_bands(options.amplitude_bands)
    for band in pb_all + ab_all:
        if band.high >= fs / 2:
            skip("", "", band.name, nyquist_message(band, fs))
    bands = ([b for b in pb_all if b.high < fs / 2], [b for b in ab_all if b.high < fs / 2])
    rows: dict[str, list[Any]] = {k: [] for k in KEY_COLUMNS}
    for m in METRICS:
        for suffix in METRIC_FIELDS:
            rows[m + suffix] = []
    for u in range(n_utt):
        tests = _utterance_tests({k: v[u] for k, v in pops.items()}, ids[u], fs, bands,
                                 options, (stream, u), skip)
        if tests is not None:
            _append_rows(rows, u, ids[u], tests, wanted)
        if progress is not None:
            progress(u + 1, n_utt)
    return PACResults(columns=_columns(rows, options.alpha), skipped=skipped,
                      params=_params(options, dt_ms, fs, pb_all, ab_all, names, stream, n_utt),
                      utterance_ids=ids, label=label)


def _utterance_names(utterance_ids: Sequence[str] | None, n_utt: int) -> list[str]:
    if utterance_ids is None:
        return [str(u) for u in range(n_utt)]
    ids = [str(x) for x in utterance_ids]
    if len(ids) != n_utt:
        raise ValueError(f"{len(ids)} utterance ids for {n_utt} utterances")
    return ids


def _wanted_pairs(pairs: Sequence[tuple[str, str]] | None, names: list[str]
                  ) -> set[tuple[str, str]] | None:
    if pairs is None:
        return None
    wanted = {(str(a), str(b)) for a, b in pairs}
    unknown = {p for pair in wanted for p in pair} - set(names)
    if unknown:
        raise ValueError(f"pairs name unknown populations {sorted(unknown)}; known: {names}")
    return wanted


@dataclass
class _UtteranceTests:
    """The tests of one utterance: the populations with a signal, the bands that fit, the
    step counts and ``{metric: {field suffix: (n_pop, n_pb, n_pop, n_ab)}}``."""

    names: list[str]
    phase_bands: list[Band]
    amplitude_bands: list[Band]
    n_steps: int
    n_used: int
    values: dict[str, dict[str, np.ndarray]]


def _utterance_tests(
    arrays: dict[str, np.ndarray],
    uid: str,
    fs: float,
    bands: tuple[list[Band], list[Band]],
    options: PacOptions,
    key: tuple[int, int],
    skip: Callable[[str, str, str, str], None],
) -> _UtteranceTests | None:
    """Every test of one utterance (``arrays``: ``{population: (T,) or (T, N)}``), or
    ``None`` when no population has a signal or no band pair fits. ``key`` is (stream,
    utterance) of the shuffle cut points, shared by all tests of the utterance so that the
    max-statistic over band pairs is a proper permutation max."""
    n_steps = next(iter(arrays.values())).shape[0]
    signals: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        try:
            signals[name] = _signal(arr, name)
        except ValueError as err:
            skip(uid, name, "", f"{err}: skipped")
    if not signals:
        return None
    sig_names = list(signals)
    stacked = np.stack([signals[k] for k in sig_names])  # (n_pops, T)
    n_cycles, trim = options.n_cycles, options.trim_edges
    pbands, pphase, _, msgs = _analytic_bands(stacked, fs, bands[0], n_cycles, trim,
                                              options.workers)
    abands, _, aamp, msgs2 = _analytic_bands(stacked, fs, bands[1], n_cycles, trim,
                                             options.workers)
    for band, msg in msgs + msgs2:
        skip(uid, "", band.name, msg)
    if not pbands or not abands:
        return None
    n_pop, n_pb, n_ab = len(sig_names), len(pbands), len(abands)
    # drop the edges where the slowest filter saw padding (common to all band pairs, so
    # that one set of cut points serves the whole max-statistic family)
    edge = edge_samples(longest_filter(pbands + abands, fs, n_cycles)) if trim else 0
    window = slice(edge, n_steps - edge)
    n_used = n_steps - 2 * edge
    # phase series ordered (population, band), amplitude series likewise
    ph = np.stack(pphase, axis=1)[..., window].reshape(n_pop * n_pb, n_used)
    am = np.stack(aamp, axis=1)[..., window].reshape(n_pop * n_ab, n_used)
    cuts = shuffle_cuts(n_used, options.n_shuffles, options.seed, key,
                          margin=default_margin(n_used, options.method,
                                                options.min_shift_fraction))
    obs = observed_pac(ph, am, options.n_bins)
    sur = shuffled_pac(ph, am, cuts, options.method, options.n_bins, workers=options.workers)
    values = {m: _metric_values(obs[m].reshape(n_pop, n_pb, n_pop, n_ab),
                                sur[m].reshape(n_pop, n_pb, n_pop, n_ab, -1))
              for m in METRICS}
    return _UtteranceTests(sig_names, pbands, abands, n_steps, n_used, values)


def _metric_values(o: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    """Observed ``o`` (n_pop, n_pb, n_pop, n_ab) against shuffles ``s`` (..., S): value,
    null mean, std, z, p and the max-statistic p over the band pairs of each population
    pair, by column suffix."""
    n_pop, n_pb, _, n_ab = o.shape
    p = null_p_value(o, s)
    z, mean, std = null_zscore(o, s)
    # families: (phase pop, amp pop) x all band pairs
    of = o.transpose(0, 2, 1, 3).reshape(n_pop, n_pop, n_pb * n_ab)
    sf = s.transpose(0, 2, 1, 3, 4).reshape(n_pop, n_pop, n_pb * n_ab, -1)
    pmax = max_statistic_p(of, sf).reshape(n_pop, n_pop, n_pb, n_ab)
    return {"": o, "_null_mean": mean, "_null_std": std, "_z": z, "_p": p,
            "_p_maxstat": pmax.transpose(0, 2, 1, 3)}


def _append_rows(rows: dict[str, list[Any]], u: int, uid: str, tests: _UtteranceTests,
                 wanted: set[tuple[str, str]] | None) -> None:
    """One row per (phase population, phase band, amplitude population, amplitude band) of
    an utterance, for the pairs ``wanted`` (``None``: all)."""
    for i, pp in enumerate(tests.names):
        for j, ap in enumerate(tests.names):
            if wanted is not None and (pp, ap) not in wanted:
                continue
            for bi, pband in enumerate(tests.phase_bands):
                for bj, aband in enumerate(tests.amplitude_bands):
                    rows["utterance"].append(u)
                    rows["utterance_id"].append(uid)
                    rows["n_steps"].append(tests.n_steps)
                    rows["n_analysed"].append(tests.n_used)
                    rows["phase_population"].append(pp)
                    rows["phase_band"].append(pband.name)
                    rows["amplitude_population"].append(ap)
                    rows["amplitude_band"].append(aband.name)
                    for m in METRICS:
                        for suffix, arr in tests.values[m].items():
                            rows[m + suffix].append(float(arr[i, bi, j, bj]))
                        rows[m + "_p_fdr"].append(np.nan)


def _columns(rows: dict[str, list[Any]], alpha: float) -> dict[str, np.ndarray]:
    """The rows as typed columns, with the FDR-adjusted p over all tests."""
    columns: dict[str, np.ndarray] = {}
    for key, vals in rows.items():
        if key in ("utterance", "n_steps", "n_analysed"):
            columns[key] = np.asarray(vals, dtype=np.int64)
        elif key in KEY_COLUMNS:
            columns[key] = np.asarray(vals, dtype=object).astype(str)
        else:
            columns[key] = np.asarray(vals, dtype=np.float64)
    for m in METRICS:
        columns[m + "_p_fdr"] = benjamini_hochberg(columns[m + "_p"], alpha)[0]
    return columns


def _params(options: PacOptions, dt_ms: float, fs: float, pb_all: list[Band],
            ab_all: list[Band], names: list[str], stream: int, n_utt: int) -> dict[str, Any]:
    """The settings stored with the results (reports and JSON)."""
    return {
        "dt_ms": float(dt_ms),
        "sampling_rate_hz": fs,
        "phase_bands": [f"{b.name}:{b.low:g}-{b.high:g}" for b in pb_all],
        "amplitude_bands": [f"{b.name}:{b.low:g}-{b.high:g}" for b in ab_all],
        "populations": names,
        "n_shuffles": int(options.n_shuffles),
        "method": options.method,
        "seed": int(options.seed),
        "stream": int(stream),
        "min_shift_fraction": float(options.min_shift_fraction),
        "trim_edges": bool(options.trim_edges),
        "alpha": float(options.alpha),
        "n_bins": int(options.n_bins),
        "n_cycles": float(options.n_cycles),
        "n_utterances": n_utt,
    }


@renamed_fields(surrogates="shuffled_pac")
@dataclass
class PairTest:
    """One (phase signal, amplitude signal, band pair) test with everything a figure needs.

    Shapes: ``phase``, ``amplitude`` (T_used,), the interior left after edge trimming;
    ``binned_amplitude`` (n_bins,) mean amplitude per phase bin (NaN when empty);
    ``bin_centres`` (n_bins,) in radians; ``shuffled_pac`` ``{metric: (S,)}``, the PAC of the
    S shuffles (the null distribution); ``observed``, ``p`` ``{metric: float}``.
    """

    phase_band: Band
    amplitude_band: Band
    phase: np.ndarray
    amplitude: np.ndarray
    binned_amplitude: np.ndarray
    bin_centres: np.ndarray
    observed: dict[str, float]
    shuffled_pac: dict[str, np.ndarray]
    p: dict[str, float]
    method: str


@renamed_keywords(n_surrogates="n_shuffles")
def pac_pair_test(
    phase_signal: Any,
    amplitude_signal: Any,
    dt_ms: float,
    phase_band: str | Band = "theta",
    amplitude_band: str | Band = "low_gamma",
    *,
    n_shuffles: int = 1000,
    method: str = "cut_reverse",
    seed: int = 0,
    min_shift_fraction: float = 0.0,
    trim_edges: bool = True,
    n_bins: int = N_BINS,
    n_cycles: float = DEFAULT_CYCLES,
) -> PairTest:
    """PAC of one pair of (T,) signals (or (T, N) spikes, reduced to their z-scored population
    signal) in one band pair, with the null distribution, for the PAC figure.

    Raises ``ValueError`` (with the reason) when a band cannot be analysed on these signals.
    ``trim_edges`` drops the ends as :func:`pac_significance` does.
    """
    fs = sampling_rate(dt_ms)
    xs = []
    for name, x in (("phase", phase_signal), ("amplitude", amplitude_signal)):
        xs.append(_signal(as_numpy(x), name))
    if xs[0].shape != xs[1].shape:
        raise ValueError(f"signals differ in length: {xs[0].shape} vs {xs[1].shape}")
    pb, ab = band_pair(phase_band, amplitude_band, fs)
    phase = band_analytic(xs[0], fs, pb, n_cycles)[0]
    amp = band_analytic(xs[1], fs, ab, n_cycles)[1]
    if trim_edges:  # as pac_significance: drop where the filters saw the padding
        taps = longest_filter((pb, ab), fs, n_cycles)
        require_samples(phase.shape[0], taps, True, f"a {taps}-tap filter")
        edge = edge_samples(taps)
        phase, amp = phase[edge : phase.shape[0] - edge], amp[edge : amp.shape[0] - edge]
    cuts = shuffle_cuts(phase.shape[0], n_shuffles, seed,
                        margin=default_margin(phase.shape[0], method, min_shift_fraction))
    obs = observed_pac(phase, amp, n_bins)
    sur = shuffled_pac(phase, amp, cuts, method, n_bins)
    binned, centres = phase_binned_amplitude(phase, amp, n_bins)
    return PairTest(
        phase_band=pb,
        amplitude_band=ab,
        phase=phase,
        amplitude=amp,
        binned_amplitude=binned,
        bin_centres=centres,
        observed={m: float(v) for m, v in obs.items()},
        shuffled_pac=sur,
        p={m: float(null_p_value(obs[m], sur[m])) for m in METRICS},
        method=method,
    )
