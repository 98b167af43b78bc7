"""Text report (``pac_analysis.txt``) and machine-readable results (CSV, JSON) of the PAC
significance analysis. Every file is written atomically: to a temporary file in the same
folder, then moved over the target with :func:`os.replace`, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# atomic_write_bytes stays importable from here, where it lived before sparse.atomic
from ..atomic import write_bytes as atomic_write_bytes  # noqa: F401
from ..atomic import write_text as atomic_write_text
from .shuffles import METRICS
from .signals import (
    AMPLITUDE_BANDS,
    DEFAULT_CYCLES,
    EEG_BANDS,
    PHASE_BANDS,
    Band,
    filter_length,
)
from .significance import CORRECTIONS, JOINT_THRESHOLD, PACResults

METRIC_NAMES = {"mi": "Tort modulation index (MI)", "mvl": "Canolty mean vector length (MVL)"}
CORRECTION_NAMES = {
    "none": "uncorrected",
    "fdr": "Benjamini-Hochberg FDR",
    "maxstat": "max-statistic over band pairs",
}
_SHORT = {"none": "raw", "fdr": "FDR", "maxstat": "maxstat"}
JOINT_NAME = (f"MI and MVL both p < {JOINT_THRESHOLD:g}, uncorrected (the original SPARSE code's "
              "criterion)")
METHOD_NAMES = {
    "cut_reverse": "cut the amplitude series at a random point and reverse each part",
    "circular_shift": "circular shift of the amplitude series by a random lag",
}


# ---------------------------------------------------------------------------------- counts


def summary_counts(results: PACResults) -> dict[str, Any]:
    """Counts of a results set: ``n_tests``, ``n_utterances`` (given), ``n_utterances_tested``,
    ``n_skipped``, ``significant[metric][correction]`` (tests with p <= alpha) and
    ``significant_joint`` (tests that meet the original SPARSE code's joint criterion, MI and
    MVL both p < ``joint_threshold``, uncorrected)."""
    sig = {
        m: {c: int(results.significant(m, c).sum()) for c in CORRECTIONS} for m in METRICS
    }
    return {
        "label": results.label,
        "n_tests": len(results),
        "n_utterances": int(results.params.get("n_utterances", len(results.utterance_ids))),
        "n_utterances_tested": int(np.unique(results.columns["utterance"]).size),
        "n_skipped": len(results.skipped),
        "alpha": results.alpha,
        "significant": sig,
        "significant_joint": int(results.joint_significant().sum()),
        "joint_threshold": JOINT_THRESHOLD,
    }


CouplingKey = tuple[str, str, str, str]


def coupling_counts(
    results: PACResults, metric: str = "mi", correction: str = "fdr",
    mask: np.ndarray | None = None,
) -> dict[CouplingKey, tuple[int, int]]:
    """For each coupling ``(phase population, phase band, amplitude population, amplitude
    band)``: ``(utterances where it is significant, utterances where it was tested)``.
    Significant means p <= alpha for ``metric`` under ``correction``, or, when ``mask``
    (len(results),) is given, that mask (e.g. :meth:`PACResults.joint_significant`)."""
    sig = results.significant(metric, correction) if mask is None else np.asarray(mask, bool)
    cols = results.columns
    keys = zip(cols["phase_population"], cols["phase_band"], cols["amplitude_population"],
               cols["amplitude_band"], strict=True)
    out: dict[CouplingKey, list[int]] = {}
    for key, s in zip(keys, sig, strict=True):
        k = tuple(str(x) for x in key)
        entry = out.setdefault(k, [0, 0])  # type: ignore[arg-type]
        entry[0] += int(s)
        entry[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def frequent_couplings(
    counts: dict[CouplingKey, tuple[int, int]], more_than: int
) -> list[tuple[CouplingKey, int, int]]:
    """``(coupling, significant, tested)`` of the couplings of ``counts`` (from
    :func:`coupling_counts`) significant on more than ``more_than`` utterances, most frequent
    first (ties by name)."""
    hits = [(k, n_sig, n) for k, (n_sig, n) in counts.items() if n_sig > int(more_than)]
    return sorted(hits, key=lambda x: (-x[1], x[0]))


def significant_by_utterance(results: PACResults, metric: str = "mi") -> list[dict[str, Any]]:
    """Per utterance of ``results`` (in order): ``utterance_id``, ``n_tests`` and the tests
    that meet the original SPARSE code's joint criterion, each ``{coupling, mi_p, mvl_p,
    fdr}`` (``fdr``: its ``metric`` is also significant after the FDR correction)."""
    cols = results.columns
    joint = results.joint_significant()
    fdr = results.significant(metric, "fdr")
    out = []
    for u, uid in enumerate(results.utterance_ids):
        rows = np.flatnonzero(cols["utterance"] == u)
        hits = [{"coupling": [str(cols[c][r]) for c in ("phase_population", "phase_band",
                                                        "amplitude_population",
                                                        "amplitude_band")],
                 "mi_p": float(cols["mi_p"][r]), "mvl_p": float(cols["mvl_p"][r]),
                 "fdr": bool(fdr[r])} for r in rows if joint[r]]
        out.append({"utterance_id": str(uid), "n_tests": int(rows.size), "joint": hits})
    return out


def strongest_coupling(
    results: PACResults,
    control: PACResults | None = None,
    metric: str = "mi",
    correction: str = "fdr",
    *,
    phase_population: str | None = None,
    amplitude_population: str | None = None,
    phase_band: str | None = None,
    amplitude_band: str | None = None,
) -> tuple[CouplingKey, int] | None:
    """The coupling to show in the PAC figure, and the utterance (its index in
    ``results.utterance_ids``) to show it on.

    Among the couplings that match the given populations and bands (``None`` matches any),
    the one significant on the most utterances in excess of the noise control (ties: on the
    most utterances, then by name); the utterance is the one where its p-value is smallest
    (ties: the larger z-score). ``None`` when no matching test is significant.
    """
    counts = coupling_counts(results, metric, correction)
    base = coupling_counts(control, metric, correction) if control is not None else {}
    wanted = (phase_population, phase_band, amplitude_population, amplitude_band)
    candidates = [
        k for k, (n_sig, _) in counts.items()
        if n_sig > 0 and all(w is None or w == v for w, v in zip(wanted, k, strict=True))
    ]
    if not candidates:
        return None
    key = min(candidates, key=lambda k: (-(counts[k][0] - base.get(k, (0, 0))[0]),
                                         -counts[k][0], k))
    cols = results.columns
    rows = np.flatnonzero(
        (cols["phase_population"] == key[0]) & (cols["phase_band"] == key[1])
        & (cols["amplitude_population"] == key[2]) & (cols["amplitude_band"] == key[3]))
    p = results.p_column(metric, correction)[rows]
    z = np.nan_to_num(cols[f"{metric}_z"][rows], nan=-np.inf)
    best = rows[np.lexsort((-z, p))[0]]
    return key, int(cols["utterance"][best])


# ------------------------------------------------------------------- what cannot be tested


def band_limit(band: Band, dt_ms: float, n_cycles: float = DEFAULT_CYCLES,
               trim_edges: bool = True) -> dict[str, Any]:
    """What a PAC test in ``band`` needs at a step of ``dt_ms`` ms: ``max_dt_ms`` (its upper
    edge below the Nyquist frequency) and ``min_seconds`` (its filter, ``n_cycles`` cycles of
    the low edge, plus as much again for the edge margins when ``trim_edges``)."""
    if not dt_ms > 0:
        raise ValueError(f"dt_ms must be positive, got {dt_ms}")
    fs = 1000.0 / dt_ms
    taps = filter_length(band, fs, n_cycles)
    need = 2 * taps - 1 if trim_edges else taps
    return {"band": band.name, "low": band.low, "high": band.high, "taps": taps,
            "max_dt_ms": 500.0 / band.high, "above_nyquist": band.high >= fs / 2.0,
            "min_seconds": need / fs, "n_cycles": n_cycles, "trim_edges": trim_edges}


def _band_sentence(lim: dict[str, Any], dt_ms: float, seconds: float | None) -> str | None:
    """Why ``lim``'s band cannot be tested at ``dt_ms`` on utterances of ``seconds`` (None:
    the length is not known) and what would make it run; ``None`` when it can be."""
    fs = 1000.0 / dt_ms
    name = f"{lim['band']} ({lim['low']:g}-{lim['high']:g} Hz)"
    if lim["above_nyquist"]:
        return (f"{name}: its upper edge is at or above the Nyquist frequency {fs / 2:g} Hz of a "
                f"{dt_ms:g} ms step ({fs:g} samples/s), so no test can see it. To test it: a "
                f"step below {lim['max_dt_ms']:.3g} ms (features.hop_ms; 2 ms = 500 Hz, "
                "Nyquist 250 Hz).")
    if seconds is not None and seconds < lim["min_seconds"]:
        margins = ", plus as much again for the edge margins" if lim["trim_edges"] else ""
        return (f"{name}: a band's filter spans at least {lim['n_cycles']:g} cycles of its low "
                f"edge ({lim['low']:g} Hz; here {lim['taps']} taps at {fs:g} Hz{margins}): "
                f"{lim['min_seconds']:.2f} s, and the utterances last {seconds:.2f} s. To test "
                f"it: utterances of at least {lim['min_seconds']:.2f} s.")
    return None


def untestable_bands(dt_ms: float, seconds: float | None = None,
                     n_cycles: float = DEFAULT_CYCLES, trim_edges: bool = True) -> list[str]:
    """One sentence per phase or amplitude band that a step of ``dt_ms`` ms and utterances of
    ``seconds`` cannot test: why, and what would make it run (empty: every band can)."""
    out = []
    for name in dict.fromkeys([*PHASE_BANDS, *AMPLITUDE_BANDS]):
        band = Band(name, *EEG_BANDS[name])
        sentence = _band_sentence(band_limit(band, dt_ms, n_cycles, trim_edges), dt_ms, seconds)
        if sentence:
            out.append(sentence)
    return out


def skip_explanations(results: PACResults) -> list[str]:
    """Every kind of skipped item of ``results``, grouped, with the reason and what would make
    the test run: bands above Nyquist, bands too slow for some utterances (how many), silent
    populations (on how many utterances), anything else with its own reason."""
    p = results.params
    dt_ms = float(p.get("dt_ms", 1000.0 / float(p.get("sampling_rate_hz", 1000.0))))
    n_cycles = float(p.get("n_cycles", DEFAULT_CYCLES))
    trim = bool(p.get("trim_edges", True))
    short: dict[str, set[str]] = {}
    silent: dict[str, set[str]] = {}
    nyquist: list[str] = []
    other: dict[str, int] = {}
    for rec in results.skipped:
        if rec.band and not rec.utterance and rec.band in EEG_BANDS:
            nyquist.append(rec.band)
        elif rec.band and rec.utterance and rec.band in EEG_BANDS:
            short.setdefault(rec.band, set()).add(rec.utterance)
        elif rec.population and not rec.band:
            silent.setdefault(rec.population, set()).add(rec.utterance)
        else:
            other[rec.reason] = other.get(rec.reason, 0) + 1
    out = []
    for name in dict.fromkeys(nyquist):
        lim = band_limit(Band(name, *EEG_BANDS[name]), dt_ms, n_cycles, trim)
        out.append(f"not tested at all: {_band_sentence(lim, dt_ms, None)}")
    for name, utts in short.items():
        lim = band_limit(Band(name, *EEG_BANDS[name]), dt_ms, n_cycles, trim)
        margins = ", plus as much again for the edge margins" if trim else ""
        out.append(
            f"skipped on {len(utts)} utterance(s): {name} ({lim['low']:g}-{lim['high']:g} Hz) "
            f"needs {lim['min_seconds']:.2f} s (its filter spans at least {n_cycles:g} cycles of "
            f"its low edge: {lim['taps']} taps{margins}) and these utterances are shorter. To "
            f"test it: utterances of at least {lim['min_seconds']:.2f} s.")
    for name, utts in silent.items():
        out.append(
            f"population {name} fired no spike on {len(utts)} utterance(s): it has no "
            "population signal there, so its tests on them were skipped. To test it: a model "
            "whose population fires on these utterances (train longer, or raise the firing-rate "
            "regulariser's lower bound, regularizer.r_min_hz).")
    for reason, n in other.items():
        out.append(f"{n} item(s): {reason}")
    return out


# ---------------------------------------------------------------------------------- text


def _pct(k: int, n: int) -> str:
    return f"{k} / {n} ({100.0 * k / n:.1f}%)" if n else f"{k} / {n}"


def _frac(kn: tuple[int, int]) -> str:
    return f"{kn[0]} / {kn[1]}"


def _coupling_name(key: Sequence[str]) -> str:
    return f"{key[1]} phase of {key[0]} -> {key[3]} amplitude of {key[2]}"


def format_pac_report(
    results: PACResults,
    control: PACResults | None = None,
    metric: str = "mi",
    correction: str = "fdr",
    max_skipped: int = 50,
    more_than: int = 1,
) -> str:
    """The text report of a PAC significance analysis, in the spirit of the original SPARSE
    code's ``pac_analysis.txt``: the settings; the number of significant tests per metric and
    correction and under the original's joint criterion (MI and MVL both p < 0.05,
    uncorrected); which couplings hold on how many utterances (for ``metric`` under
    ``correction`` and under the joint criterion, most frequent first), with the noise
    control beside the model; the couplings significant on more than ``more_than``
    utterances; per utterance, the couplings that meet the joint criterion; and what was
    skipped and why."""
    sets = [results] + ([control] if control is not None else [])
    lines = _report_settings(results)
    lines += _report_summary(sets)
    counts = [coupling_counts(s, metric, correction) for s in sets]
    joint = [coupling_counts(s, mask=s.joint_significant()) for s in sets]
    lines += _report_couplings(sets, counts, joint, metric, correction)
    lines += _report_frequent(sets, counts, joint, metric, correction, more_than)
    lines += _report_per_utterance(sets, metric)
    lines += _report_skipped(sets, max_skipped)
    return "\n".join(lines)


def _report_settings(results: PACResults) -> list[str]:
    """The report's settings block."""
    p = results.params
    lines = ["Phase-amplitude coupling (PAC) significance", "=" * 44, ""]
    lines.append(f"sampling rate:      {p.get('sampling_rate_hz', float('nan')):g} Hz "
                 f"(dt = {p.get('dt_ms', float('nan')):g} ms)")
    lines.append(f"populations:        {', '.join(p.get('populations', []))}")
    lines.append(f"phase bands:        {', '.join(p.get('phase_bands', []))} Hz")
    lines.append(f"amplitude bands:    {', '.join(p.get('amplitude_bands', []))} Hz")
    lines.append(f"measures:           {METRIC_NAMES['mi']}, {p.get('n_bins', 18)} phase bins; "
                 f"{METRIC_NAMES['mvl']}")
    method = p.get("method", "")
    lines.append(f"shuffles:           {p.get('n_shuffles', 0)} per test, {method} "
                 f"({METHOD_NAMES.get(method, method)}), random state {p.get('seed', 0)}")
    lines.append("p-value:            p = (k + 1) / (n + 1), k = shuffles >= observed")
    lines.append(f"significance level: {results.alpha:g}")
    lines.append("corrections:        Benjamini-Hochberg FDR over all tests of a set; "
                 "max-statistic over the band pairs of each population pair")
    trim = ("; PAC measured where no filter saw the padding at the ends"
            if p.get("trim_edges", False) else "")
    lines.append(f"filters:            zero-phase FIR, at least {p.get('n_cycles', 3):g} cycles of "
                 f"each band's low edge{trim}")
    lines.append("note:               a population's coupling with itself (and with 'all') also "
                 "reflects its spike\n                    transients (a sparse, skewed signal "
                 "couples its own bands); read it against the noise control")
    lines.append("")

    return lines


