"""Keyword classification: the spiking keyword spotter on log-mel features of clips,
cross-entropy on the time-averaged readout, accuracy and a confusion matrix."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..metrics import confusion_matrix
from .base import DemoText, Tally, Task, TaskOutput

__all__ = ["AccuracyTally", "ClassificationTask", "KeywordTask"]


def encoder_options(cfg: Any) -> dict[str, Any]:
    """The front end and cortex options of the encoders, from the config."""
    m = cfg.model
    return dict(
        num_mel_bins=cfg.features.n_mels,
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


class AccuracyTally(Tally):
    """Loss, correct answers and (with details) every label and prediction."""

    def __init__(self, keep_details: bool) -> None:
        self.keep_details = keep_details
        self.correct = 0.0
        self.labels: list[int] = []
        self.preds: list[int] = []

    def add(self, out: TaskOutput, batch: dict[str, torch.Tensor], data: Any,
            indices: list[int], device: torch.device | str) -> float:
        labels = batch["labels"].to(device)
        loss = float(F.nll_loss(out.scores, labels, reduction="sum"))
        pred = out.scores.argmax(-1)
        self.correct += float((pred == labels).sum())
        self.labels += labels.tolist()
        self.preds += pred.tolist()
        return loss

    def sums(self) -> dict[str, float]:
        return {"correct": self.correct}

    def result(self, total: dict[str, float], items: float, data: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"accuracy": total["correct"] / items}
        result["metric"] = result["accuracy"]
        if self.keep_details:
            result["confusion"] = confusion_matrix(self.labels, self.preds,
                                                   len(data.classes)).tolist()
            result["classes"] = list(data.classes)
        return result


class ClassificationTask(Task):
    """One class per utterance: an integer target, negative log-likelihood of the model's
    log-probabilities ``(B, classes)``, accuracy and a confusion matrix."""

    unit = "clips"
    metric_name = "accuracy"
    is_classifier = True

    def classes(self, ds: Any) -> list[str]:
        return list(ds.classes)

    def target(self, item: dict[str, Any]) -> Any:
        return int(item["label_index"])

    def collate_targets(self, targets: list[Any]) -> dict[str, torch.Tensor]:
        return {"labels": torch.tensor(targets, dtype=torch.long)}

    def outputs(self, model: Any, x: torch.Tensor, lengths: torch.Tensor) -> TaskOutput:
        out = model.encoder(x, lengths)
        return TaskOutput(out.log_probs, lengths, out.spikes)

    def training_loss(self, out: TaskOutput, batch: dict[str, torch.Tensor],
                      device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        labels = batch["labels"].to(device)
        loss = F.nll_loss(out.scores, labels)
        return loss, {"correct": float((out.scores.argmax(-1) == labels).sum())}

    def tally(self, keep_details: bool) -> Tally:
        return AccuracyTally(keep_details)

    def epoch_fields(self, train: dict[str, float], items: float, valid: dict[str, Any]
                     ) -> tuple[dict[str, Any], float]:
        fields = {"train_accuracy": train.get("correct", 0.0) / items,
                  "valid_accuracy": valid["accuracy"]}
        return fields, -valid["accuracy"]

    def progress_text(self, record: dict[str, Any]) -> str:
        return f"valid acc {100 * record['valid_accuracy']:.2f}%"

    def report(self, result: dict[str, Any], out_dir: Path) -> tuple[list[str], dict[str, Path]]:
        from ..plots import plot_confusion

        lines = [f"accuracy: {100 * result['accuracy']:.2f}%   loss: {result['loss']:.4f}"]
        if "confusion" not in result:
            return lines, {}
        c = np.asarray(result["confusion"])
        classes = result["classes"]
        lines += ["", "per-class accuracy (most confused first):"]
        per = c.diagonal() / np.maximum(1, c.sum(1))
        for i in np.argsort(per):
            row = c[i].copy()
            row[i] = 0
            worst = int(row.argmax())
            hint = f"  most often taken for '{classes[worst]}' ({row[worst]})" if row[worst] \
                else ""
            lines.append(f"  {classes[i]:>10s}: {100 * per[i]:6.2f}% of {c[i].sum()}{hint}")
        return lines, {"confusion": plot_confusion(result["confusion"], classes,
                                                   out_dir / "confusion.png")}


class KeywordTask(ClassificationTask):
    """Keyword spotting on a Speech Commands folder (:class:`~sparse.encoder_kws.KWSEncoder`)."""

    name = "kws"
    description = "KWSEncoder, cross-entropy, accuracy"
    title = "keyword spotting"
    synth_part = "keywords"
    demo = DemoText(
        announce="keyword spotting (35 words) on synthesised clips, then the analysis",
        corpus_items="keyword clips",
        title="keyword spotting",
        intro="A keyword-spotting encoder of spiking neurons (cortex {layers}, dt = {dt:g} ms) "
              "trained on synthesised 1 s clips of 35 keywords, tested on held-out speakers, "
              "then analysed for phase-amplitude coupling (PAC) between its populations, for "
              "speech and for a noise input of the same loudness.",
        headline="test accuracy",
        chance="chance",
        result="test accuracy on held-out speakers: {value:.2f}% ({utterances} clips; chance "
               "{chance:.2f}%); total {minutes:.1f} min",
        valid_metric="valid accuracy",
    )

    def synth_root(self, cfg: Any, corpus: Any) -> Path:
        return corpus.speech_commands_root

    def clip_seconds(self) -> float:
        """The length every training clip was padded (or cut) to: the Speech Commands
        loader's."""
        import inspect

        from ...data.speech_commands import SpeechCommandsDataset

        return float(inspect.signature(SpeechCommandsDataset).parameters["clip_seconds"].default)

    def chance(self, cfg: Any, corpus_root: Path) -> dict[str, Any]:
        """One keyword at random: one over the number of classes (the test classes are
        balanced)."""
        from ..restore import open_dataset

        n = len(open_dataset(cfg, corpus_root, cfg.data.test_split).classes)
        return {"metric": "accuracy", "value": 1.0 / n, "classes": n,
                "how": f"one of {n} keywords at random"}

    def build_network(self, cfg: Any, num_classes: int) -> tuple[nn.Module, nn.Module | None]:
        from ...encoder_kws import KWSEncoder

        m = cfg.model
        return KWSEncoder(num_classes=num_classes, readout_tau_steps=list(m.readout_tau_steps),
                          readout_dropout=m.readout_dropout, **encoder_options(cfg)), None
