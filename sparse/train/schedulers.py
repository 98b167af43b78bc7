"""Learning-rate annealing decided once per epoch on the validation loss.

Each scheduler changes the optimiser's learning rates in place and has a ``state_dict`` of
plain numbers, saved in checkpoints.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import ScheduleConfig

__all__ = ["Constant", "NewBob", "Plateau", "build_scheduler"]


class _Base:
    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig) -> None:
        self.optimizer = optimizer
        self.factor, self.threshold = cfg.factor, cfg.threshold
        self.patience, self.min_lr = cfg.patience, cfg.min_lr
        self.previous: float | None = None
        self.best: float | None = None
        self.bad_epochs = 0

    def _anneal(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = max(self.min_lr, group["lr"] * self.factor)

    def step(self, metric: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"previous": self.previous, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.previous, self.best = state["previous"], state["best"]
        self.bad_epochs = int(state["bad_epochs"])


class NewBob(_Base):
    """SpeechBrain's NewBob: anneal when ``(previous - current) / previous < threshold``
    for more than ``patience`` epochs in a row (``previous`` = last epoch's loss)."""

    def step(self, metric: float) -> None:
        if self.previous is not None:
            improvement = (self.previous - metric) / max(abs(self.previous), 1e-12)
            if improvement < self.threshold:
                self.bad_epochs += 1
                if self.bad_epochs > self.patience:
                    self._anneal()
                    self.bad_epochs = 0
            else:
                self.bad_epochs = 0
        self.previous = metric


class Plateau(_Base):
    """Anneal after more than ``patience`` epochs without a relative improvement of the
    best loss by ``threshold`` (as ``torch.optim.lr_scheduler.ReduceLROnPlateau``)."""

    def step(self, metric: float) -> None:
        if self.best is None or metric < self.best * (1 - self.threshold):
            self.best = metric
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self._anneal()
                self.bad_epochs = 0
        self.previous = metric


class Constant(_Base):
    """No annealing."""

    def step(self, metric: float) -> None:
        self.previous = metric


def build_scheduler(cfg: ScheduleConfig, optimizer: torch.optim.Optimizer) -> _Base:
    return {"newbob": NewBob, "plateau": Plateau, "constant": Constant}[cfg.kind](optimizer, cfg)
