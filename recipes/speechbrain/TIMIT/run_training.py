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

import sys

import speechbrain as sb

from sparse.integrations.speechbrain import (
    RecipeError,
    SpikingBrainMixin,
    end_distributed,
    load_annotation,
    prepare_on_main,
    prepare_timit,
    read_arguments,
    start_experiment,
)
from sparse.integrations.speechbrain_original import (
    NOISE_SWITCH,
    adapt_original_training,
    is_original_training,
    noise_switch,
    prepare_original_noise,
)


class SpikingCTCBrain(SpikingBrainMixin, sb.Brain):
    """Fbank -> normalisation -> spiking encoder -> linear -> log-softmax, trained with CTC
    plus the firing-rate regulariser; greedy decoding for the PER, and the checkpoint kept is
    the one with the lowest validation PER."""

    checkpoint_key = "PER"

    def compute_forward(self, batch, stage):
        feats, frames = self.encoder_inputs(batch, stage)
        encoded = self.modules.encoder(feats, frames)
        log_probs = self.hparams.log_softmax(self.modules.output(encoded.features))
        # CTC wants lengths relative to the padded output; the encoder knows them exactly
        out_lens = encoded.lengths.float() / log_probs.shape[1]
        return log_probs, out_lens, encoded.spikes, frames

    def compute_objectives(self, predictions, batch, stage):
        log_probs, out_lens, spikes, frames = predictions
        phns, phn_lens = batch.phn_encoded
        if self.augmenting(stage):
            phns, phn_lens = self.hparams.wav_augment.replicate_multiple_labels(phns, phn_lens)
        ctc = self.hparams.compute_cost(log_probs, phns, out_lens, phn_lens)
        penalty = self.rate_penalty(spikes, frames)
        self.ctc_metrics.append(batch.id, log_probs, phns, out_lens, phn_lens)
        if stage != sb.Stage.TRAIN:
            hyps = sb.decoders.ctc_greedy_decode(log_probs, out_lens,
                                                 blank_id=self.hparams.blank_index)
            self.per_metrics.append(ids=batch.id, predict=hyps, target=phns,
                                    target_len=phn_lens, ind2lab=self.label_encoder.decode_ndim)
        return ctc + penalty

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        self.ctc_metrics = self.hparams.ctc_stats()
        if stage != sb.Stage.TRAIN:
            self.per_metrics = self.hparams.per_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss, **self.rates.summary()}
        if stage != sb.Stage.TRAIN:
            stats["PER"] = self.per_metrics.summarize("error_rate")
        self.end_stage(stage, stats, epoch)

    def test_report(self, stats):
        path = self.hparams.wer_file
        return (path, [("CTC loss stats:\n", self.ctc_metrics),
                       ("\nPER stats:\n", self.per_metrics)],
                f"test PER {stats['PER']:.2f} %; details in {path}")


def dataio_prep(hparams, labels):
    """Datasets with their audio and phone pipelines, and the CTC label encoder."""
    data_folder = hparams["data_folder"]

    train_data = load_annotation(hparams["train_annotation"], data_folder)
    if hparams["sorting"] in ("ascending", "descending"):
        train_data = train_data.filtered_sorted(
            sort_key="duration", reverse=hparams["sorting"] == "descending")
        hparams["train_dataloader_opts"]["shuffle"] = False  # the sort order is the point
    elif hparams["sorting"] != "random":
        raise ValueError(
            f"sorting must be 'ascending', 'descending' or 'random', got {hparams['sorting']!r}")
    valid_data = load_annotation(hparams["valid_annotation"], data_folder).filtered_sorted(
        sort_key="duration")
    test_data = load_annotation(hparams["test_annotation"], data_folder).filtered_sorted(
        sort_key="duration")
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
    # --skip_noise_augmentation is the recipe's own switch for the original's file: no yaml
    # holds it
    args = read_arguments(argv, switches={NOISE_SWITCH: noise_switch})
    hparams = args.hparams
    original = is_original_training(hparams)
    if original:  # the original SPARSE code's timit_train.yaml
        adapt_original_training(hparams)
    # SpeechBrain copies the script that makes the experiment folder into it
    sb.create_experiment_directory(**start_experiment(args))
    prepared = prepare_on_main(prepare_timit, hparams["skip_prep"],
                               data_folder=hparams["data_folder"],
                               save_folder=hparams["save_folder"], phone_set=hparams["phone_set"])
    if original:
        prepare_original_noise(hparams, args.switches[NOISE_SWITCH])
    train_data, valid_data, test_data, label_encoder = dataio_prep(hparams, prepared.labels)

    brain = SpikingCTCBrain.from_hparams(hparams, args.run_opts)
    brain.label_encoder = label_encoder
    brain.fit_and_evaluate(train_data, valid_data, test_data)
    end_distributed()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except RecipeError as e:  # a missing corpus, checkpoint or download: one paragraph
        print(f"run_training.py: {e}", file=sys.stderr)
        sys.exit(2)
