"""``sparse analyze CHECKPOINT --data ... --out DIR``: the analysis suite on a trained model.

The checkpoint is read with the trainer's safe loader and its model rebuilt from the config
stored inside it (:mod:`sparse.train.restore`); the utterances are the longest ``N`` of a split
of the corpus (as the original SPARSE code picks them) or those listed in a file;
:func:`run_analysis` then writes every figure, ``pac_analysis.txt``,
``pac_results.csv``/``.json``, ``parameters.txt`` and ``index.html`` into the output folder.

Every expected failure (missing or corrupt checkpoint, missing corpus or split, unknown
utterance id, unknown population) is one paragraph on stderr with exit status 2.
:func:`analyse_run` is the same analysis as a function, for ``sparse demo``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["AnalyzeError", "analyse_run", "analyze_checkpoint", "analyze_model",
           "longest_spread", "print_summary", "register", "select_utterances", "spread_ties"]

DEFAULT_UTTERANCES = 64
DEFAULT_SURROGATES = 1000


class AnalyzeError(ValueError):
    """The analysis cannot start: a bad option, an unknown population or utterance id."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to ``sparse``'s parser."""
    p = subparsers.add_parser(
        "analyze", help="analyse a trained model: rasters, rates, weights, PAC + significance",
        description="Run the analysis suite on a checkpoint written by 'sparse train': "
        "parameter and weight histograms, rasters over the spectrogram, firing rates, band "
        "signals, a PAC figure and comodulogram for one population pair, and the surrogate "
        "significance of phase-amplitude coupling over every population pair x phase band x "
        "amplitude band x utterance, beside a Gaussian-noise control. Writes the figures, "
        "pac_analysis.txt, pac_results.csv/json, parameters.txt and index.html into --out.",
    )
    p.add_argument("checkpoint", type=Path,
                   help="a .pt checkpoint or a run folder (its checkpoints/best.pt)")
    p.add_argument("--data", default=None,
                   help="corpus folder (or 'synth'); default: the corpus it was trained on")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default <run folder>/analysis)")
    p.add_argument("--split", default="test", help="split to take utterances from (default test)")
    p.add_argument("--num-utterances", type=int, default=DEFAULT_UTTERANCES, metavar="N",
                   help=f"analyse the N longest utterances of the split (default "
                   f"{DEFAULT_UTTERANCES})")
    p.add_argument("--ids", type=Path, default=None, metavar="FILE",
                   help="analyse the utterances listed in FILE (one id per line, '#' comments) "
                   "instead of the longest N")
    p.add_argument("--surrogates", type=int, default=DEFAULT_SURROGATES, metavar="N",
                   help=f"surrogates per test (default {DEFAULT_SURROGATES}); p = (k + 1) / "
                   "(N + 1)")
    p.add_argument("--method", choices=("cut_reverse", "circular_shift"), default="cut_reverse",
                   help="surrogate: cut the amplitude series at a random point and reverse each "
                   "part (the original SPARSE code's, default), or shift it circularly by a "
                   "random lag")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the surrogates and of the noise control (default 0)")
    p.add_argument("--pair", nargs=2, metavar=("PHASE_POP", "AMP_POP"), default=None,
                   help="populations of the PAC figure and comodulogram ('input' is the "
                   "waveform, 'all' every spiking population together; default: those of "
                   "the coupling significant on the most "
                   "utterances beyond the noise control)")
    p.add_argument("--pair-bands", nargs=2, metavar=("PHASE_BAND", "AMP_BAND"), default=None,
                   help="bands of the PAC figure (default: those of the strongest coupling of "
                   "the pair; with no significant coupling, theta and low_gamma or the first "
                   "bands that fit the first utterance and the step)")
    p.add_argument("--plot-utterances", type=int, default=2, metavar="N",
                   help="utterances that get raster, rate and band-signal figures (default 2; "
                   "the first one's noise control gets a raster and rates too)")
    p.add_argument("--more-than-utterances", type=int, default=1, metavar="N",
                   help="pac_analysis.txt and pac_results.json list the couplings significant "
                   "on more than N utterances, under MI with FDR and under the original SPARSE "
                   "code's joint criterion (default 1)")
    p.add_argument("--device", default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true",
                   help="also print every skipped test as it happens (they are always listed "
                   "in pac_analysis.txt)")
    p.set_defaults(func=_run_analyze)


