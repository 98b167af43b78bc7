"""Classification of spike trains: SHD/SSC-format HDF5 files (:mod:`sparse.data.shd`),
binned at ``features.hop_ms``, go straight into the cortex
(:class:`~sparse.encoder_spikes.SpikeEncoder`); cross-entropy, accuracy, confusion matrix.

The synthesised corpus gives this task its keyword clips encoded as spikes
(:mod:`sparse.data.spike_encode`), built on first use like the corpus itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .keywords import ClassificationTask

__all__ = ["SpikeTask"]


class SpikeTask(ClassificationTask):
    """Spike-input classification (SHD, SSC, or the synthesised keywords as spikes)."""

    name = "spikes"
    description = ("spike trains of an SHD/SSC-format corpus binned at features.hop_ms, "
                   "straight into the cortex, readout, cross-entropy, accuracy")
    title = "spike-train classification"
    synth_part = "keywords"  # the keyword clips, encoded as spikes
    audio_input = False
    feature_cache = False  # binning the spikes again is faster than reading a cache file

    def synth_root(self, cfg: Any, corpus: Any) -> Path:
        from ...data.spike_encode import encode_synth_corpus

        return encode_synth_corpus(corpus)

    def load_inputs(self, cfg: Any, ds: Any, n: int, split: str, verbose: bool,
                    condition: str = "clean") -> Any:
        """Binned spike counts ``(steps_i, 700)`` per sample, kept as uint8 (a quarter of the
        memory of float32; the batch is float32) and clipped at 255."""
        from ..data import DataError, FeatureSet

        if condition != "clean":
            raise DataError(f"the test condition '{condition}' acts on audio, and task "
                            "'spikes' reads spike trains: evaluate it without --condition")

        ids, feats, targets, speakers = [], [], [], []
        for i in range(n):
            item = ds[i]
            ids.append(item["id"])
            speakers.append(item["speaker"])
            targets.append(self.target(item))
            feats.append(item["spikes"].clamp(max=255).to(torch.uint8))
            if verbose and (i + 1) % 2000 == 0:
                print(f"  spikes: {split} {i + 1}/{n}", flush=True)
        return FeatureSet(ids, feats, targets, speakers, self.classes(ds), split)

    def input_size(self, cfg: Any) -> int:
        from ...data.spike_encode import CHANNELS

        return CHANNELS

    def build_network(self, cfg: Any, num_classes: int) -> tuple[nn.Module, nn.Module | None]:
        from ...encoder_spikes import SpikeEncoder
        from ...neuron import NeuronConfig

        m = cfg.model
        # the neuron section but its lateral modes (the nerve's, which this encoder does not
        # have, and the cortex's, an argument of its own)
        neuron = NeuronConfig(recurrent_init=m.recurrent_init,
                              **{k: v for k, v in dataclasses.asdict(cfg.neuron).items()
                                 if k not in ("auditory_lateral", "cortex_lateral")})
        encoder = SpikeEncoder(
            num_inputs=self.input_size(cfg), num_classes=num_classes,
            cortex_layer_sizes=list(m.cortex_layer_sizes),
            cortex_sfa_portions=list(m.cortex_sfa_portions),
            cortex_rnn_portions=list(m.cortex_rnn_portions),
            cortex_feedforward_portions=list(m.cortex_feedforward_portions),
            dropout=m.dropout, dt_ms=cfg.features.hop_ms, normalization=m.normalization,
            readout_tau_steps=list(m.readout_tau_steps), readout_dropout=m.readout_dropout,
            cortex_lateral=cfg.neuron.cortex_lateral, neuron=neuron,
            batchnorm_momentum=m.batchnorm_momentum)
        return encoder, None
