"""Stage 4 of the analysis pipeline: the reports and the page that shows everything.

:func:`write_reports` writes, into the analysis folder: ``pac_analysis.txt``,
``pac_results.csv`` and ``pac_results.json`` (:func:`~sparse.analysis.report.write_all`),
``parameters.txt``, ``analysis_summary.json`` and ``index.html`` (last: it links the rest).
Every file is written atomically (a reader never sees half a file).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_text as atomic_write_text
from .collect import Activity
from .coupling import CouplingResults
from .figures import Figures
from .options import ReportOptions
from .report import format_pac_report, skip_explanations, write_all
from .significance import PACResults

__all__ = ["analysis_summary", "write_index_html", "write_reports"]


def write_reports(activity: Activity, coupling: CouplingResults, figures: Figures,
                  folder: str | Path, options: ReportOptions | None = None) -> dict[str, Path]:
    """Write the reports of an analysis into ``folder`` (which holds ``figures``' files).

    Args:
        activity: the encoder's activity (utterances, step, parameter table).
        coupling: the PAC significance of the speech and of the noise control.
        figures: what :func:`~sparse.analysis.figures.render_figures` drew into ``folder``.
        folder: the analysis folder.
        options: the report's coupling lists and the page's title (default: the defaults).

    Returns:
        Every file of the analysis, name -> path: ``figures.files`` first, then ``text``,
        ``csv``, ``json``, ``parameters``, ``summary`` and ``html``.
    """
    options = options or ReportOptions()
    if int(options.more_than_utterances) < 0:
        raise ValueError(f"more_than_utterances must be 0 or more, got "
                         f"{options.more_than_utterances}")
    folder = Path(folder)
    files = dict(figures.files)
    files.update(write_all(folder, coupling.model, coupling.control,
                           more_than=int(options.more_than_utterances)))
    files["parameters"] = atomic_write_text(folder / "parameters.txt",
                                            activity.parameter_table + "\n")
    summary = analysis_summary(activity, coupling, figures, folder, options)
    files["summary"] = atomic_write_text(folder / "analysis_summary.json",
                                         json.dumps(summary, indent=2) + "\n")
    files["html"] = write_index_html(
        folder, options.title, activity.parameter_table, coupling.model, coupling.control,
        figures, files, int(options.more_than_utterances))
    return files


def analysis_summary(activity: Activity, coupling: CouplingResults, figures: Figures,
                     folder: Path, options: ReportOptions) -> dict[str, Any]:
    """The contents of ``analysis_summary.json``: utterance ids and durations (s), skipped
    items, dt_ms (the step in ms), shuffle settings, the PAC figure's coupling, rate tables, figure
    paths relative to ``folder``, notes."""
    params = coupling.model.params
    return {
        "utterances": activity.ids,
        "durations_s": [np.asarray(u.waveform).size / u.sample_rate
                        for u in activity.utterances],
        "skipped_explanations": {r.label: skip_explanations(r)
                                 for r in (coupling.model, coupling.control)
                                 if r is not None and r.skipped},
        "dt_ms": activity.dt_ms, "n_shuffles": params.get("n_shuffles"),
        "method": params.get("method"), "seed": params.get("seed"),
        "pac_figure": figures.pac_figure,
        "more_than_utterances": int(options.more_than_utterances),
        "firing_rates": figures.firing_rates,
        "figures": {k: str(v.relative_to(folder)) for k, v in figures.figures.items()},
        "messages": figures.messages,
    }


def _skipped_html(sets: list[PACResults | None]) -> list[str]:
    """The section that says which PAC tests were skipped, why, and what would make them run
    (empty when nothing was skipped)."""
    sets = [r for r in sets if r is not None and r.skipped]
    if not sets:
        return []
    parts = ["<h2 id='skipped'>Tests that could not run, and what would make them run</h2>"]
    for r in sets:
        parts.append(f"<p>{html.escape(r.label)}: {len(r.skipped)} skipped item(s)</p><ul>")
        parts += [f"<li>{html.escape(x)}</li>" for x in skip_explanations(r)]
        parts.append("</ul>")
    return parts


def _pac_figure_html(fig: Mapping[str, Any]) -> list[str]:
    """Which coupling the PAC figure and comodulogram show, and why."""
    if not fig:
        return []
    return [f"<p>PAC figure, phase-frequency amplitude map, comodulogram and band "
            f"overlay: {html.escape(fig['phase_band'])} phase "
            f"of {html.escape(fig['phase_population'])} x "
            f"{html.escape(fig['amplitude_band'])} amplitude of "
            f"{html.escape(fig['amplitude_population'])} on "
            f"{html.escape(fig['utterance'])}: {html.escape(fig['why'])}</p>"]


def write_index_html(folder: Path, title: str, parameter_table: str,
                     results: PACResults | None, control: PACResults | None,
                     figures: Figures, files: Mapping[str, Path],
                     more_than_utterances: int = 1) -> Path:
    """``<folder>/index.html``: one page that shows every figure and table of the analysis
    (``files``: the data files written so far, linked from the page)."""
    report = (format_pac_report(results, control, more_than=more_than_utterances)
              if results is not None else "")
    parts = [
        "<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "img{max-width:100%;border:1px solid #ccc;margin:0.5em 0}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *_skipped_html([results, control]),
        "<h2>Parameters</h2>", f"<pre>{html.escape(parameter_table)}</pre>",
        "<h2>Figures</h2>",
    ]
    for name, path in figures.figures.items():
        rel = path.relative_to(folder).as_posix()
        parts.append(f"<h3>{html.escape(name)}</h3><img src='{html.escape(rel)}' "
                     f"alt='{html.escape(name)}'>")
    parts.append("<h2>Phase-amplitude coupling</h2>")
    parts += _pac_figure_html(figures.pac_figure)
    parts += ["<p>Machine-readable results: "
              + ", ".join(f"<a href='{html.escape(p.name)}'>{html.escape(p.name)}</a>"
                          for k, p in files.items()
                          if k in ("csv", "json", "phase_amplitude_map")) + "</p>",
              f"<pre>{html.escape(report)}</pre>"]
    if figures.messages:
        parts += ["<h2>Notes</h2><ul>"]
        parts += [f"<li>{html.escape(m)}</li>" for m in figures.messages]
        parts += ["</ul>"]
    parts.append("</body></html>")
    return atomic_write_text(folder / "index.html", "\n".join(parts) + "\n")