# ---------------------------------------------------------------------------- the analysis


def read_ids(path: Path) -> list[str]:
    """Utterance ids from a file: one per line; blank lines and ``#`` comments ignored."""
    if not path.is_file():
        raise AnalyzeError(f"--ids file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line_no = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise AnalyzeError(
            f"--ids file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line "
            f"{line_no}): save it as UTF-8, one utterance id per line") from None
    ids = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    if not ids:
        raise AnalyzeError(f"--ids file {path} lists no utterance ids")
    return ids


def select_utterances(dataset: Any, num: int | None = DEFAULT_UTTERANCES,
                      ids: list[str] | None = None, seed: int = 0) -> list[Any]:
    """The utterances to analyse as :class:`~sparse.analysis.run.Utterance` objects.

    With ``ids``: those utterances, in that order. Otherwise the ``num`` longest of the
    dataset, as the original SPARSE code picks them; where lengths tie at the cut (all 1 s
    keyword clips tie), the tied items are spread over classes and speakers
    (:func:`spread_ties`, reproducible with ``seed``), never taken in id order.

    Raises:
        AnalyzeError: an id is not in the dataset, or ``num`` is not positive.
    """
    from .run import Utterance

    manifest = list(dataset.manifest)
    if ids is not None:
        where = {e.id: i for i, e in enumerate(manifest)}
        missing = [x for x in ids if x not in where]
        if missing:
            sample = ", ".join(repr(e.id) for e in manifest[:3])
            raise AnalyzeError(
                f"{len(missing)} of the {len(ids)} utterance id(s) are not in this split "
                f"(e.g. {missing[0]!r}); its ids look like {sample}")
        chosen = [where[x] for x in ids]
    else:
        if num is None or num < 1:
            raise AnalyzeError(f"--num-utterances must be at least 1, got {num}")
        chosen = longest_spread(manifest, num, seed)
    out = []
    for i in chosen:
        item = dataset[i]
        out.append(Utterance(str(item["id"]), item["waveform"].numpy(),
                             int(item["sample_rate"]), segments=_phone_segments(item)))
    return out


def _phone_segments(item: dict[str, Any]) -> list[tuple[float, float, str]] | None:
    """(start s, end s, phone) of a phone-labelled item (TIMIT layout), else ``None``."""
    if "phone_segments" not in item or "phones" not in item:
        return None
    sr = float(item["sample_rate"])
    bounds = item["phone_segments"].tolist()
    return [(a / sr, b / sr, str(p)) for (a, b), p in zip(bounds, item["phones"], strict=True)]


def longest_spread(manifest: list[Any], num: int, seed: int = 0) -> list[int]:
    """Indices of the ``num`` longest entries of ``manifest`` (longest first); the entries
    that tie in length at the cut are chosen by :func:`spread_ties`."""
    order = sorted(range(len(manifest)), key=lambda i: -manifest[i].duration)
    if num >= len(order):
        return order
    cut = manifest[order[num - 1]].duration
    above = [i for i in order if manifest[i].duration > cut]
    tied = [i for i in order if manifest[i].duration == cut]
    return above + spread_ties([manifest[i] for i in tied], tied, num - len(above), seed)


def spread_ties(entries: list[Any], indices: list[int], num: int, seed: int = 0) -> list[int]:
    """``num`` of ``indices`` (whose ``entries`` tie in length), spread over classes
    (``label``) and speakers: each pick is an entry whose class, then whose speaker, has been
    picked least so far; among equals, a seeded random order decides."""
    rng = np.random.default_rng(seed)
    pool = list(rng.permutation(len(indices)))
    by_label: dict[Any, int] = {}
    by_speaker: dict[Any, int] = {}
    picked: list[int] = []
    for _ in range(min(num, len(pool))):
        k = min(range(len(pool)), key=lambda j: (
            by_label.get(entries[pool[j]].label, 0), by_speaker.get(entries[pool[j]].speaker, 0),
            j))
        e = entries[pool[k]]
        by_label[e.label] = by_label.get(e.label, 0) + 1
        by_speaker[e.speaker] = by_speaker.get(e.speaker, 0) + 1
        picked.append(indices[pool.pop(k)])
    return picked


