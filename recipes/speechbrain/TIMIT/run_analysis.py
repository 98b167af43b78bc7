#!/usr/bin/env python3
"""Analyse the spiking encoder trained by run_training.py with sparse's analysis suite.

    python run_analysis.py hparams/timit_analysis.yaml [--output_folder=PATH]

Recovers the checkpoint with the lowest validation PER from <output_folder>/save, rebuilds the
modules from the training's saved hyperparams.yaml, runs the encoder on the longest test
utterances and on a Gaussian-noise control, and writes into <output_folder>/analysis what
`sparse analyze` writes: figures/, pac_analysis.txt, pac_results.csv/.json, index.html.
"""

from __future__ import annotations

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from sparse.analysis.analyze import print_summary
from sparse.integrations.speechbrain import analyze_recipe

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    print_summary(analyze_recipe(hparams, corpus="timit", min_key="PER"))
