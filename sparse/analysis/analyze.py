"""The analysis of a trained model on utterances of its corpus: what ``sparse analyze`` and
the analysis step of ``sparse demo`` run.

- :func:`analyze_model`: an encoder and its front end (whatever trained them: ``sparse
  train``, a SpeechBrain recipe, your own loop) on the longest or the listed utterances of a
  dataset, through the pipeline (:func:`~sparse.analysis.run.run_pipeline`);
- :func:`analyze_checkpoint`: the same for a checkpoint written by ``sparse train``, whose
  model, front end and corpus are rebuilt by :mod:`sparse.restore`;
- :func:`analyze_run`: :func:`analyze_checkpoint` on a run folder with the defaults, printing
  what it found (the demo's step);
- :func:`print_summary`: the lines the command prints at the end.

Options are an :class:`~sparse.analysis.options.AnalyzeOptions` (or its fields as keywords).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from ..deprecation import renamed_keywords
from ..restore import RESTORE_ERRORS, RestoredRun, folder_lock, open_dataset, restore_run
from .options import AnalyzeError, AnalyzeOptions, check_options
from .run import AnalysisOutputs, run_pipeline
from .selection import select_utterances
from .signals import AMPLITUDE_BANDS, EEG_BANDS, PHASE_BANDS
from .significance import ALL_POPULATIONS

__all__ = ["ANALYZE_ERRORS", "AnalyzeError", "analyse_run", "analyze_checkpoint",
           "analyze_model", "analyze_run", "nyquist_note", "population_names", "print_summary"]

#: What :func:`analyze_checkpoint` raises on bad input, each with a message that names the
#: problem (``sparse analyze`` prints it and exits with status 2).
ANALYZE_ERRORS: tuple[type[Exception], ...] = (AnalyzeError, *RESTORE_ERRORS)


def population_names(encoder: Any) -> list[str]:
    """What ``--pair`` may name for ``encoder``: ``input``, its spiking populations and, with
    two or more of them, ``all``."""
    names = list(getattr(encoder, "population_names", []))
    return ["input", *names, *([ALL_POPULATIONS] if len(names) >= 2 else [])]


def nyquist_note(dt_ms: float) -> str | None:
    """A sentence on the bands a step of ``dt_ms`` cannot resolve (``None`` if none)."""
    nyquist = 1000.0 / dt_ms / 2.0
    lost = [b for b in (*PHASE_BANDS, *AMPLITUDE_BANDS) if EEG_BANDS[b][1] >= nyquist]
    if not lost:
        return None
    return (f"at dt = {dt_ms:g} ms the populations are sampled at {1000.0 / dt_ms:g} Hz "
            f"(Nyquist {nyquist:g} Hz): the band(s) {', '.join(lost)} reach above it and are "
            "skipped; train with a smaller frame hop (e.g. 2 ms = 500 Hz: features.hop_ms in "
            "sparse configs, hop_length_ms in the SpeechBrain recipes) to test "
            "coupling to gamma amplitude.")


@renamed_keywords(n_surrogates="n_shuffles")
def analyze_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path | None = None,
    *,
    data: str | None = None,
    split: str = "test",
    device: str = "cpu",
    options: AnalyzeOptions | None = None,
    log: Any = None,
    **option_fields: Any,
) -> dict[str, Any]:
    """Analyse a trained model on utterances of its corpus; see ``sparse analyze --help``.

    Args:
        checkpoint: a checkpoint file or run folder written by ``sparse train``.
        out_dir: output folder (default ``<run folder>/analysis``).
        data: corpus folder or ``"synth"`` (default: the one the model was trained on).
        split: the split the utterances come from.
        device: where the model runs.
        options: which utterances and how (default: the defaults); ``option_fields``
            (fields of :class:`~sparse.analysis.options.AnalyzeOptions`) replace its fields.
        log: ``print``-like callable for status lines (default: none).

    Returns:
        The summary dict of :func:`analyze_model`.

    Raises:
        One of :data:`ANALYZE_ERRORS`, with a clear message naming what is wrong.
    """
    opts = AnalyzeOptions.from_keywords(options, option_fields)
    run = restore_run(checkpoint, data=data, device=device)
    out = Path(out_dir) if out_dir is not None else run.run_dir / "analysis"
    with folder_lock(out):
        return _analyze_restored(run, out, split, opts, log)


def _analyze_restored(run: RestoredRun, out: Path, split: str, options: AnalyzeOptions,
                      log: Any) -> dict[str, Any]:
    """:func:`analyze_checkpoint` once the model is restored and ``out`` is locked."""
    say = log or (lambda *_: None)
    check_options(options, population_names(run.encoder))  # before the corpus is built
    root = run.corpus_root()
    dataset = open_dataset(run.config, root, split)
    say(f"checkpoint: {run.checkpoint} ({run.config.task}, dt = {run.dt_ms:g} ms, populations "
        f"{', '.join(population_names(run.encoder)[1:])})")
    return analyze_model(
        run.encoder, run.featurizer(), dataset, out, dt_ms=run.dt_ms, options=options,
        source=f"split '{split}' of {root}", log=log,
        title=f"sparse analysis: {run.run_dir.name} ({run.checkpoint.name})")


@renamed_keywords(n_surrogates="n_shuffles")
def analyze_model(
    encoder: Any,
    featurize: Any,
    dataset: Any,
    out_dir: str | Path,
    *,
    dt_ms: float,
    options: AnalyzeOptions | None = None,
    source: str = "the dataset",
    log: Any = None,
    title: str = "sparse analysis",
    **option_fields: Any,
) -> dict[str, Any]:
    """Analyse an encoder (in eval mode) on utterances of ``dataset``: whatever trained it
    (``sparse train``, a SpeechBrain recipe, your own loop).

    Args:
        encoder: the encoder; its output carries ``spikes``.
        featurize: ``(waveforms (B, S), lengths (B,)) -> (features, frame lengths)``, the front
            end it was trained with.
        dataset: a :mod:`sparse.data` dataset (``manifest`` and items with ``waveform``).
        out_dir: output folder.
        dt_ms: the encoder's step in ms.
        options: which utterances and how (default: the defaults); ``option_fields``
            (fields of :class:`~sparse.analysis.options.AnalyzeOptions`: ``num_utterances``,
            ``ids``, ``n_shuffles``, ``method``, ``seed``, ``pair``, ``pair_bands``,
            ``plot_utterances``, ``more_than_utterances``, ``progress``, ``verbose``) replace
            its fields.
        source: how the status lines name the dataset.
        log: ``print``-like callable for status lines (default: none).
        title: the title of ``index.html``.

    Returns:
        A summary dict: ``out_dir``, ``index``, ``report``, ``csv``, ``json``, ``figures``
        (name -> path), ``utterances``, ``tests`` (model, control), ``significant`` (FDR,
        model and control), ``significant_joint``, ``skipped`` (model, control),
        ``messages``, ``nyquist_note``, ``pac_figure``, ``seconds``.

    Raises:
        AnalyzeError: bad options or utterance ids.
    """
    opts = AnalyzeOptions.from_keywords(options, option_fields)
    say = log or (lambda *_: None)
    t0 = time.perf_counter()
    check_options(opts, population_names(encoder))
    ids = list(opts.ids) if opts.ids is not None else None
    utterances = select_utterances(dataset, opts.num_utterances, ids, seed=opts.seed)
    say(f"utterances: {len(utterances)} of {source}"
        + (f" (the longest; {utterances[-1].id} is the shortest at "
           f"{len(utterances[-1].waveform) / utterances[-1].sample_rate:.2f} s)"
           if ids is None else " (from the id list)"))
    note = nyquist_note(dt_ms)
    if note:
        say(f"note: {note}")
    logger = logging.getLogger("sparse.analysis")
    level = logger.level
    if not opts.verbose:  # one warning per skipped band and utterance would bury the progress bars
        logger.setLevel(logging.ERROR)
    try:
        outputs = run_pipeline(encoder, utterances, featurize, Path(out_dir), dt_ms,
                               opts.analysis_options(title), progress=opts.progress)
    finally:
        logger.setLevel(level)
    summary = summary_of(outputs)
    summary["utterances"] = [u.id for u in utterances]
    summary["nyquist_note"] = note
    summary["seconds"] = time.perf_counter() - t0
    return summary


def summary_of(outputs: AnalysisOutputs) -> dict[str, Any]:
    """The summary dict of :func:`analyze_model` for what the pipeline wrote and found
    (without ``utterances``, ``nyquist_note`` and ``seconds``)."""
    results, control = outputs.results, outputs.control
    sets = (results, control)
    return {
        "out_dir": str(outputs.out_dir),
        "index": str(outputs.files["html"]),
        "report": str(outputs.files["text"]),
        "csv": str(outputs.files["csv"]),
        "json": str(outputs.files["json"]),
        "figures": {k: str(v) for k, v in outputs.figures.items()},
        "utterances": [],
        "tests": [len(r) if r is not None else 0 for r in sets],
        "significant": [int(r.significant().sum()) if r is not None and len(r) else 0
                        for r in sets],
        "significant_joint": [int(r.joint_significant().sum()) if r is not None and len(r)
                              else 0 for r in sets],
        "skipped": [len(r.skipped) if r is not None else 0 for r in sets],
        "messages": list(outputs.messages),
        "nyquist_note": None,
        "pac_figure": dict(outputs.pac_figure),
        "seconds": 0.0,
    }


@renamed_keywords(n_surrogates="n_shuffles")
def analyze_run(run_dir: str | Path, checkpoint: str | Path | None = None,
                out_dir: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """The analysis step of ``sparse demo``: :func:`analyze_checkpoint` on the test split of
    the run's own corpus with the defaults (64 longest utterances, 1000 shuffles), printing
    status lines and the summary.

    Args:
        run_dir: the run folder.
        checkpoint: the checkpoint (default ``<run_dir>/checkpoints/best.pt``).
        out_dir: output folder (default ``<run_dir>/analysis``).
        options: any keyword of :func:`analyze_checkpoint` (``log`` defaults to ``print``).
    """
    run_dir = Path(run_dir)
    ckpt = Path(checkpoint) if checkpoint is not None else run_dir / "checkpoints" / "best.pt"
    out = Path(out_dir) if out_dir is not None else run_dir / "analysis"
    options.setdefault("log", print)
    summary = analyze_checkpoint(ckpt, out, **options)
    print_summary(summary)
    return summary


def analyse_run(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Deprecated spelling of :func:`analyze_run` (kept for one release)."""
    warnings.warn("sparse.analysis.analyse_run is deprecated; use "
                  "sparse.analysis.analyze.analyze_run", DeprecationWarning, stacklevel=2)
    return analyze_run(*args, **kwargs)