def _population_names(encoder: Any) -> list[str]:
    from .significance import ALL_POPULATIONS

    names = list(getattr(encoder, "population_names", []))
    return ["input", *names, *([ALL_POPULATIONS] if len(names) >= 2 else [])]


def _check_options(args: dict[str, Any], populations: list[str]) -> None:
    from .signals import EEG_BANDS
    from .surrogates import SURROGATE_METHODS

    if args["n_surrogates"] < 1:
        raise AnalyzeError(f"--surrogates must be at least 1, got {args['n_surrogates']}")
    if args.get("more_than_utterances", 0) < 0:
        raise AnalyzeError(f"--more-than-utterances must be 0 or more, got "
                           f"{args['more_than_utterances']} (the report lists the couplings "
                           "significant on more than that many utterances)")
    if args["method"] not in SURROGATE_METHODS:
        raise AnalyzeError(f"unknown surrogate method {args['method']!r}; choose from "
                           f"{', '.join(SURROGATE_METHODS)}")
    if args["pair"] is not None:
        for name in args["pair"]:
            if name not in populations:
                raise AnalyzeError(
                    f"population {name!r} (--pair) does not exist in this model; its "
                    f"populations are {', '.join(populations)} ('input' is the waveform "
                    "brought to the spike rate, 'all' every spiking population together)")
    for band in args["pair_bands"] or ():
        if band not in EEG_BANDS:
            raise AnalyzeError(f"unknown band {band!r} (--pair-bands); known bands: "
                               f"{', '.join(EEG_BANDS)}")


def nyquist_note(dt_ms: float) -> str | None:
    """A sentence on the bands a step of ``dt_ms`` cannot resolve (``None`` if none)."""
    from .signals import AMPLITUDE_BANDS, EEG_BANDS, PHASE_BANDS

    nyquist = 1000.0 / dt_ms / 2.0
    lost = [b for b in (*PHASE_BANDS, *AMPLITUDE_BANDS) if EEG_BANDS[b][1] >= nyquist]
    if not lost:
        return None
    return (f"at dt = {dt_ms:g} ms the populations are sampled at {1000.0 / dt_ms:g} Hz "
            f"(Nyquist {nyquist:g} Hz): the band(s) {', '.join(lost)} reach above it and are "
            "skipped; train with a smaller frame hop (e.g. 2 ms = 500 Hz: features.hop_ms in "
            "sparse configs, hop_length_ms in the SpeechBrain recipes) to test "
            "coupling to gamma amplitude.")


def analyze_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path | None = None,
    *,
    data: str | None = None,
    split: str = "test",
    num_utterances: int | None = DEFAULT_UTTERANCES,
    ids: list[str] | None = None,
    n_surrogates: int = DEFAULT_SURROGATES,
    method: str = "cut_reverse",
    seed: int = 0,
    pair: tuple[str, str] | None = None,
    pair_bands: tuple[str, str] | None = None,
    plot_utterances: int = 2,
    more_than_utterances: int = 1,
    device: str = "cpu",
    progress: bool = True,
    verbose: bool = False,
    log: Any = None,
) -> dict[str, Any]:
    """Analyse a trained model on utterances of its corpus; see ``sparse analyze --help``.

    Args:
        checkpoint: a checkpoint file or run folder written by ``sparse train``.
        out_dir: output folder (default ``<run folder>/analysis``).
        data: corpus folder or ``"synth"`` (default: the one the model was trained on).
        split: the split the utterances come from.
        device: where the model runs.
        num_utterances, ids, n_surrogates, method, seed, pair, pair_bands, plot_utterances,
        more_than_utterances, progress, verbose, log: as :func:`analyze_model`.

    Returns:
        The summary dict of :func:`analyze_model`.

    Raises:
        CheckpointError, DataError, AnalyzeError: a clear message naming what is wrong.
    """
    from ..train.lock import folder_lock
    from ..train.restore import restore_run

    say = log or (lambda *_: None)
    run = restore_run(checkpoint, data=data, device=device)
    out = Path(out_dir) if out_dir is not None else run.run_dir / "analysis"
    with folder_lock(out):
        return _analyze_restored(run, out, split, say, options=dict(
            num_utterances=num_utterances, ids=ids, n_surrogates=n_surrogates, method=method,
            seed=seed, pair=pair, pair_bands=pair_bands, plot_utterances=plot_utterances,
            more_than_utterances=more_than_utterances, progress=progress, verbose=verbose,
            log=log))


