"""The spike task: `sparse synth --spikes` writes the synthesised keywords as SHD-format files
that the SHD reader opens; a small network trained on them (spikes straight into the cortex)
beats chance on held-out speakers, resumes exactly, and is evaluated like the other tasks;
the encoding itself behaves as documented."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from sparse.cli import main
from sparse.data.shd import SpikeDataset
from sparse.data.speech_commands import SpeechCommandsDataset
from sparse.data.spike_encode import CHANNELS, cochlea_spikes, greenwood_frequencies
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.config import load_config
from sparse.train.run import evaluate_checkpoint, train_run

SMALL = ["task=spikes", "data.synth_preset=tiny", "features.hop_ms=14.0",
         "features.standardization=none", "model.cortex_layer_sizes=[64]",
         "model.cortex_sfa_portions=[1.0]", "model.cortex_rnn_portions=[1.0]",
         "model.cortex_feedforward_portions=[1.0]", "optim.lr=0.01", "regularizer.weight=0",
         "train.batch_size=16", "train.num_threads=1", "train.progress=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The tiny synthesised corpus, with its spike version written by `sparse synth`."""
    root = tmp_path_factory.getbasetemp() / "sparse-data" / "tiny"
    synthesize_corpus(SynthConfig.tiny(0), root=root, workers=2)
    assert main(["synth", "--tiny", "--spikes", "--out", str(root), "--quiet"]) == 0
    return root


def _config(corpus: Path, *extra: str):
    return load_config(None, [*SMALL, f"data.synth_dir={corpus}", *extra])


def test_synth_spikes_writes_files_the_shd_reader_reads(corpus, capsys):
    assert main(["synth", "--tiny", "--spikes", "--out", str(corpus), "--quiet"]) == 0
    assert f"SHD format (spikes):    {corpus / 'shd'}" in capsys.readouterr().out
    for split in ("train", "valid", "test"):
        clips = SpeechCommandsDataset(corpus / "speech_commands", split=split, task="all")
        spikes = SpikeDataset(corpus / "shd", split, dt_ms=1.0)
        assert len(spikes) == len(clips) > 0
        assert spikes.classes == clips.classes
        assert [e.label for e in spikes.manifest] == [e.label for e in clips.manifest]
        item = spikes[0]
        assert item["spikes"].shape[1] == CHANNELS and item["spikes"].sum() > 0
        with h5py.File(corpus / "shd" / f"shd_{split}.h5") as f:
            for key in ("spikes/times", "spikes/units", "labels", "extra/keys",
                        "extra/speaker", "extra/meta_info/gender", "extra/meta_info/age",
                        "extra/meta_info/body_height"):
                assert key in f, key
            times, units = f["spikes/times"][0], f["spikes/units"][0]
            assert np.all(np.diff(times) >= 0) and 0 <= times.min() and times.max() <= 1.0
            assert units.max() < CHANNELS
    # the spike files are the build's own: a forced rebuild replaces them, refusing nothing
    listed = (corpus / "contents.tsv").read_text()
    assert "shd/shd_train.h5\t" in listed and "shd/encoding.txt\t" in listed


def test_encoding_follows_the_cochlea_map():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * t) * ((t > 0.2) & (t < 0.6))).astype(np.float32)
    times, units = cochlea_spikes(tone, sr)
    again = cochlea_spikes(tone, sr)
    assert np.array_equal(times, again[0]) and np.array_equal(units, again[1])
    counts = np.bincount(units, minlength=CHANNELS)
    nearest = int(np.argmin(np.abs(greenwood_frequencies() - 1000.0)))
    assert abs(int(counts.argmax()) - nearest) <= 3
    assert times.min() >= 0.2 - 0.013 and times.max() <= 0.6 + 0.013  # the window's reach
    assert counts.max() <= 0.4 * 100 + 1  # at most 100 Hz over the tone's 0.4 s
    assert len(cochlea_spikes(np.zeros(sr, np.float32), sr)[0]) == 0


def test_training_beats_chance_and_resumes_exactly(corpus, tmp_path):
    full = train_run(_config(corpus, "train.epochs=6"), tmp_path / "full", verbose=False)
    log = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().split("\n")
           if x]
    chance = 1.0 / 35
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert max(r["valid_accuracy"] for r in log) >= 3 * chance, log
    assert full["test"]["accuracy"] >= 3 * chance, full["test"]
    assert set(log[-1]["train_rates_hz"]) == {"cortex1"}
    # 3 epochs, then the same run continued to 6: the same weights as 6 at once
    train_run(_config(corpus, "train.epochs=3", "train.evaluate_test=false"),
              tmp_path / "split", verbose=False)
    resumed = train_run(_config(corpus, "train.epochs=6"), tmp_path / "split", resume=True,
                        verbose=False)
    assert resumed["weights_sha256"] == full["weights_sha256"]
    result, paths = evaluate_checkpoint(tmp_path / "full", split="test")
    assert result["accuracy"] == full["test"]["accuracy"]
    assert "accuracy:" in paths["text"].read_text() and paths["confusion"].is_file()


def test_predict_refuses_a_spike_model_clearly(corpus, tmp_path, capsys):
    train_run(_config(corpus, "train.epochs=1", "train.evaluate_test=false"), tmp_path / "run",
              verbose=False)
    clip = next((corpus / "speech_commands").glob("*/*.wav"))
    code = main(["predict", str(tmp_path / "run"), str(clip)])
    err = capsys.readouterr().err
    assert code == 2 and "'spikes'" in err and "sparse evaluate" in err, err
    assert "Traceback" not in err


def test_a_folder_without_spike_files_is_one_clear_error(corpus, tmp_path, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    code = main(["train", "--out", str(tmp_path / "run"), "--set", "task=spikes",
                 "--set", f"data.corpus={empty}", "--set", "train.progress=false"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "shd_train.h5" in err and str(empty) in err and "Traceback" not in err
