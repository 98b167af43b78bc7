"""``sparse analyze CHECKPOINT --data ... --out DIR``: the command's arguments.

Argument parsing only: the analysis itself is :func:`sparse.analysis.analyze.analyze_checkpoint`
(the model restored by :mod:`sparse.restore`, the utterances chosen by
:mod:`sparse.analysis.selection`, the pipeline of :mod:`sparse.analysis.run`). Every expected
failure (missing or corrupt checkpoint, missing corpus or split, unknown utterance id,
unknown population) is one paragraph on stderr with exit status 2.

The functions that lived here before (``analyze_checkpoint``, ``analyze_model``,
``analyse_run``, ``select_utterances``, ...) are still importable from this module for one
release, with a ``DeprecationWarning`` that names their new home.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..cli import add_checkpoint_command
from ..deprecation import moved_names
from .options import DEFAULT_SHUFFLES, DEFAULT_UTTERANCES

__all__ = ["register"]

#: names that moved out of this module -> (their module, their name there)
_MOVED: dict[str, tuple[str, str]] = {
    "AnalyzeError": ("sparse.analysis.options", "AnalyzeError"),
    "analyse_run": ("sparse.analysis.analyze", "analyze_run"),
    "analyze_checkpoint": ("sparse.analysis.analyze", "analyze_checkpoint"),
    "analyze_model": ("sparse.analysis.analyze", "analyze_model"),
    "analyze_run": ("sparse.analysis.analyze", "analyze_run"),
    "print_summary": ("sparse.analysis.analyze", "print_summary"),
    "nyquist_note": ("sparse.analysis.analyze", "nyquist_note"),
    "longest_spread": ("sparse.analysis.selection", "longest_spread"),
    "read_ids": ("sparse.analysis.selection", "read_ids"),
    "select_utterances": ("sparse.analysis.selection", "select_utterances"),
    "spread_ties": ("sparse.analysis.selection", "spread_ties"),
}


#: the moved names, with a DeprecationWarning (see the module's docstring)
__getattr__ = moved_names(__name__, _MOVED)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to ``sparse``'s parser."""
    p = add_checkpoint_command(
        subparsers, "analyze",
        help="analyse a trained model: rasters, rates, weights, PAC + significance",
        description="Run the analysis suite on a checkpoint written by 'sparse train': "
        "parameter and weight histograms, rasters over the spectrogram, firing rates, band "
        "signals, a PAC figure and comodulogram for one population pair, and the shuffle-test "
        "significance of phase-amplitude coupling over every population pair x phase band x "
        "amplitude band x utterance, beside a Gaussian-noise control. Writes the figures, "
        "pac_analysis.txt, pac_results.csv/json, parameters.txt and index.html into --out.",
    )
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
    p.add_argument("--shuffles", type=int, default=DEFAULT_SHUFFLES, metavar="N",
                   help=f"shuffled amplitude series per test, the null "
                   f"distribution (default {DEFAULT_SHUFFLES}); p = (k + 1) / (N + 1)")
    # the former spelling, hidden: "surrogate" is the neurons' surrogate gradient
    p.add_argument("--surrogates", type=int, default=None, dest="former_surrogates",
                   help=argparse.SUPPRESS)
    p.add_argument("--method", choices=("cut_reverse", "circular_shift"), default="cut_reverse",
                   help="shuffle: cut the amplitude series at a random point and reverse each "
                   "part (the original SPARSE code's, default), or shift it circularly by a "
                   "random lag")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the shuffles and of the noise control (default 0)")
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


def _run_analyze(args: argparse.Namespace) -> int:
    from .analyze import ANALYZE_ERRORS, analyze_checkpoint, print_summary
    from .options import AnalyzeOptions
    from .selection import read_ids

    if args.former_surrogates is not None:
        # FutureWarning, not DeprecationWarning: the user of a command sees it by default
        warnings.warn("--surrogates is deprecated and will be removed in the next release; "
                      "use --shuffles", FutureWarning, stacklevel=2)
        args.shuffles = args.former_surrogates
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        options = AnalyzeOptions(
            num_utterances=args.num_utterances,
            ids=read_ids(args.ids) if args.ids is not None else None,
            n_shuffles=args.shuffles, method=args.method, seed=args.seed,
            pair=tuple(args.pair) if args.pair else None,
            pair_bands=tuple(args.pair_bands) if args.pair_bands else None,
            plot_utterances=args.plot_utterances,
            more_than_utterances=args.more_than_utterances, progress=not args.quiet,
            verbose=args.verbose)
        summary = analyze_checkpoint(args.checkpoint, args.out, data=args.data,
                                     split=args.split, device=args.device, options=options,
                                     log=print)
    except ANALYZE_ERRORS as exc:
        print(f"sparse analyze: error: {exc}", file=sys.stderr)
        return 2
    print_summary(summary)
    return 0