def _report_summary(sets: list[PACResults]) -> list[str]:
    """Significant tests per metric and correction, and under the joint criterion."""
    lines: list[str] = []
    summaries = [summary_counts(s) for s in sets]
    width = 30
    header = f"{'':<{width}}" + "".join(f"{s['label']:>26}" for s in summaries)
    lines += ["Summary", "-------", header]
    lines.append(f"{'utterances tested':<{width}}" + "".join(
        f"{s['n_utterances_tested']:>14} / {s['n_utterances']:<9}" for s in summaries))
    lines.append(f"{'tests':<{width}}" + "".join(f"{s['n_tests']:>26}" for s in summaries))
    for m in METRICS:
        for c in CORRECTIONS:
            label = f"significant {m.upper()}, {c}"
            lines.append(f"{label:<{width}}" + "".join(
                f"{_pct(s['significant'][m][c], s['n_tests']):>26}" for s in summaries))
    label = f"joint: MI and MVL p < {JOINT_THRESHOLD:g}"
    lines.append(f"{label:<{width}}" + "".join(
        f"{_pct(s['significant_joint'], s['n_tests']):>26}" for s in summaries))
    lines.append(f"{'skipped items':<{width}}" + "".join(
        f"{s['n_skipped']:>26}" for s in summaries))
    lines.append(f"(joint: {JOINT_NAME};")
    lines.append(" no correction for the number of tests: read it beside the FDR counts and the "
                 "noise control)")
    lines.append("")

    return lines