def print_summary(summary: dict[str, Any]) -> None:
    """Print what an analysis found and wrote (the summary of :func:`analyze_model`)."""
    out = Path(summary["out_dir"])
    n_model, n_control = summary["tests"]
    s_model, s_control = summary["significant"]
    print(f"PAC tests: {n_model} on the model, {n_control} on the noise control; significant "
          f"after FDR: {s_model} (model), {s_control} (noise control)")
    if "significant_joint" in summary:
        j_model, j_control = summary["significant_joint"]
        print(f"under the original SPARSE code's joint criterion (MI and MVL p < 0.05, "
              f"uncorrected): {j_model} (model), {j_control} (noise control)")
    k_model, k_control = summary["skipped"]
    if k_model or k_control:
        print(f"skipped: {k_model} (model) and {k_control} (noise control) band/utterance "
              "items, each with its reason in the report")
    fig = summary.get("pac_figure") or {}
    if fig:
        print(f"PAC figure: {fig['phase_band']} phase of {fig['phase_population']} x "
              f"{fig['amplitude_band']} amplitude of {fig['amplitude_population']} on "
              f"{fig['utterance']} ({fig['why']})")
    for m in summary["messages"][:5]:
        print(f"note: {m}")
    if len(summary["messages"]) > 5:
        print(f"note: ... and {len(summary['messages']) - 5} more (see index.html)")
    print(f"analysis written to {out} in {summary['seconds']:.0f} s:")
    print(f"  {Path(summary['index'])}   every figure and table on one page")
    print(f"  {Path(summary['report'])}   the PAC report")
    print(f"  {Path(summary['csv'])}, {Path(summary['json']).name}   every test")
    print(f"  {out / 'figures'}/   {len(summary['figures'])} figures")
