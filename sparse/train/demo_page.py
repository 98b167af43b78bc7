"""The page of a ``sparse demo`` run: ``index.html`` at the root of the run folder (and the
same in ``summary.md``), built only from the files the run wrote (``evaluation/test.json``,
``analysis/pac_results.json``, ``analysis/analysis_summary.json``, ``metrics.jsonl``,
``summary.json``), so that every number on it is one of theirs. Links are relative: the
folder opens in a browser from disk, wherever it is moved.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CouplingRow", "coupling_rows", "write_demo_pages"]

#: rows of the coupling table on the page (the full list is in analysis/pac_analysis.txt)
MAX_TABLE_ROWS = 30

_FILES = [
    ("analysis/index.html", "the full analysis: parameters, weights, rasters, rates, band "
     "signals, every PAC figure and the report"),
    ("analysis/pac_analysis.txt", "the PAC report (settings, counts, couplings, skipped tests)"),
    ("analysis/pac_results.csv", "every PAC test, one row each (speech and noise control)"),
    ("analysis/pac_results.json", "the same, with the settings and the couplings"),
    ("evaluation/test.txt", "the test evaluation, readable"),
    ("evaluation/test.json", "the test evaluation: metrics, per-neuron firing rates, "
     "NeuroBench metrics per layer"),
    ("metrics.jsonl", "one record per epoch"),
    ("config.yaml", "the resolved config"),
    ("versions.json", "software versions"),
    ("summary.json", "timings and the results above"),
    ("summary.md", "this page as Markdown"),
    ("checkpoints/best.pt", "the best checkpoint (sparse evaluate, sparse analyze)"),
]


@dataclass(frozen=True)
class CouplingRow:
    """One coupling of the table: its populations and bands, and on how many utterances it is
    significant (MI, FDR) for speech and for the noise control, of how many tested."""

    phase_population: str
    phase_band: str
    amplitude_population: str
    amplitude_band: str
    speech: tuple[int, int]
    noise: tuple[int, int]


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"the demo page needs {path}, which the run did not write")
    return json.loads(path.read_text())


def _couplings(set_obj: dict[str, Any]) -> dict[tuple[str, ...], tuple[int, int]]:
    return {(c["phase_population"], c["phase_band"], c["amplitude_population"],
             c["amplitude_band"]): (int(c["significant_utterances"]), int(c["tested_utterances"]))
            for c in set_obj["couplings_mi_fdr"]}


def coupling_rows(pac_results: dict[str, Any]) -> list[CouplingRow]:
    """The couplings significant after FDR (MI) on at least one utterance of speech or of the
    noise control, from a ``pac_results.json`` object; most utterances beyond the noise
    control first."""
    sets = {s["label"]: _couplings(s) for s in pac_results["sets"]}
    speech = sets.get("model", {})
    noise = sets.get("noise control", {})
    rows = [CouplingRow(*key, speech.get(key, (0, 0)), noise.get(key, (0, 0)))
            for key in sorted(set(speech) | set(noise))
            if speech.get(key, (0, 0))[0] or noise.get(key, (0, 0))[0]]
    return sorted(rows, key=lambda r: (-(r.speech[0] - r.noise[0]), -r.speech[0]))


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f} %"


def _facts(run_dir: Path, cfg: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Everything the page says, read from the run's files (and the task's wording)."""
    from .plots import read_log
    from .tasks import task_of

    task = task_of(cfg["task"])
    if task.demo is None:
        raise ValueError(f"task '{task.name}' has no demo page")
    test = _read_json(run_dir / "evaluation" / "test.json")
    analysis = _read_json(run_dir / "analysis" / "analysis_summary.json")
    pac = _read_json(run_dir / "analysis" / "pac_results.json")
    counts = {s["label"]: s["summary"] for s in pac["sets"]}
    return {"task": task, "cfg": cfg, "test": test, "chance": summary["chance"],
            "analysis": analysis, "counts": counts, "rows": coupling_rows(pac),
            "log": read_log(run_dir / "metrics.jsonl"), "timings": summary["timings"],
            "demo": task.demo, "unit": task.unit}


def _figure(analysis: dict[str, Any], prefix: str) -> str | None:
    """The path (relative to the run folder) of the analysis figure whose name starts with
    ``prefix``, if there is one."""
    for name, rel in analysis["figures"].items():
        if name.startswith(prefix):
            return f"analysis/{rel}"
    return None


