"""The trained module: input standardisation + the task's network (see :mod:`.tasks`)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..deprecation import renamed_method, warn_renamed
from ..features import GlobalStandardization, utterance_standardize
from .config import TrainConfig
from .tasks import TaskOutput, task_of

__all__ = ["TaskModel", "TaskOutput", "build_model"]


class TaskModel(nn.Module):
    """Standardisation -> the task's encoder (-> its classifier, e.g. CTC over phones + blank).

    Shapes: ``forward(inputs (B, T, channels), lengths (B,))`` -> :class:`TaskOutput`;
    ``channels`` is the task's input size (``n_mels`` for audio tasks).
    """

    def __init__(self, cfg: TrainConfig, num_classes: int) -> None:
        super().__init__()
        self.task = cfg.task
        self.spec = task_of(cfg)
        self.standardization = cfg.features.standardization
        self.norm = GlobalStandardization(self.spec.input_size(cfg), sync_distributed=False)
        self.norm.frozen = True
        self.dt_ms = float(cfg.features.hop_ms)  # the step in ms: the feature hop
        self.encoder, self.classifier = self.spec.build_network(cfg, num_classes)

    @torch.no_grad()
    def fit_standardization(self, features: list[torch.Tensor]) -> None:
        """Set the global statistics from the training inputs (each ``(T_i, channels)``)."""
        self.norm.reset()
        for start in range(0, len(features), 256):
            chunk = features[start:start + 256]
            x = torch.cat(chunk).float().unsqueeze(0)
            self.norm.update(x.to(self.norm.mean.device))

    fit_normalization = renamed_method("fit_normalization", "fit_standardization")

    @property
    def dt(self) -> float:
        """Deprecated spelling of :attr:`dt_ms` (kept for one release)."""
        warn_renamed("TaskModel.dt", "TaskModel.dt_ms")
        return self.dt_ms

    @property
    def normalization(self) -> str:
        """Deprecated spelling of :attr:`standardization` (kept for one release)."""
        warn_renamed("TaskModel.normalization", "TaskModel.standardization")
        return self.standardization

    def standardize(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The inputs ``(B, T, channels)`` standardised as ``features.standardization`` says
        (same shape; padded frames 0 unless ``none``)."""
        if self.standardization == "global":
            return self.norm(x, lengths)
        if self.standardization == "utterance":
            return utterance_standardize(x, lengths)
        return x

    normalize = renamed_method("normalize", "standardize")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> TaskOutput:
        return self.spec.outputs(self, self.standardize(x, lengths), lengths)


def build_model(cfg: TrainConfig, num_classes: int) -> TaskModel:
    """A :class:`TaskModel` whose masks and initial weights are fixed by ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    return TaskModel(cfg, num_classes)
