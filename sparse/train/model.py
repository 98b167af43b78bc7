"""The trained module: feature normalisation + encoder (+ CTC classifier for ASR)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn as nn

from ..encoder_asr import ASREncoder
from ..encoder_kws import KWSEncoder
from ..features import GlobalNormalization, utterance_normalize
from .config import TrainConfig

__all__ = ["TaskModel", "TaskOutput", "build_model"]


class TaskOutput(NamedTuple):
    """``scores``: KWS log-probabilities ``(B, classes)`` or ASR logits ``(B, T', phones + 1)``
    (index 0 = blank); ``lengths``: ASR output frames ``(B,)`` (KWS: the input lengths);
    ``spikes``: population -> ``(B, T, N)``."""

    scores: torch.Tensor
    lengths: torch.Tensor
    spikes: dict[str, torch.Tensor]


class TaskModel(nn.Module):
    """Normalisation -> encoder -> (ASR) linear classifier over phones + blank.

    Shapes: ``forward(features (B, T, n_mels), lengths (B,))`` -> :class:`TaskOutput`.
    """

    def __init__(self, cfg: TrainConfig, num_classes: int) -> None:
        super().__init__()
        self.task = cfg.task
        self.normalization = cfg.features.normalization
        n_mels = cfg.features.n_mels
        self.norm = GlobalNormalization(n_mels, sync_distributed=False)
        self.norm.frozen = True
        m = cfg.model
        common = dict(
            num_mel_bins=n_mels,
            auditory_channels=list(m.auditory_channels),
            auditory_kernel_size=list(m.auditory_kernel_size),
            auditory_frequency_stride=list(m.auditory_frequency_stride),
            cortex_layer_sizes=list(m.cortex_layer_sizes),
            cortex_sfa_portions=list(m.cortex_sfa_portions),
            cortex_rnn_portions=list(m.cortex_rnn_portions),
            cortex_feedforward_portions=list(m.cortex_feedforward_portions),
            dropout=m.dropout, dt=cfg.features.hop_ms, normalization=m.normalization,
            auditory_dropout=m.auditory_dropout,
            recurrent_init=m.recurrent_init, batchnorm_momentum=m.batchnorm_momentum,
            # the 'neuron' section's keys are the encoders' keywords
            **dataclasses.asdict(cfg.neuron),
        )
        self.dt = float(cfg.features.hop_ms)
        if cfg.task == "kws":
            self.encoder: nn.Module = KWSEncoder(
                num_classes=num_classes, readout_tau_steps=list(m.readout_tau_steps),
                readout_dropout=m.readout_dropout, **common)
            self.classifier = None
        else:
            self.encoder = ASREncoder(phoneme_num_layers=m.phoneme_num_layers,
                                      phoneme_features=m.phoneme_features,
                                      phoneme_ctc_rate_hz=m.phoneme_ctc_rate_hz,
                                      phoneme_layernorm=m.phoneme_layernorm, **common)
            self.classifier = nn.Linear(self.encoder.output_size, num_classes + 1)

    @torch.no_grad()
    def fit_normalization(self, features: list[torch.Tensor]) -> None:
        """Set the global statistics from the training features (each ``(T_i, n_mels)``)."""
        self.norm.reset()
        for start in range(0, len(features), 256):
            chunk = features[start:start + 256]
            x = torch.cat(chunk).unsqueeze(0)
            self.norm.update(x.to(self.norm.mean.device))

    def normalize(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.normalization == "global":
            return self.norm(x, lengths)
        if self.normalization == "utterance":
            return utterance_normalize(x, lengths)
        return x

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> TaskOutput:
        x = self.normalize(x, lengths)
        if self.classifier is None:
            out = self.encoder(x, lengths)
            return TaskOutput(out.log_probs, lengths, out.spikes)
        out = self.encoder(x, lengths)
        return TaskOutput(self.classifier(out.features), out.lengths, out.spikes)


def build_model(cfg: TrainConfig, num_classes: int) -> TaskModel:
    """A :class:`TaskModel` whose masks and initial weights are fixed by ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    return TaskModel(cfg, num_classes)
