#!/usr/bin/env python3
"""Phone recognition on TIMIT with sparse's spiking ASR encoder, CTC and SpeechBrain.

    python run_training.py hparams/timit_train.yaml --data_folder=/path/to/TIMIT
    torchrun --nproc_per_node=2 run_training.py hparams/timit_train.yaml \\
        --data_folder=/path/to/TIMIT --distributed_backend=gloo      # two CPU processes

It runs from this folder of the sparse repository or copied (with hparams/) into SpeechBrain's
recipes/TIMIT/ASR/CTC/: corpus preparation comes from the sparse package, not from
SpeechBrain's recipe files. The best checkpoint (lowest validation PER) is evaluated on the
core test set; results land in <output_folder>: train_log.txt, wer_test.txt, save/.
Then: python run_analysis.py hparams/timit_analysis.yaml (same output_folder).

The original SPARSE code's timit_train.yaml runs here too, unchanged (see README.md); its noise
augmentation downloads NOISE_DATASET_URL, and --skip_noise_augmentation=True trains without it.
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
    RecipeError,
    end_distributed,
    frame_lengths,
    prepare_timit,
    spiking_penalty,
    wrap_distributed,
)
from sparse.integrations.speechbrain_original import (
    NOISE_SWITCH,
    adapt_original_training,
    is_original_training,
    noise_switch,
    pop_override,
    prepare_original_noise,
)
from sparse.snn import constrain_parameters


class SpikingCTCBrain(sb.Brain):
    """Fbank -> normalisation -> spiking encoder -> linear -> log-softmax, trained with CTC
    plus the firing-rate regulariser; greedy decoding for the PER."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        if stage == sb.Stage.TRAIN and self.hparams.augment:
            wavs, wav_lens = self.hparams.wav_augment(wavs, wav_lens)
        feats = self.hparams.compute_features(wavs)
        feats = self.modules.normalize(feats, wav_lens)
        frames = frame_lengths(wav_lens, feats.shape[1])
        encoded = self.modules.encoder(feats, frames)
        log_probs = self.hparams.log_softmax(self.modules.output(encoded.features))
        # CTC wants lengths relative to the padded output; the encoder knows them exactly
        out_lens = encoded.lengths.float() / log_probs.shape[1]
        return log_probs, out_lens, encoded.spikes, frames

    def compute_objectives(self, predictions, batch, stage):
        log_probs, out_lens, spikes, frames = predictions
        phns, phn_lens = batch.phn_encoded
        if stage == sb.Stage.TRAIN and self.hparams.augment:
            phns, phn_lens = self.hparams.wav_augment.replicate_multiple_labels(phns, phn_lens)
        ctc = self.hparams.compute_cost(log_probs, phns, out_lens, phn_lens)
        penalty, rates = spiking_penalty(
            spikes, frames, self.hparams.encoder.dt, self.hparams.rate_weight,
            self.hparams.rate_min_hz, self.hparams.rate_max_hz)
        self.rates.update(rates, log_probs.shape[0])
        self.ctc_metrics.append(batch.id, log_probs, phns, out_lens, phn_lens)
        if stage != sb.Stage.TRAIN:
            hyps = sb.decoders.ctc_greedy_decode(log_probs, out_lens,
                                                 blank_id=self.hparams.blank_index)
            self.per_metrics.append(ids=batch.id, predict=hyps, target=phns,
                                    target_len=phn_lens, ind2lab=self.label_encoder.decode_ndim)
        return ctc + penalty

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
        self.ctc_metrics = self.hparams.ctc_stats()
        if stage != sb.Stage.TRAIN:
            self.per_metrics = self.hparams.per_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss, **self.rates.summary()}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        stats["PER"] = self.per_metrics.summarize("error_rate")
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(stats["PER"])
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr},
                train_stats=self.train_stats, valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta={"PER": stats["PER"]}, min_keys=["PER"])
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats)
            if if_main_process():
                text = io.StringIO()
                text.write("CTC loss stats:\n")
                self.ctc_metrics.write_stats(text)
                text.write("\nPER stats:\n")
                self.per_metrics.write_stats(text)
                atomic_write_text(self.hparams.wer_file, text.getvalue())
                print(f"test PER {stats['PER']:.2f} %; details in {self.hparams.wer_file}")