def _analyze_restored(run: Any, out: Path, split: str, say: Any, options: dict[str, Any]
                      ) -> dict[str, Any]:
    """:func:`analyze_checkpoint` once the model is restored and ``out`` is locked."""
    from ..train.restore import open_dataset

    pair, pair_bands = options["pair"], options["pair_bands"]
    n_surrogates, method = options["n_surrogates"], options["method"]
    _check_options({"n_surrogates": int(n_surrogates), "method": method, "pair": pair,
                    "pair_bands": pair_bands,
                    "more_than_utterances": int(options["more_than_utterances"])},
                   _population_names(run.encoder))
    root = run.corpus_root()
    dataset = open_dataset(run.config, root, split)
    say(f"checkpoint: {run.checkpoint} ({run.config.task}, dt = {run.dt_ms:g} ms, populations "
        f"{', '.join(_population_names(run.encoder)[1:])})")
    return analyze_model(
        run.encoder, run.featurizer(), dataset, out, dt_ms=run.dt_ms,
        source=f"split '{split}' of {root}", **options,
        title=f"sparse analysis: {run.run_dir.name} ({run.checkpoint.name})")


def analyze_model(
    encoder: Any,
    featurize: Any,
    dataset: Any,
    out_dir: str | Path,
    *,
    dt_ms: float,
    source: str = "the dataset",
    num_utterances: int | None = DEFAULT_UTTERANCES,
    ids: list[str] | None = None,
    n_surrogates: int = DEFAULT_SURROGATES,
    method: str = "cut_reverse",
    seed: int = 0,
    pair: tuple[str, str] | None = None,
    pair_bands: tuple[str, str] | None = None,
    plot_utterances: int = 2,
    more_than_utterances: int = 1,
    progress: bool = True,
    verbose: bool = False,
    log: Any = None,
    title: str = "sparse analysis",
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
        source: how the status lines name the dataset.
        num_utterances, ids: which utterances (the longest ``num_utterances``, or the listed
            ``ids``; see :func:`select_utterances`).
        n_surrogates, method, seed, pair, pair_bands, plot_utterances: passed to
            :func:`~sparse.analysis.run.run_analysis` (``pair`` and ``pair_bands``
            ``None``: the strongest coupling is shown).
        more_than_utterances: the report lists the couplings significant on more than this
            many utterances (as the original SPARSE code's ``pac_analysis.txt``).
        progress: show progress bars.
        verbose: let the analysis log every skipped band/utterance as it happens (otherwise
            they are only counted here and listed in ``pac_analysis.txt``).
        log: ``print``-like callable for status lines (default: none).
        title: the title of ``index.html``.

    Returns:
        A summary dict: ``out_dir``, ``index``, ``report``, ``csv``, ``json``, ``figures``
        (name -> path), ``utterances``, ``tests`` (model, control), ``significant`` (FDR,
        model and control), ``skipped`` (model, control), ``messages``, ``seconds``.

    Raises:
        AnalyzeError: bad options or utterance ids.
    """
    from .run import run_analysis

    say = log or (lambda *_: None)
    t0 = time.perf_counter()
    _check_options({"n_surrogates": int(n_surrogates), "method": method, "pair": pair,
                    "pair_bands": pair_bands, "more_than_utterances": int(more_than_utterances)},
                   _population_names(encoder))
    utterances = select_utterances(dataset, num_utterances, ids, seed=seed)
    say(f"utterances: {len(utterances)} of {source}"
        + (f" (the longest; {utterances[-1].id} is the shortest at "
           f"{len(utterances[-1].waveform) / utterances[-1].sample_rate:.2f} s)"
           if ids is None else " (from the id list)"))
    note = nyquist_note(dt_ms)
    if note:
        say(f"note: {note}")
    logger = logging.getLogger("sparse.analysis")
    level = logger.level
    if not verbose:  # one warning per skipped band and utterance would bury the progress bars
        logger.setLevel(logging.ERROR)
    try:
        outputs = run_analysis(
            encoder, utterances, featurize, Path(out_dir), dt_ms=dt_ms,
            n_surrogates=int(n_surrogates), method=method, seed=seed,
            plot_utterances=plot_utterances, pair=(pair[0], pair[1]) if pair else None,
            pair_bands=(pair_bands[0], pair_bands[1]) if pair_bands else None,
            more_than_utterances=int(more_than_utterances), progress=progress, title=title)
    finally:
        logger.setLevel(level)
    results, control = outputs.results, outputs.control
    return {
        "out_dir": str(outputs.out_dir),
        "index": str(outputs.files["html"]),
        "report": str(outputs.files["text"]),
        "csv": str(outputs.files["csv"]),
        "json": str(outputs.files["json"]),
        "figures": {k: str(v) for k, v in outputs.figures.items()},
        "utterances": [u.id for u in utterances],
        "tests": [len(results) if results is not None else 0,
                  len(control) if control is not None else 0],
        "significant": [int(r.significant().sum()) if r is not None and len(r) else 0
                        for r in (results, control)],
        "significant_joint": [int(r.joint_significant().sum()) if r is not None and len(r)
                              else 0 for r in (results, control)],
        "skipped": [len(r.skipped) if r is not None else 0 for r in (results, control)],
        "messages": list(outputs.messages),
        "nyquist_note": note,
        "pac_figure": dict(outputs.pac_figure),
        "seconds": time.perf_counter() - t0,
    }


def analyse_run(run_dir: str | Path, checkpoint: str | Path | None = None,
                out_dir: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """The analysis step of ``sparse demo``: :func:`analyze_checkpoint` on the test split of
    the run's own corpus with the defaults (64 longest utterances, 1000 surrogates).

    Args:
        run_dir: the run folder.
        checkpoint: the checkpoint (default ``<run_dir>/checkpoints/best.pt``).
        out_dir: output folder (default ``<run_dir>/analysis``).
        options: any keyword of :func:`analyze_checkpoint`.
    """
    run_dir = Path(run_dir)
    ckpt = Path(checkpoint) if checkpoint is not None else run_dir / "checkpoints" / "best.pt"
    out = Path(out_dir) if out_dir is not None else run_dir / "analysis"
    options.setdefault("log", print)
    summary = analyze_checkpoint(ckpt, out, **options)
    print_summary(summary)
    return summary


# ---------------------------------------------------------------------------- the command


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


def _expected_errors() -> tuple[type[BaseException], ...]:
    from ..data.audio import AudioError
    from ..train.checkpoints import CheckpointError
    from ..train.config import ConfigError
    from ..train.data import DataError
    from ..train.lock import LockError

    return (AnalyzeError, CheckpointError, DataError, ConfigError, AudioError, LockError)


def _run_analyze(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ids = None
    try:
        if args.ids is not None:
            ids = read_ids(args.ids)
        summary = analyze_checkpoint(
            args.checkpoint, args.out, data=args.data, split=args.split,
            num_utterances=args.num_utterances, ids=ids, n_surrogates=args.surrogates,
            method=args.method, seed=args.seed, pair=tuple(args.pair) if args.pair else None,
            pair_bands=tuple(args.pair_bands) if args.pair_bands else None,
            plot_utterances=args.plot_utterances,
            more_than_utterances=args.more_than_utterances, device=args.device,
            progress=not args.quiet, verbose=args.verbose, log=print)
    except _expected_errors() as exc:
        print(f"sparse analyze: error: {exc}", file=sys.stderr)
        return 2
    print_summary(summary)
    return 0
