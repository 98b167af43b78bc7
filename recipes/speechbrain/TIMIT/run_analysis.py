#!/usr/bin/env python3
"""Analyse the spiking encoder trained by run_training.py with sparse's analysis suite.

    python run_analysis.py hparams/timit_analysis.yaml [--output_folder=PATH]

Recovers the checkpoint with the lowest validation PER from <output_folder>/save, rebuilds the
modules from the training's saved hyperparams.yaml, runs the encoder on the longest test
utterances and on a Gaussian-noise control, and writes into <output_folder>/analysis what
`sparse analyze` writes: figures/, pac_analysis.txt, pac_results.csv/.json, index.html.

With the original SPARSE code's timit_analysis.yaml (unchanged; see README.md) it does what the
original's analysis script does: the modules built from that file take the best checkpoint of
<output_folder>/save, and the figures its plot_* keys switch on (and, with run_pac_analysis, the
PAC report) are written into plots_folder.
"""

from __future__ import annotations

import sys

from sparse.analysis.analyze import print_summary
from sparse.integrations.speechbrain import RecipeError, analyze_recipe, read_arguments
from sparse.integrations.speechbrain_original import analyze_original, is_original_analysis


def main(argv):
    args = read_arguments(argv)
    hparams, run_opts = args.hparams, args.run_opts
    if not is_original_analysis(hparams):
        print_summary(analyze_recipe(hparams, corpus="timit", min_key="PER"))
        return
    # the original SPARSE code's timit_analysis.yaml
    device = run_opts["device"] if isinstance(run_opts, dict) else run_opts.device
    done = analyze_original(hparams, device=device or "cpu")
    print(f"checkpoint {done['checkpoint'].name}; utterances: {', '.join(done['utterances'])} "
          "and a Gaussian noise input")
    for path in done["files"]:
        print(f"  {path.relative_to(done['plots_folder']).as_posix()}")
    print(f"analysis written to {done['plots_folder']}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except RecipeError as e:  # no training run, a mismatched model, a bad key: one paragraph
        print(f"run_analysis.py: {e}", file=sys.stderr)
        sys.exit(2)
