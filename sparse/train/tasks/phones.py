"""Phone recognition: the spiking ASR encoder and a linear classifier over phones + blank,
CTC loss, greedy decoding and the phone error rate with per-sentence alignments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..losses import ctc_greedy_decode, ctc_loss
from ..metrics import Alignment, ErrorCounts, format_alignment
from .base import DemoText, Tally, Task, TaskOutput
from .keywords import encoder_options

__all__ = ["PhoneTask", "PhoneErrorTally"]


class PhoneErrorTally(Tally):
    """CTC loss and the edit operations of the greedy decoding against the reference."""

    def __init__(self, keep_details: bool) -> None:
        self.keep_details = keep_details
        self.errors = ErrorCounts()

    def add(self, out: TaskOutput, batch: dict[str, torch.Tensor], data: Any,
            indices: list[int], device: torch.device | str) -> float:
        loss = ctc_loss(out.scores, out.lengths, batch["targets"].to(device),
                        batch["target_lengths"].to(device))
        hyps = ctc_greedy_decode(out.scores, out.lengths)
        for k, i in enumerate(indices):
            ref = data.targets[i].tolist()
            self.errors.add([data.classes[p] for p in ref],
                            [data.classes[h - 1] for h in hyps[k]], data.ids[i],
                            keep=self.keep_details)
        return float(loss) * len(indices)

    def sums(self) -> dict[str, float]:
        e = self.errors
        return {"err/S": e.substitutions, "err/D": e.deletions, "err/I": e.insertions,
                "err/N": e.reference_length}

    def result(self, total: dict[str, float], items: float, data: Any) -> dict[str, Any]:
        n_ref = max(1.0, total["err/N"])
        result: dict[str, Any] = {
            "per": (total["err/S"] + total["err/D"] + total["err/I"]) / n_ref,
            "substitutions": int(total["err/S"]), "deletions": int(total["err/D"]),
            "insertions": int(total["err/I"]), "reference_length": int(total["err/N"]),
        }
        result["metric"] = result["per"]
        if self.keep_details:
            result["utterance_details"] = self.errors.details
        return result


class PhoneTask(Task):
    """CTC phone recognition on a TIMIT-layout folder (:class:`~sparse.encoder_asr.ASREncoder`
    + a linear classifier over the phones and the blank, index 0)."""

    name = "asr"
    description = ("ASREncoder + linear classifier, CTC on phones + blank, greedy decoding, "
                   "phone error rate")
    title = "phone recognition (ASR)"
    splits = ("train", "valid", "dev", "test", "test_full")
    unit = "sentences"
    metric_name = "per"
    uses_ctc_rate = True
    synth_part = "timit"
    demo = DemoText(
        announce="phone recognition (CTC, 39 phones) at a 2 ms step on synthesised sentences, "
                 "then phase-amplitude coupling for speech against a noise control",
        corpus_items="sentences",
        title="phone recognition and phase-amplitude coupling",
        intro="The original SPARSE experiment: a spiking speech encoder (auditory nerve and "
              "cortex {layers} of AdLIF/LIF neurons, dt = {dt:g} ms) trained for phone "
              "recognition (CTC, 39 phones) on synthesised sentences, tested on held-out "
              "speakers, then analysed for phase-amplitude coupling (PAC) between its "
              "populations, for speech and for a noise input of the same loudness.",
        headline="test phone error rate (PER)",
        chance="a guess that ignores the audio",
        result="test phone error rate (PER) on held-out speakers: {value:.2f}% ({utterances} "
               "sentences; a guess that ignores the audio: {chance:.2f}%); total "
               "{minutes:.1f} min",
        valid_metric="valid PER",
        raster_note=" with its phones",
        # the 2 ms model's activations would otherwise stay resident after every step
        # (sparse.train.memory): this keeps the main job's peak memory within 3 GB
        return_memory=True,
    )

    def synth_root(self, cfg: Any, corpus: Any) -> Path:
        return corpus.timit_root

    def chance(self, cfg: Any, corpus_root: Path) -> dict[str, Any]:
        """The PER of the most frequent training phone repeated as often as fits the training
        sentences best (:func:`~sparse.train.metrics.prior_baseline_per`)."""
        from ..metrics import prior_baseline_per
        from ..restore import open_dataset

        phones = {split: [e.phones or () for e in open_dataset(cfg, corpus_root, split).manifest]
                  for split in (cfg.data.train_split, cfg.data.test_split)}
        base = prior_baseline_per(phones[cfg.data.train_split], phones[cfg.data.test_split])
        return {"metric": "per", "value": base["per"], "phone": base["phone"],
                "repeats": base["repeats"],
                "how": f"'{base['phone']}', the most frequent training phone, {base['repeats']} "
                       "times for every sentence"}

    def classes(self, ds: Any) -> list[str]:
        return list(ds.phones.symbols)

    def target(self, item: dict[str, Any]) -> Any:
        return item["phone_ids"].clone()

    def collate_targets(self, targets: list[Any]) -> dict[str, torch.Tensor]:
        """``targets`` ``(B, L_max)`` (phone index + 1: 0 is the CTC blank) and
        ``target_lengths`` ``(B,)``."""
        tl = torch.tensor([len(t) for t in targets], dtype=torch.long)
        padded = torch.zeros(len(targets), max(1, int(tl.max())), dtype=torch.long)
        for k, t in enumerate(targets):
            padded[k, : len(t)] = t + 1
        return {"targets": padded, "target_lengths": tl}

    def build_network(self, cfg: Any, num_classes: int) -> tuple[nn.Module, nn.Module | None]:
        from ...encoder_asr import ASREncoder

        m = cfg.model
        encoder = ASREncoder(phoneme_num_layers=m.phoneme_num_layers,
                             phoneme_features=m.phoneme_features,
                             phoneme_ctc_rate_hz=m.phoneme_ctc_rate_hz,
                             phoneme_layernorm=m.phoneme_layernorm, **encoder_options(cfg))
        return encoder, nn.Linear(encoder.output_size, num_classes + 1)

    def outputs(self, model: Any, x: torch.Tensor, lengths: torch.Tensor) -> TaskOutput:
        out = model.encoder(x, lengths)
        return TaskOutput(model.classifier(out.features), out.lengths, out.spikes)

    def training_loss(self, out: TaskOutput, batch: dict[str, torch.Tensor],
                      device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        loss = ctc_loss(out.scores, out.lengths, batch["targets"].to(device),
                        batch["target_lengths"].to(device))
        return loss, {}

    def tally(self, keep_details: bool) -> Tally:
        return PhoneErrorTally(keep_details)

    def epoch_fields(self, train: dict[str, float], items: float, valid: dict[str, Any]
                     ) -> tuple[dict[str, Any], float]:
        return {"valid_per": valid["per"]}, valid["per"]

    def progress_text(self, record: dict[str, Any]) -> str:
        return f"valid PER {100 * record['valid_per']:.2f}%"

    def report(self, result: dict[str, Any], out_dir: Path) -> tuple[list[str], dict[str, Path]]:
        lines = [f"PER: {100 * result['per']:.2f}%  (S {result['substitutions']}, D "
                 f"{result['deletions']}, I {result['insertions']}, N "
                 f"{result['reference_length']})   CTC loss: {result['loss']:.4f}"]
        details = result.get("utterance_details", [])
        if details:
            lines += ["", "alignments:"]
            for d in details:
                lines.append(f"{d['id']}  PER {100 * d['error_rate']:.1f}%  (S "
                             f"{d['substitutions']} D {d['deletions']} I {d['insertions']})")
                lines.append(format_alignment(Alignment([tuple(o) for o in d["alignment"]])))
                lines.append("")
        return lines, {}
