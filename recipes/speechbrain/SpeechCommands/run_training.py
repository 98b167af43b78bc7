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

import sys

import speechbrain as sb
import torch

from sparse.integrations.speechbrain import (
    RecipeError,
    SpikingBrainMixin,
    end_distributed,
    load_annotation,
    prepare_on_main,
    prepare_speech_commands,
    read_arguments,
    start_experiment,
)


class SpikingKWSBrain(SpikingBrainMixin, sb.Brain):
    """Fbank -> normalisation -> spiking encoder with a leaky readout -> class
    log-probabilities, trained with the NLL plus the firing-rate regulariser; the checkpoint
    kept is the one with the lowest validation error rate (%)."""

    checkpoint_key = "error"

    def compute_forward(self, batch, stage):
        feats, frames = self.encoder_inputs(batch, stage)
        out = self.modules.encoder(feats, frames)
        return out.log_probs, out.spikes, frames

    def compute_objectives(self, predictions, batch, stage):
        log_probs, spikes, frames = predictions
        labels, _ = batch.label_encoded
        labels = labels.reshape(-1)
        if self.augmenting(stage):
            labels = self.hparams.wav_augment.replicate_labels(labels)
        nll = torch.nn.functional.nll_loss(log_probs, labels)
        penalty = self.rate_penalty(spikes, frames)
        self.correct += int((log_probs.argmax(-1) == labels).sum())
        self.count += labels.numel()
        if stage != sb.Stage.TRAIN:
            decode = self.label_encoder.decode_ndim
            self.classification.append(batch.id, decode(log_probs.argmax(-1)), decode(labels))
        return nll + penalty

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        self.correct, self.count = 0, 0
        if stage != sb.Stage.TRAIN:
            self.classification = self.hparams.classification_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        accuracy = 100.0 * self.correct / max(1, self.count)
        self.end_stage(stage, {"loss": stage_loss, "accuracy": round(accuracy, 2),
                               "error": round(100.0 - accuracy, 2), **self.rates.summary()},
                       epoch)

    def test_report(self, stats):
        accuracy = 100.0 * self.correct / max(1, self.count)
        path = self.hparams.results_file
        return (path, [(f"accuracy: {accuracy:.2f} % on {self.count} clips\n\n",
                        self.classification)],
                f"test accuracy {accuracy:.2f} %; details in {path}")


def dataio_prep(hparams, labels):
    """Datasets with their audio and label pipelines, and the label encoder."""
    data_folder = hparams["data_folder"]
    clip_samples = int(round(hparams["clip_seconds"] * hparams["sample_rate"]))

    datasets = [load_annotation(hparams[key], data_folder)
                for key in ("train_annotation", "valid_annotation", "test_annotation")]
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


def main(argv):
    args = read_arguments(argv)
    hparams = args.hparams
    # SpeechBrain copies the script that makes the experiment folder into it
    sb.create_experiment_directory(**start_experiment(args))
    prepared = prepare_on_main(
        prepare_speech_commands, hparams["skip_prep"], data_folder=hparams["data_folder"],
        save_folder=hparams["save_folder"], task=hparams["kws_task"],
        silence_fraction=hparams["silence_fraction"], seed=hparams["seed"])
    if len(prepared.labels) != hparams["num_classes"]:
        raise SystemExit(
            f"the corpus in {hparams['data_folder']} has {len(prepared.labels)} classes for "
            f"kws_task={hparams['kws_task']}, but num_classes is {hparams['num_classes']}: "
            f"pass --num_classes={len(prepared.labels)}")
    train_data, valid_data, test_data, label_encoder = dataio_prep(hparams, prepared.labels)

    brain = SpikingKWSBrain.from_hparams(hparams, args.run_opts)
    brain.label_encoder = label_encoder
    brain.fit_and_evaluate(train_data, valid_data, test_data)
    end_distributed()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except RecipeError as e:  # a missing corpus or a bad argument: one paragraph
        print(f"run_training.py: {e}", file=sys.stderr)
        sys.exit(2)