def dataio_prep(hparams, labels):
    """Datasets with their audio and phone pipelines, and the CTC label encoder."""
    data_folder = hparams["data_folder"]

    def load(key):
        return sb.dataio.dataset.DynamicItemDataset.from_json(
            json_path=hparams[key], replacements={"data_root": data_folder})

    train_data = load("train_annotation")
    if hparams["sorting"] in ("ascending", "descending"):
        train_data = train_data.filtered_sorted(
            sort_key="duration", reverse=hparams["sorting"] == "descending")
        hparams["train_dataloader_opts"]["shuffle"] = False  # the sort order is the point
    elif hparams["sorting"] != "random":
        raise ValueError(
            f"sorting must be 'ascending', 'descending' or 'random', got {hparams['sorting']!r}")
    valid_data = load("valid_annotation").filtered_sorted(sort_key="duration")
    test_data = load("test_annotation").filtered_sorted(sort_key="duration")
    datasets = [train_data, valid_data, test_data]

    label_encoder = sb.dataio.encoder.CTCTextEncoder()

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return sb.dataio.dataio.read_audio(wav)

    @sb.utils.data_pipeline.takes("phn")
    @sb.utils.data_pipeline.provides("phn_list", "phn_encoded")
    def phone_pipeline(phn):
        phones = phn.split()
        yield phones
        yield label_encoder.encode_sequence_torch(phones)

    sb.dataio.dataset.add_dynamic_item(datasets, audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(datasets, phone_pipeline)
    # the label set is the fixed phone set, not whatever phones the training data happens to
    # hold, so the output layer always has output_neurons units in the same order
    label_encoder.load_or_create(
        path=f"{hparams['save_folder']}/label_encoder.txt", from_iterables=[[labels]],
        sequence_input=True, special_labels={"blank_label": hparams["blank_index"]})
    label_encoder.expect_len(hparams["output_neurons"])
    sb.dataio.dataset.set_output_keys(datasets, ["id", "sig", "phn_encoded"])
    return train_data, valid_data, test_data, label_encoder


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # the recipe's own switch for the original's file: no yaml holds it, so it is taken out
    # before hyperpyyaml (which refuses unknown keys) sees the overrides
    skip_noise, overrides = pop_override(overrides, NOISE_SWITCH)
    skip_noise = noise_switch(skip_noise)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    original = is_original_training(hparams)
    if original:  # the original SPARSE code's timit_train.yaml
        adapt_original_training(hparams)
    if hparams.get("num_threads"):
        torch.set_num_threads(hparams["num_threads"])
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"],
                                   hyperparams_to_save=hparams_file, overrides=overrides)
    run_on_main(prepare_timit, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["save_folder"],
        "phone_set": hparams["phone_set"], "skip_prep": hparams["skip_prep"]})
    prepared = prepare_timit(hparams["data_folder"], hparams["save_folder"],
                             hparams["phone_set"], skip_prep=True)
    if original:
        prepare_original_noise(hparams, skip_noise)
    train_data, valid_data, test_data, label_encoder = dataio_prep(hparams, prepared.labels)

    brain = SpikingCTCBrain(modules=hparams["modules"], opt_class=hparams["opt_class"],
                            hparams=hparams, run_opts=run_opts,
                            checkpointer=hparams["checkpointer"])
    brain.label_encoder = label_encoder
    brain.fit(brain.hparams.epoch_counter, train_data, valid_data,
              train_loader_kwargs=hparams["train_dataloader_opts"],
              valid_loader_kwargs=hparams["valid_dataloader_opts"])
    brain.evaluate(test_data, min_key="PER", test_loader_kwargs=hparams["test_dataloader_opts"])
    end_distributed()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except RecipeError as e:  # a missing corpus, checkpoint or download: one paragraph
        print(f"run_training.py: {e}", file=sys.stderr)
        sys.exit(2)
