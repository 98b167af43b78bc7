#!/usr/bin/env python3
"""Analyse the spiking keyword spotter trained by run_training.py with sparse's analysis suite.

    python run_analysis.py hparams/kws_analysis.yaml [--output_folder=PATH]

Recovers the checkpoint with the lowest validation error from <output_folder>/save, rebuilds
the modules from the training's saved hyperparams.yaml, runs the encoder on the longest test
clips and on a Gaussian-noise control, and writes into <output_folder>/analysis what
`sparse analyze` writes: figures/, pac_analysis.txt, pac_results.csv/.json, index.html.
"""

from __future__ import annotations

import sys

from sparse.analysis.analyze import print_summary
from sparse.integrations.speechbrain import analyze_recipe, read_arguments

if __name__ == "__main__":
    args = read_arguments(sys.argv[1:])
    print_summary(analyze_recipe(args.hparams, corpus="speech_commands", min_key="error"))
