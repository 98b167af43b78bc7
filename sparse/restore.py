"""Rebuild a trained model, its feature front end and its corpus from a checkpoint.

For tools that use a trained model outside the training loop (``sparse analyze``,
``sparse predict``, ``sparse export``, the analysis step of ``sparse demo``); it lives beside
:mod:`sparse.train` and :mod:`sparse.analysis` so that both can import it without importing
each other (``sparse.train.restore`` re-exports it under its older name). The
checkpoint is loaded with the trainer's own safe loader (``weights_only=True``), the model is
rebuilt from the resolved config stored inside it and checked against the stored tensors, and
the featurizer is the trainer's log-mel front end followed by the model's own normalisation
(global statistics travel in the state dict), so raw waveforms reach the encoder exactly as the
training features did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .data.audio import AudioError
from .train.checkpoints import (
    CheckpointError,
    checkpoint_file,
    load_checkpoint,
    load_model_state,
    run_dir_of,
)
from .train.config import ConfigError, TrainConfig
from .train.data import DataError, resolve_corpus
from .train.lock import LockError, folder_lock
from .train.model import TaskModel, build_model
from .train.run import checkpoint_config

__all__ = ["RESTORE_ERRORS", "LockError", "RestoredRun", "folder_lock", "make_featurizer",
           "make_filterbank", "open_dataset", "restore_run", "run_dir_of"]

#: What restoring a run, opening its corpus and locking a folder raise on bad input, each
#: with a message that names the problem (the commands print it and exit with status 2).
RESTORE_ERRORS: tuple[type[Exception], ...] = (CheckpointError, DataError, ConfigError,
                                               AudioError, LockError)

Featurizer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class RestoredRun:
    """A trained model rebuilt from a checkpoint.

    Attributes:
        model: the :class:`TaskModel` in eval mode with the checkpoint's weights.
        config: the run's resolved config (with ``data.corpus`` replaced when asked).
        classes: class names (KWS) or phone symbols (ASR) the model was trained on.
        checkpoint: the checkpoint file that was read.
        run_dir: the run folder it belongs to.
        info: the checkpoint's ``progress`` and ``metrics`` entries (when present).
    """

    model: TaskModel
    config: TrainConfig
    classes: list[str]
    checkpoint: Path
    run_dir: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dt_ms(self) -> float:
        """The SNN step in ms (= the feature hop)."""
        return float(self.config.features.hop_ms)

    @property
    def encoder(self) -> torch.nn.Module:
        """The spiking encoder (its output carries ``spikes``)."""
        return self.model.encoder

    def featurizer(self) -> Featurizer:
        """``(waveforms (B, S), lengths (B,)) -> (normalised features (B, T, mels), lengths)``."""
        return make_featurizer(self.model, self.config)

    def corpus_root(self, build: bool = True) -> Path:
        """The folder of the corpus named by the config (see :func:`resolve_corpus`)."""
        return resolve_corpus(self.config, build=build)


def restore_run(checkpoint: str | Path, data: str | None = None,
                device: str | torch.device = "cpu") -> RestoredRun:
    """Load ``checkpoint`` (a ``.pt`` file or a run folder, whose ``checkpoints/best.pt`` is
    used) and rebuild its model.

    Args:
        checkpoint: the checkpoint file or run folder.
        data: a corpus folder or ``"synth"`` replacing the config's ``data.corpus``; ``None``:
            the corpus the model was trained on.
        device: where the model goes.

    Raises:
        CheckpointError: the file is missing, unreadable, not a training checkpoint, holds an
            invalid config, its tensors do not fit the model its config describes, or one of
            them holds a non-finite number or a neuron parameter out of its range (the first
            such tensor named; see :func:`~sparse.train.checkpoints.load_model_state`).
    """
    path = checkpoint_file(checkpoint)
    state = load_checkpoint(path)
    cfg = checkpoint_config(path, state, data)
    classes = state.get("classes")
    if not classes:
        raise CheckpointError(
            f"checkpoint {path} does not list the classes it was trained on ('classes' entry), "
            "so the model's output layer cannot be rebuilt; use a checkpoint written by "
            "'sparse train'."
        )
    model = build_model(cfg, len(classes))
    load_model_state(model, state["model"], path)
    model.to(device).eval()
    info = {k: state[k] for k in ("progress", "metrics") if k in state}
    return RestoredRun(model, cfg, list(classes), path, run_dir_of(path), info)


def make_featurizer(model: TaskModel, cfg: TrainConfig) -> Featurizer:
    """The training front end for raw audio: the log-mel filterbank of ``cfg.features`` (as
    the trainer's feature extraction builds it) followed by ``model.normalize``."""
    fbank = make_filterbank(cfg)
    device = next(model.parameters()).device

    @torch.no_grad()
    def featurize(waveforms: torch.Tensor, lengths: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, frames = fbank(waveforms.float().cpu(), lengths.cpu())
        feats, frames = feats.float().to(device), frames.to(device)
        return model.standardize(feats, frames), frames

    return featurize


def make_filterbank(cfg: TrainConfig) -> Any:
    """The log-mel front end of ``cfg.features`` (a :class:`~sparse.features.LogMelFilterbank`,
    as the trainer's feature extraction builds it); its ``.stream()`` gives the same frames
    chunk by chunk."""
    from .features import LogMelFilterbank

    fc = cfg.features
    return LogMelFilterbank(n_mels=fc.n_mels, hop_ms=fc.hop_ms, win_ms=fc.win_ms,
                            sample_rate=fc.sample_rate)


def open_dataset(cfg: TrainConfig, root: Path, split: str) -> Any:
    """The audio dataset of one split of the corpus at ``root`` (Speech Commands for KWS,
    TIMIT layout for ASR), read at the config's sample rate; items are dicts with ``id``,
    ``waveform`` (1-D float tensor) and ``sample_rate``, and ``.manifest`` lists every entry
    with its ``duration``.

    Raises:
        DataError: the split is missing or the corpus cannot be read.
    """
    from .train.data import _dataset

    try:
        return _dataset(cfg, Path(root), split)
    except AudioError as exc:
        raise DataError(f"cannot read audio file {exc.path}: {exc.problem} (corpus {root}, "
                        f"split '{split}')") from None
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"corpus {root}, split '{split}': {exc}") from None