def _report_couplings(sets: list[PACResults], counts: list[dict], joint: list[dict],
                      metric: str, correction: str) -> list[str]:
    """Which couplings hold on how many utterances, most frequent first."""
    lines: list[str] = []
    keys = sorted(
        set().union(*[c.keys() for c in counts]),
        key=lambda k: (-counts[0].get(k, (0, 0))[0], k),
    )
    title = (f"Couplings: utterances with significant {metric.upper()} "
             f"({CORRECTION_NAMES[correction]}, p <= {sets[0].alpha:g}) / utterances tested")
    lines += [title, "-" * len(title),
              f"(the columns '... joint': the same count under the joint criterion, "
              f"{JOINT_NAME})"]
    head = (f"{'phase population':<18}{'phase band':<12}{'amplitude population':<22}"
            f"{'amplitude band':<16}"
            + "".join(f"{s.label + ' ' + _SHORT[correction]:>20}" for s in sets)
            + "".join(f"{s.label + ' joint':>22}" for s in sets))
    lines.append(head)
    for k in keys:
        cells = "".join(f"{_frac(c.get(k, (0, 0))):>20}" for c in counts)
        cells += "".join(f"{_frac(c.get(k, (0, 0))):>22}" for c in joint)
        lines.append(f"{k[0]:<18}{k[1]:<12}{k[2]:<22}{k[3]:<16}{cells}")
    if not keys:
        lines.append("(no tests could run)")
    lines.append("")

    return lines