def _headline(f: dict[str, Any]) -> tuple[str, str, str]:
    """(what is measured, its value, the sentence on chance) of the run."""
    test, chance, text = f["test"], f["chance"], f["demo"]
    return (text.headline, _pct(test[f["task"].metric_name]),
            f"{text.chance} ({chance['how']}): {_pct(chance['value'])}")


def _band_notes(f: dict[str, Any]) -> list[str]:
    """Bands that no analysed utterance can test at this step, and why."""
    from ..analysis.report import untestable_bands

    durations = f["analysis"].get("durations_s") or [0.0]
    return untestable_bands(float(f["analysis"]["dt_ms"]), max(durations))


def _intro(f: dict[str, Any]) -> str:
    cfg = f["cfg"]
    m = cfg["model"]
    return f["demo"].intro.format(layers=m["cortex_layer_sizes"],
                                  dt=cfg["features"]["hop_ms"])


def _coupling_summary(f: dict[str, Any]) -> str:
    c = f["counts"]
    parts = []
    for label, name in (("model", "speech"), ("noise control", "noise")):
        if label in c:
            s = c[label]
            parts.append(f"{name}: {s['significant']['mi']['fdr']} of {s['n_tests']} tests "
                         f"significant on {s['n_utterances_tested']} {f['unit']}")
    a = f["analysis"]
    # an analysis written before the rename holds the count as "n_surrogates"
    n_shuffles = a["n_shuffles"] if "n_shuffles" in a else a["n_surrogates"]
    return (f"Tort's modulation index (MI) of every population pair x phase band x amplitude "
            f"band on each of {len(a['utterances'])} test {f['unit']} (the longest), "
            f"{n_shuffles} shuffles per test, Benjamini-Hochberg FDR at 0.05; "
            + "; ".join(parts) + ".")


