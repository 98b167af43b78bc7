"""Learning-rate annealing: decided once per epoch on the validation loss, or set from the
training step.

Each scheduler changes the optimiser's learning rates in place and has a ``state_dict`` of
plain numbers, saved in checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .config import ScheduleConfig

__all__ = ["MAX_WARMUP_SHARE", "Constant", "Cosine", "NewBob", "Plateau", "build_scheduler"]


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

    def step_batch(self, step: int, total_steps: int) -> None:
        """Called before training step ``step`` (0-based) of ``total_steps``; per-epoch
        schedulers ignore it."""

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


#: the largest share of a run's steps that the cosine schedule's warm-up may take
MAX_WARMUP_SHARE = 0.2


class Cosine(_Base):
    """``lr(s) = min_lr + (lr0 - min_lr) (1 + cos(pi s' / S')) / 2`` with ``s' = s - warmup``
    over ``S' = total - warmup`` steps, after a linear warm-up ``lr0 (s + 1) / warmup``.
    The warm-up is capped to :data:`MAX_WARMUP_SHARE` of the total steps, so that a short run
    (a smoke test, a tiny corpus) still spends most of its steps at a useful lr.

    The lr is a function of the step alone, so a resumed run follows the same curve."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig) -> None:
        super().__init__(optimizer, cfg)
        self.warmup_steps = cfg.warmup_steps
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]

    def warmup_for(self, total_steps: int) -> int:
        """The warm-up steps of a run of ``total_steps``: ``warmup_steps``, at most
        ``MAX_WARMUP_SHARE * total_steps``."""
        return min(self.warmup_steps, int(MAX_WARMUP_SHARE * total_steps))

    def lr_factor(self, step: int, total_steps: int) -> float:
        """Share of the distance from ``min_lr`` to the initial lr at ``step``."""
        warmup = self.warmup_for(total_steps)
        if step < warmup:
            return (step + 1) / warmup
        span = max(1, total_steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def step_batch(self, step: int, total_steps: int) -> None:
        share = self.lr_factor(step, total_steps)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            floor = min(self.min_lr, base)
            group["lr"] = floor + (base - floor) * share

    def step(self, metric: float) -> None:
        self.previous = metric


def build_scheduler(cfg: ScheduleConfig, optimizer: torch.optim.Optimizer) -> _Base:
    kinds = {"newbob": NewBob, "plateau": Plateau, "cosine": Cosine, "constant": Constant}
    return kinds[cfg.kind](optimizer, cfg)