def _report_frequent(sets: list[PACResults], counts: list[dict], joint: list[dict],
                     metric: str, correction: str, more_than: int) -> list[str]:
    """The couplings significant on more than ``more_than`` utterances, per criterion."""
    lines: list[str] = []
    title = f"Couplings significant on more than {more_than} utterance(s)"
    lines += [title, "-" * len(title)]
    criteria = ((f"{metric.upper()}, {CORRECTION_NAMES[correction]}", counts),
                (f"joint criterion (MI and MVL p < {JOINT_THRESHOLD:g}, uncorrected)", joint))
    for i, s in enumerate(sets):
        for name, table in criteria:
            hits = frequent_couplings(table[i], more_than)
            lines.append(f"{s.label}, {name}: {len(hits)} coupling(s)")
            lines += [f"  {_coupling_name(k)}: {n_sig} of {n} utterances"
                      for k, n_sig, n in hits]
    lines.append("")

    return lines


def _report_per_utterance(sets: list[PACResults], metric: str) -> list[str]:
    """Per utterance, the couplings that meet the joint criterion."""
    lines: list[str] = []
    for s in sets:
        title = f"Significant couplings per utterance ({s.label})"
        lines += [title, "-" * len(title),
                  f"joint criterion: {JOINT_NAME}; [FDR] = its {metric.upper()} is also "
                  f"significant after {CORRECTION_NAMES['fdr']}"]
        for entry in significant_by_utterance(s, metric):
            if entry["n_tests"] == 0:
                lines.append(f"{entry['utterance_id']}: not tested (see the skipped items)")
                continue
            lines.append(f"{entry['utterance_id']}: {len(entry['joint'])} of "
                         f"{entry['n_tests']} tested couplings")
            lines += [f"  {_coupling_name(h['coupling'])} (MI p = {h['mi_p']:.3g}, MVL p = "
                      f"{h['mvl_p']:.3g})" + (" [FDR]" if h["fdr"] else "")
                      for h in entry["joint"]]
        lines.append("")

    return lines