def _efficiency_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) of the NeuroBench numbers of the test evaluation; none when the
    evaluation holds none."""
    eff = f["test"].get("efficiency")
    if not eff:
        return []
    ops = eff["synaptic_operations"]
    return [
        ("model footprint", f"{eff['footprint_bytes'] / 1024:.1f} KiB "
                            f"({eff['footprint_bytes']} bytes)"),
        ("connection sparsity", f"{eff['connection_sparsity']:.4f}"),
        ("activation sparsity", f"{eff['activation_sparsity']:.4f}"),
        (f"effective MACs per {f['unit'][:-1]}", f"{ops['effective_macs']:,.0f}"),
        (f"effective ACs per {f['unit'][:-1]}", f"{ops['effective_acs']:,.0f}"),
        (f"dense synaptic operations per {f['unit'][:-1]}", f"{ops['dense']:,.0f}"),
    ]


_EFFICIENCY_NOTE = ("The NeuroBench metrics of the tested model, counted as the neurobench "
                    "package counts them, averaged over the test set; every layer's count is "
                    "in evaluation/test.json.")


# ------------------------------------------------------------------------------------ HTML


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _html_table(f: dict[str, Any]) -> list[str]:
    rows = f["rows"]
    if not rows:
        return ["<p id='no-couplings'>No coupling is significant after FDR, for speech or for "
                "the noise control.</p>"]
    unit = f["unit"]
    out = ["<table id='couplings'><thead><tr><th>phase population</th><th>phase band</th>"
           "<th>amplitude population</th><th>amplitude band</th>"
           f"<th>{unit} significant: speech</th><th>{unit} significant: noise</th>"
           "</tr></thead><tbody>"]
    for r in rows[:MAX_TABLE_ROWS]:
        out.append("<tr>" + "".join(f"<td>{_esc(x)}</td>" for x in (
            r.phase_population, r.phase_band, r.amplitude_population, r.amplitude_band,
            f"{r.speech[0]} / {r.speech[1]}", f"{r.noise[0]} / {r.noise[1]}")) + "</tr>")
    out.append("</tbody></table>")
    if len(rows) > MAX_TABLE_ROWS:
        out.append(f"<p>... and {len(rows) - MAX_TABLE_ROWS} more couplings: see "
                   "<a href='analysis/pac_analysis.txt'>pac_analysis.txt</a>.</p>")
    return out


def _img(rel: str | None, alt: str) -> list[str]:
    if rel is None:
        return [f"<p>({_esc(alt)}: not drawn, see the notes below)</p>"]
    return [f"<p><img src='{_esc(rel)}' alt='{_esc(alt)}'></p>"]


def _html(f: dict[str, Any], files: list[tuple[str, str]]) -> str:
    what, value, chance = _headline(f)
    a = f["analysis"]
    title = "sparse demo: " + f["demo"].title
    p = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
         f"<title>{_esc(title)}</title>",
         "<style>body{font-family:sans-serif;max-width:1150px;margin:auto;padding:1em;"
         "line-height:1.4}img{max-width:100%;border:1px solid #ccc}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
         ".big{font-size:1.5em}</style></head><body>",
         f"<h1>{_esc(title)}</h1>", f"<p>{_esc(_intro(f))}</p>",
         f"<p class='big'>{_esc(what)}: <b id='headline'>{_esc(value)}</b> on "
         f"<span id='test-count'>{f['test']['utterances']}</span> {f['unit']} of held-out "
         f"speakers</p><p id='chance'>{_esc(chance)}</p>"]
    notes = _band_notes(f)
    if notes:
        p.append("<h2 id='untestable'>Bands this run cannot test, and why</h2><ul>")
        p += [f"<li>{_esc(n)}</li>" for n in notes]
        p.append("</ul>")
    p += ["<h2>Phase-amplitude coupling: speech against noise</h2>",
          f"<p id='pac-summary'>{_esc(_coupling_summary(f))}</p>", *_html_table(f)]
    fig = a.get("pac_figure") or {}
    if fig:
        p.append(f"<h3>The strongest coupling</h3><p id='pac-choice'>{_esc(fig['phase_band'])} "
                 f"phase of {_esc(fig['phase_population'])} x {_esc(fig['amplitude_band'])} "
                 f"amplitude of {_esc(fig['amplitude_population'])} on "
                 f"{_esc(fig['utterance'])}: {_esc(fig['why'])}.</p>")
    p += (_img(_figure(a, "pac pair"), "PAC figure")
          + _img(_figure(a, "phase-amplitude map"), "phase-frequency amplitude map")
          + _img(_figure(a, "comodulogram"), "comodulogram"))
    raster = _figure(a, "raster ")
    p += [f"<h2>One {f['unit'][:-1]}: spikes of every population"
          + f["demo"].raster_note + "</h2>",
          *_img(raster, "spike raster")]
    p += ["<h2>Firing rates per population (test set)</h2>",
          *_img("evaluation/rates.png", "firing rates")]
    efficiency = _efficiency_rows(f)
    if efficiency:
        p += ["<h2>Efficiency (NeuroBench metrics, test set)</h2>",
              f"<p>{_esc(_EFFICIENCY_NOTE)}</p>",
              "<table id='efficiency'><thead><tr><th>metric</th><th>value</th></tr></thead>"
              "<tbody>"]
        p += [f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in efficiency]
        p.append("</tbody></table>")
    if f["task"].is_classifier:  # its evaluation drew the confusion matrix
        p += ["<h2>Confusion matrix</h2>", *_img("evaluation/confusion.png", "confusion")]
    p += ["<h2>Learning curves</h2>", *_img("curves.png", "learning curves"),
          *_html_epochs(f)]
    skipped = a.get("skipped_explanations") or {}
    if skipped or a.get("messages"):
        p.append("<h2 id='skipped'>Tests that could not run, and what would make them run</h2>")
        for label, items in skipped.items():
            p.append(f"<p>{_esc('speech' if label == 'model' else label)}:</p><ul>")
            p += [f"<li>{_esc(x)}</li>" for x in items]
            p.append("</ul>")
        if a.get("messages"):
            p.append("<p>notes of the analysis:</p><ul>")
            p += [f"<li>{_esc(x)}</li>" for x in a["messages"]]
            p.append("</ul>")
    p += ["<h2>More</h2><ul>"]
    p += [f"<li><a href='{_esc(rel)}'>{_esc(rel)}</a>: {_esc(what_)}</li>"
          for rel, what_ in files]
    p += ["</ul>", f"<p id='timings'>{_esc(_timings(f))}</p>", "</body></html>"]
    return "\n".join(p) + "\n"


def _epoch_cells(f: dict[str, Any], r: dict[str, Any]) -> list[str]:
    metric = _pct(r.get(f"valid_{f['task'].metric_name}", float("nan")))
    return [str(r["epoch"]), f"{r['train_loss']:.4f}", f"{r['valid_loss']:.4f}", metric,
            f"{r['lr']:.1e}", f"{r['epoch_seconds']:.0f}"]


def _epoch_head(f: dict[str, Any]) -> list[str]:
    return ["epoch", "train loss", "valid loss",
            f["demo"].valid_metric, "lr", "seconds"]


def _html_epochs(f: dict[str, Any]) -> list[str]:
    if not f["log"]:
        return []
    out = ["<table id='epochs'><thead><tr>" + "".join(f"<th>{h}</th>" for h in _epoch_head(f))
           + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in _epoch_cells(f, r)) + "</tr>"
            for r in f["log"]]
    return out + ["</tbody></table>"]


def _timings(f: dict[str, Any]) -> str:
    t = f["timings"]
    return (f"time: synthesis {t.get('synth_seconds', 0):.0f} s, features "
            f"{t.get('data_seconds', 0):.0f} s, training {t.get('train_seconds', 0):.0f} s, test "
            f"{t.get('test_seconds', 0):.0f} s, analysis {t.get('analysis_seconds', 0):.0f} s, "
            f"total {t.get('demo_seconds', 0):.0f} s")


# -------------------------------------------------------------------------------- Markdown


def _markdown(f: dict[str, Any], files: list[tuple[str, str]]) -> str:
    what, value, chance = _headline(f)
    a = f["analysis"]
    lines = ["# sparse demo", "", _intro(f), "",
             f"**{what}: {value}** on {f['test']['utterances']} {f['unit']} of held-out "
             f"speakers; {chance}.", ""]
    notes = _band_notes(f)
    if notes:
        lines += ["## Bands this run cannot test, and why", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Phase-amplitude coupling: speech against noise", "", _coupling_summary(f), ""]
    if f["rows"]:
        unit = f["unit"]
        lines += ["| phase population | phase band | amplitude population | amplitude band | "
                  f"{unit} significant: speech | {unit} significant: noise |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r.phase_population} | {r.phase_band} | {r.amplitude_population} | "
                  f"{r.amplitude_band} | {r.speech[0]} / {r.speech[1]} | "
                  f"{r.noise[0]} / {r.noise[1]} |" for r in f["rows"][:MAX_TABLE_ROWS]]
        if len(f["rows"]) > MAX_TABLE_ROWS:
            lines.append(f"\n... and {len(f['rows']) - MAX_TABLE_ROWS} more couplings in "
                         "`analysis/pac_analysis.txt`.")
    else:
        lines.append("No coupling is significant after FDR, for speech or for the noise control.")
    lines.append("")
    for name, alt in (("pac pair", "PAC figure"),
                      ("phase-amplitude map", "phase-frequency amplitude map"),
                      ("comodulogram", "comodulogram"),
                      ("raster ", "spike raster")):
        rel = _figure(a, name)
        if rel:
            lines += [f"![{alt}]({rel})", ""]
    lines += ["![firing rates](evaluation/rates.png)", ""]
    efficiency = _efficiency_rows(f)
    if efficiency:
        lines += ["## Efficiency (NeuroBench metrics, test set)", "", _EFFICIENCY_NOTE, "",
                  "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in efficiency] + [""]
    lines += ["![learning curves](curves.png)", ""]
    if f["log"]:
        lines += ["| " + " | ".join(_epoch_head(f)) + " |",
                  "|" + " --- |" * len(_epoch_head(f))]
        lines += ["| " + " | ".join(_epoch_cells(f, r)) + " |" for r in f["log"]]
        lines.append("")
    skipped = a.get("skipped_explanations") or {}
    if skipped:
        lines += ["## Tests that could not run, and what would make them run", ""]
        for label, items in skipped.items():
            lines += [f"{'speech' if label == 'model' else label}:", ""]
            lines += [f"- {x}" for x in items] + [""]
    lines += ["## Files", ""] + [f"- [`{rel}`]({rel}): {w}" for rel, w in files]
    lines += ["", _timings(f), ""]
    return "\n".join(lines)


def write_demo_pages(run_dir: Path, cfg: dict[str, Any], summary: dict[str, Any],
                     corpus_root: Path | None = None) -> dict[str, Path]:
    """Write ``index.html`` and ``summary.md`` at the root of ``run_dir``; return their
    paths (``html``, ``markdown``).

    Raises:
        FileNotFoundError: a file the page is built from is missing (the run is incomplete).
    """
    run_dir = Path(run_dir)
    f = _facts(run_dir, cfg, summary)
    files = [(rel, what) for rel, what in _FILES
             if (run_dir / rel).exists() or rel == "summary.md"]
    if corpus_root is not None:
        f["corpus"] = str(corpus_root)
    paths = {"html": run_dir / "index.html", "markdown": run_dir / "summary.md"}
    paths["markdown"].write_text(_markdown(f, files))
    paths["html"].write_text(_html(f, files))
    return paths
