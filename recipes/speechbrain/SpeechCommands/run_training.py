#!/usr/bin/env python3
"""Keyword spotting on Speech Commands (v1/v2 layout) with sparse's spiking KWS encoder and
SpeechBrain.

    python run_training.py hparams/kws_train.yaml --data_folder=/path/to/speech_commands
    python run_training.py hparams/kws_train.yaml --data_folder=... --kws_task=12
    torchrun --nproc_per_node=2 run_training.py hparams/kws_train.yaml \\
        --data_folder=... --distributed_backend=gloo                   # two CPU processes

kws_task: all (every word folder a class: 35 in v2) or 12 (ten words, _unknown_, _silence_).
The best checkpoint (lowest validation error) is evaluated on the official test list; results
land in <output_folder>: train_log.txt, classification_test.txt, save/.
Then: python run_analysis.py hparams/kws_analysis.yaml (same output_folder).
"""

from __future__ import annotations

import io
import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import if_main_process, run_on_main

from sparse.analysis.report import atomic_write_text
from sparse.integrations.speechbrain import (
    RateMeter,
    end_distributed,
    frame_lengths,
    prepare_speech_commands,
    spiking_penalty,
    wrap_distributed,
)
from sparse.snn import constrain_parameters


class SpikingKWSBrain(sb.Brain):
    """Fbank -> normalisation -> spiking encoder with a leaky readout -> class
    log-probabilities, trained with the NLL plus the firing-rate regulariser."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        if stage == sb.Stage.TRAIN and self.hparams.augment:
            wavs, wav_lens = self.hparams.wav_augment(wavs, wav_lens)
        feats = self.hparams.compute_features(wavs)
        feats = self.modules.normalize(feats, wav_lens)
        frames = frame_lengths(wav_lens, feats.shape[1])
        out = self.modules.encoder(feats, frames)
        return out.log_probs, out.spikes, frames

    def compute_objectives(self, predictions, batch, stage):
        log_probs, spikes, frames = predictions
        labels, _ = batch.label_encoded
        labels = labels.reshape(-1)
        if stage == sb.Stage.TRAIN and self.hparams.augment:
            labels = self.hparams.wav_augment.replicate_labels(labels)
        nll = torch.nn.functional.nll_loss(log_probs, labels)
        penalty, rates = spiking_penalty(
            spikes, frames, self.hparams.encoder.dt, self.hparams.rate_weight,
            self.hparams.rate_min_hz, self.hparams.rate_max_hz)
        self.rates.update(rates, log_probs.shape[0])
        self.correct += int((log_probs.argmax(-1) == labels).sum())
        self.count += labels.numel()
        if stage != sb.Stage.TRAIN:
            decode = self.label_encoder.decode_ndim
            self.classification.append(batch.id, decode(log_probs.argmax(-1)), decode(labels))
        return nll + penalty

    def _wrap_distributed(self):
        # SpeechBrain would turn the BatchNorms into SyncBatchNorm, which fails on CPU and
        # which sparse's valid-step normalisation cannot use (see wrap_distributed)
        if not wrap_distributed(self):
            super()._wrap_distributed()

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step:  # keep tau_u, tau_w, a, b in their ranges after each update
            constrain_parameters(self.modules.encoder)

    def on_stage_start(self, stage, epoch=None):
        self.rates = RateMeter()
        self.correct, self.count = 0, 0
        if stage != sb.Stage.TRAIN:
            self.classification = self.hparams.classification_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        accuracy = 100.0 * self.correct / max(1, self.count)
        stats = {"loss": stage_loss, "accuracy": round(accuracy, 2),
                 "error": round(100.0 - accuracy, 2), **self.rates.summary()}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(stats["error"])
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr},
                train_stats=self.train_stats, valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta={"error": stats["error"]},
                                                 min_keys=["error"])
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats)
            if if_main_process():
                text = io.StringIO()
                text.write(f"accuracy: {accuracy:.2f} % on {self.count} clips\n\n")
                self.classification.write_stats(text)
                atomic_write_text(self.hparams.results_file, text.getvalue())
                print(f"test accuracy {accuracy:.2f} %; details in "
                      f"{self.hparams.results_file}")


def dataio_prep(hparams, labels):
    """Datasets with their audio and label pipelines, and the label encoder."""
    data_folder = hparams["data_folder"]
    clip_samples = int(round(hparams["clip_seconds"] * hparams["sample_rate"]))

    def load(key):
        return sb.dataio.dataset.DynamicItemDataset.from_json(
            json_path=hparams[key], replacements={"data_root": data_folder})

    datasets = [load("train_annotation"), load("valid_annotation"), load("test_annotation")]
    label_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("wav", "start", "stop", "gain")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav, start, stop, gain):
        # stop = -1: the whole file (a word clip); else a stretch of a noise file (_silence_)
        source = wav if stop < 0 else {"file": wav, "start": start, "stop": stop}
        sig = sb.dataio.dataio.read_audio(source) * gain
        # every clip lasts clip_seconds: shorter files are padded with silence at the end
        return torch.nn.functional.pad(sig[:clip_samples], (0, max(0, clip_samples - len(sig))))

    @sb.utils.data_pipeline.takes("label")
    @sb.utils.data_pipeline.provides("label_encoded")
    def label_pipeline(label):
        return label_encoder.encode_label_torch(label)

    sb.dataio.dataset.add_dynamic_item(datasets, audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(datasets, label_pipeline)
    # the classes in the corpus' fixed order, whatever the training data happens to hold
    label_encoder.load_or_create(path=f"{hparams['save_folder']}/label_encoder.txt",
                                 from_iterables=[labels])
    label_encoder.expect_len(len(labels))
    sb.dataio.dataset.set_output_keys(datasets, ["id", "sig", "label_encoded"])
    return (*datasets, label_encoder)


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    if hparams.get("num_threads"):
        torch.set_num_threads(hparams["num_threads"])
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"],
                                   hyperparams_to_save=hparams_file, overrides=overrides)
    prep = {"data_folder": hparams["data_folder"], "save_folder": hparams["save_folder"],
            "task": hparams["kws_task"], "silence_fraction": hparams["silence_fraction"],
            "seed": hparams["seed"]}
    run_on_main(prepare_speech_commands, kwargs={**prep, "skip_prep": hparams["skip_prep"]})
    prepared = prepare_speech_commands(**prep, skip_prep=True)
    if len(prepared.labels) != hparams["num_classes"]:
        raise SystemExit(
            f"the corpus in {hparams['data_folder']} has {len(prepared.labels)} classes for "
            f"kws_task={hparams['kws_task']}, but num_classes is {hparams['num_classes']}: "
            f"pass --num_classes={len(prepared.labels)}")
    train_data, valid_data, test_data, label_encoder = dataio_prep(hparams, prepared.labels)

    brain = SpikingKWSBrain(modules=hparams["modules"], opt_class=hparams["opt_class"],
                            hparams=hparams, run_opts=run_opts,
                            checkpointer=hparams["checkpointer"])
    brain.label_encoder = label_encoder
    brain.fit(brain.hparams.epoch_counter, train_data, valid_data,
              train_loader_kwargs=hparams["train_dataloader_opts"],
              valid_loader_kwargs=hparams["valid_dataloader_opts"])
    brain.evaluate(test_data, min_key="error", test_loader_kwargs=hparams["test_dataloader_opts"])
    end_distributed()