def _report_skipped(sets: list[PACResults], max_skipped: int) -> list[str]:
    """What was skipped and why (explained, then listed)."""
    lines: list[str] = []
    for s in sets:
        if not s.skipped:
            continue
        head = f"Why tests were skipped ({s.label}), and what would make them run"
        lines += [head, "-" * len(head)]
        lines += [f"- {x}" for x in skip_explanations(s)]
        lines.append("")
    for s in sets:
        if not s.skipped:
            continue
        lines += [f"Skipped ({s.label}): {len(s.skipped)}", "-" * 20]
        for rec in s.skipped[:max_skipped]:
            where = ", ".join(x for x in (
                f"utterance {rec.utterance}" if rec.utterance else "all utterances",
                f"population {rec.population}" if rec.population else "",
                f"band {rec.band}" if rec.band else "") if x)
            lines.append(f"{where}: {rec.reason}")
        if len(s.skipped) > max_skipped:
            lines.append(f"... and {len(s.skipped) - max_skipped} more (see the JSON results)")
        lines.append("")
    return lines


# ---------------------------------------------------------------------------------- files


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def criterion_columns(results: PACResults) -> dict[str, np.ndarray]:
    """The per-test verdicts written beside the p-values (0/1 int arrays):
    ``significant_mi_fdr`` (MI p <= alpha after the FDR correction) and
    ``significant_joint`` (the original SPARSE code's joint criterion, MI and MVL both
    p < 0.05, uncorrected)."""
    return {"significant_mi_fdr": results.significant("mi", "fdr").astype(np.int64),
            "significant_joint": results.joint_significant().astype(np.int64)}


def results_csv_text(*sets: PACResults) -> str:
    """CSV text of one or more results sets, one row per test, a first column ``set`` with
    the set's label, then the table's columns and :func:`criterion_columns`; empty cells for
    NaN."""
    if not sets:
        raise ValueError("no results to write")
    names = sets[0].column_names
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["set", *names, *criterion_columns(sets[0])])
    for s in sets:
        if s.column_names != names:
            raise ValueError("results sets have different columns")
        cols = [s.columns[n].tolist() for n in names]
        cols += [v.tolist() for v in criterion_columns(s).values()]
        for vals in zip(*cols, strict=True):
            writer.writerow([s.label] + [
                "" if isinstance(v, float) and not math.isfinite(v)
                else (repr(v) if isinstance(v, float) else v)
                for v in vals
            ])
    return buf.getvalue()


def write_results_csv(path: str | os.PathLike[str], *sets: PACResults) -> Path:
    """Write :func:`results_csv_text` to ``path`` atomically."""
    return atomic_write_text(path, results_csv_text(*sets))


def _coupling_dicts(rows: Any) -> list[dict[str, Any]]:
    return [{"phase_population": k[0], "phase_band": k[1], "amplitude_population": k[2],
             "amplitude_band": k[3], "significant_utterances": n_sig, "tested_utterances": n}
            for k, n_sig, n in rows]


def results_json_obj(*sets: PACResults, more_than: int = 1) -> dict[str, Any]:
    """JSON-ready dict: for each set its label, parameters, summary counts, couplings (under
    MI with FDR and under the original SPARSE code's joint criterion), the couplings
    significant on more than ``more_than`` utterances under each, the jointly significant
    couplings of each utterance, skipped items and the full table column by column with
    :func:`criterion_columns` (NaN as null)."""
    out: list[dict[str, Any]] = []
    for s in sets:
        fdr = coupling_counts(s)
        joint = coupling_counts(s, mask=s.joint_significant())
        columns = {n: [_plain(v) for v in s.columns[n].tolist()] for n in s.column_names}
        columns.update({n: v.tolist() for n, v in criterion_columns(s).items()})
        out.append({
            "label": s.label,
            "params": {k: _plain(v) for k, v in s.params.items()},
            "summary": summary_counts(s),
            "couplings_mi_fdr": _coupling_dicts((k, *v) for k, v in sorted(fdr.items())),
            "couplings_joint": _coupling_dicts((k, *v) for k, v in sorted(joint.items())),
            "more_than_utterances": {
                "n": int(more_than),
                "mi_fdr": _coupling_dicts(frequent_couplings(fdr, more_than)),
                "joint": _coupling_dicts(frequent_couplings(joint, more_than)),
            },
            "joint_by_utterance": significant_by_utterance(s),  # finite p: plain JSON
            "skipped": [vars(r) for r in s.skipped],
            "utterance_ids": list(s.utterance_ids),
            "columns": columns,
        })
    return {"format": "sparse.pac_significance/1", "sets": out}


def write_results_json(path: str | os.PathLike[str], *sets: PACResults,
                       more_than: int = 1) -> Path:
    """Write :func:`results_json_obj` to ``path`` atomically (strict JSON: no NaN)."""
    text = json.dumps(results_json_obj(*sets, more_than=more_than), allow_nan=False, indent=1)
    return atomic_write_text(path, text + "\n")


def write_pac_report(
    path: str | os.PathLike[str],
    results: PACResults,
    control: PACResults | None = None,
    **kwargs: Any,
) -> Path:
    """Write :func:`format_pac_report` to ``path`` atomically."""
    return atomic_write_text(path, format_pac_report(results, control, **kwargs) + "\n")


def write_all(
    out_dir: str | os.PathLike[str],
    results: PACResults,
    control: PACResults | None = None,
    stem: str = "pac",
    more_than: int = 1,
) -> dict[str, Path]:
    """Write ``{stem}_analysis.txt``, ``{stem}_results.csv`` and ``{stem}_results.json`` into
    ``out_dir``; returns their paths by kind ('text', 'csv', 'json'). ``more_than``: the
    report and the JSON list the couplings significant on more than that many utterances."""
    out = Path(out_dir)
    sets: Sequence[PACResults] = [results] + ([control] if control is not None else [])
    return {
        "text": write_pac_report(out / f"{stem}_analysis.txt", results, control,
                                 more_than=more_than),
        "csv": write_results_csv(out / f"{stem}_results.csv", *sets),
        "json": write_results_json(out / f"{stem}_results.json", *sets, more_than=more_than),
    }
