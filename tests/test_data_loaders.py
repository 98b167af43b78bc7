"""Corpus loaders on hand-made fixtures of each real layout, bad files included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sparse.data.audio import AudioError, load_audio, resample
from sparse.data.folder import FolderDataset
from sparse.data.manifest import read_manifest, write_manifest
from sparse.data.shd import SHDFormatError, SpikeDataset, bin_spikes
from sparse.data.speech_commands import SILENCE, UNKNOWN, SpeechCommandsDataset
from sparse.data.timit import TimitDataset, TimitFormatError

from .data_fixtures import (
    SC_WORDS,
    SR,
    TIMIT_PHONES,
    make_pattern_folder,
    make_shd_file,
    make_speech_commands_tree,
    make_timit_tree,
    tone,
    write_audio,
    write_corrupt,
    write_empty,
)

# --------------------------------------------------------------------------------- TIMIT


@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper-nist"])
def test_timit_splits_and_sa_excluded(tmp_path, upper):
    root = make_timit_tree(tmp_path / "timit", upper=upper)
    if upper:
        assert (root / "TRAIN" / "DR1" / "FCJF0" / "SI1027.WAV").read_bytes()[:7] == b"NIST_1A"
    train = TimitDataset(root, "train")
    assert sorted(e.id for e in train.manifest) == [
        "fcjf0_si1027", "fcjf0_sx37", "marc0_si1", "marc0_sx2"]  # sa1 left out
    valid = TimitDataset(root, "valid")
    assert [e.id for e in valid.manifest] == ["faks0_si3", "faks0_sx4"]  # sa2 left out
    assert TimitDataset(root, "dev").speakers == ["faks0"]
    assert TimitDataset(root, "test").speakers == ["mdab0"]
    assert TimitDataset(root, "test_full").speakers == ["mdab0", "mzzz0"]
    total = sum(d for _, d in TIMIT_PHONES)
    assert train.manifest[0].duration == pytest.approx(total / SR)


def test_timit_folding_and_items(tmp_path):
    root = make_timit_tree(tmp_path / "timit")
    item = TimitDataset(root, "train", phone_set=39)[0]
    assert item["phones"] == ["sil", "sh", "ih", "hh", "eh", "sil", "jh", "er", "sil", "sil",
                              "t", "sil"]  # q deleted
    assert item["phone_ids"].dtype == torch.long and len(item["phone_ids"]) == 12
    assert item["words"] == ["she", "had"] and item["text"] == "She had."
    assert item["waveform"].shape == (sum(d for _, d in TIMIT_PHONES),)
    i48 = TimitDataset(root, "train", phone_set=48)[0]
    assert i48["phones"][:3] == ["sil", "sh", "ix"] and "vcl" in i48["phones"]
    i61 = TimitDataset(root, "train", phone_set=61)[0]
    assert i61["phones"] == [p for p, _ in TIMIT_PHONES]  # 61: nothing folded, q kept
    # labels follow the output rate
    i8k = TimitDataset(root, "train", sample_rate=8000)[0]
    assert i8k["waveform"].shape[0] == item["waveform"].shape[0] // 2
    assert torch.equal(i8k["phone_segments"] * 2, item["phone_segments"])


def test_timit_bad_files_are_named(tmp_path):
    root = make_timit_tree(tmp_path / "timit")
    spk = root / "train" / "dr1" / "fcjf0"
    write_corrupt(spk / "si1027.wav")
    write_empty(spk / "sx37.wav")
    with pytest.raises(AudioError, match="si1027.wav"):
        TimitDataset(root, "train")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = TimitDataset(root, "train", on_error="skip")
    assert len(ds) == 2 and {p.rsplit("/", 1)[1] for p, _ in ds.skipped} == {
        "si1027.wav", "sx37.wav"}
    assert any("empty" in problem for _, problem in ds.skipped)
    (root / "train" / "dr2" / "marc0" / "si1.phn").write_text("0 100 h#\n100 200 xyz\n")
    with pytest.warns(UserWarning), pytest.raises(TimitFormatError, match=r"si1\.phn:2: 'xyz'"):
        TimitDataset(root, "train", on_error="skip")
    with pytest.raises(FileNotFoundError, match="not a TIMIT-layout corpus"):
        TimitDataset(tmp_path, "train")


# ------------------------------------------------------------------------ Speech Commands


def test_speech_commands_splits_and_classes(tmp_path):
    root = make_speech_commands_tree(tmp_path / "sc")
    ds = {s: SpeechCommandsDataset(root, s) for s in ("train", "valid", "test")}
    assert [len(ds[s]) for s in ("train", "valid", "test")] == [8, 8, 8]
    assert ds["train"].classes == sorted(SC_WORDS)
    assert ds["valid"].speakers == ["bbbb2222"] and ds["test"].speakers == ["cccc3333"]
    item = ds["train"][0]
    assert item["waveform"].shape == (SR,)  # padded to 1 s
    assert item["label"] == ds["train"].classes[item["label_index"]]
    raw = SpeechCommandsDataset(root, "train", clip_seconds=None)
    assert raw[0]["waveform"].shape[0] < SR


def test_speech_commands_12_class_task(tmp_path):
    root = make_speech_commands_tree(tmp_path / "sc")
    ds = SpeechCommandsDataset(root, "train", task="12", silence_fraction=0.25)
    assert ds.classes[-2:] == [UNKNOWN, SILENCE] and len(ds.classes) == 12
    labels = [e.label for e in ds.manifest]
    assert labels.count("yes") == 2 and labels.count("no") == 2
    assert labels.count(UNKNOWN) == 4 and labels.count(SILENCE) == 2  # 0.25 * 8
    sil = ds[labels.index(SILENCE)]
    assert sil["waveform"].shape == (SR,) and sil["label_index"] == 11
    assert float(sil["waveform"].abs().max()) < 0.5
    few = SpeechCommandsDataset(root, "train", task="12", unknown_fraction=0.0)
    assert UNKNOWN not in {e.label for e in few.manifest}


def test_speech_commands_bad_input(tmp_path):
    root = make_speech_commands_tree(tmp_path / "sc")
    write_corrupt(root / "cat" / "aaaa1111_nohash_0.wav")
    write_empty(root / "yes" / "aaaa1111_nohash_1.wav")
    with pytest.raises(AudioError, match="aaaa1111_nohash"):
        SpeechCommandsDataset(root, "train")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = SpeechCommandsDataset(root, "train", on_error="skip")
    assert len(ds) == 6
    (root / "testing_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testing_list.txt"):
        SpeechCommandsDataset(root, "train")


# ----------------------------------------------------------------------------------- SHD


def test_shd_binning(tmp_path):
    written = make_shd_file(tmp_path / "shd_train.h5")
    ds = SpikeDataset(tmp_path, "train", dt_ms=5.0)
    assert len(ds) == 6 and ds.classes == ["zero", "one", "two"]
    for i in range(len(ds)):
        item = ds[i]
        t = written["times"][i]
        assert item["spikes"].shape == (int(np.floor(t.max() * 200)) + 1, 700)
        assert float(item["spikes"].sum()) == len(t)  # every spike counted once
        assert item["label_index"] == int(written["labels"][i])
        assert item["speaker"] == str(written["speakers"][i])
    # first spike lands in its bin and channel
    t0, u0 = written["times"][0][0], written["units"][0][0]
    assert float(ds[0]["spikes"][int(t0 / 0.005), u0]) >= 1.0
    fixed = SpikeDataset(tmp_path / "shd_train.h5", dt_ms=10.0, duration_s=0.2)
    assert fixed[5]["spikes"].shape == (21, 700)
    assert float(fixed[5]["spikes"].sum()) == float((written["times"][5] < 0.21).sum())
    assert fixed.lengths == [21] * 6


def test_shd_bad_files(tmp_path):
    import h5py

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(3, dtype=np.uint16))
    with pytest.raises(SHDFormatError, match="spikes/times"):
        SpikeDataset(tmp_path / "bad.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(SHDFormatError, match="junk.h5"):
        SpikeDataset(tmp_path / "junk.h5")
    with pytest.raises(FileNotFoundError, match="shd_test.h5"):
        SpikeDataset(tmp_path, "test")


def test_bin_spikes_drops_out_of_range():
    x = bin_spikes(np.array([0.0, 0.0099, 0.01, 5.0]), np.array([0, 0, 3, 1]), 0.01, 2, 4)
    assert x.tolist() == [[2, 0, 0, 0], [0, 0, 0, 1]]


# -------------------------------------------------------------------------------- folder


def test_folder_pattern_speaker_split(tmp_path):
    root = make_pattern_folder(tmp_path / "fsdd")
    pattern = r"^(?P<speaker>[a-z]+)_(?P<label>\d)_\d+\.wav$"
    ds = {s: FolderDataset(root, s, pattern=pattern, valid_fraction=0.2, test_fraction=0.2)
          for s in ("train", "valid", "test", "all")}
    assert len(ds["all"]) == 30 and ds["all"].split_by == "speaker"
    assert sum(len(ds[s]) for s in ("train", "valid", "test")) == 30
    spk = {s: set(ds[s].speakers) for s in ("train", "valid", "test")}
    assert not spk["train"] & spk["valid"] and not spk["train"] & spk["test"]
    assert not spk["valid"] & spk["test"]
    assert ds["all"].classes == ["0", "1", "2"]
    item = ds["all"][0]
    assert item["label"] == "0" and item["label_index"] == 0 and item["speaker"] == "george"


def test_folder_subfolder_labels_lists_and_bad_files(tmp_path):
    root = make_speech_commands_tree(tmp_path / "sc")  # same layout: labels from folders
    ds = FolderDataset(root, "valid")
    assert ds.split_by == "lists" and len(ds) == 8
    assert {e.label for e in ds.manifest} == set(SC_WORDS)
    hashed = [FolderDataset(root, s, split_by="hash") for s in ("train", "valid", "test")]
    assert sum(len(d) for d in hashed) == 24
    assert FolderDataset(root, "all", split_by="hash").classes == sorted(SC_WORDS)
    write_corrupt(root / "no" / "zzzz_nohash_0.wav")
    write_empty(root / "no" / "zzzz_nohash_1.wav")
    with pytest.raises(AudioError, match="zzzz_nohash_"):
        FolderDataset(root, "all")
    with pytest.warns(UserWarning, match="skipped 2"):
        assert len(FolderDataset(root, "all", on_error="skip")) == 24
    with pytest.raises(ValueError, match="label"):
        FolderDataset(root, pattern=r"(?P<word>\w+)")


# --------------------------------------------------------------------------------- audio


def test_load_audio_resamples_and_mixes(tmp_path):
    stereo = np.stack([tone(0.5, 1000.0, sr=44100), tone(0.5, 1000.0, sr=44100)], axis=1)
    write_audio(tmp_path / "s.flac", stereo, sr=44100, fmt="FLAC")
    x, sr = load_audio(tmp_path / "s.flac", 16000)
    assert sr == 16000 and x.shape == (8000,) and x.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 16000 / len(x) - 1000.0) < 5.0
    # a 7 kHz tone at 22.05 kHz must vanish, not alias, going to 8 kHz (Nyquist 4 kHz)
    y = resample(tone(0.5, 7000.0, sr=22050), 22050, 8000)
    assert np.sqrt(np.mean(y[200:-200] ** 2)) < 0.01
    write_empty(tmp_path / "e.wav")
    with pytest.raises(AudioError, match="e.wav: empty"):
        load_audio(tmp_path / "e.wav")
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    write_corrupt(tmp_path / "c.wav")
    with pytest.raises(AudioError, match="c.wav: unreadable or corrupt"):
        load_audio(tmp_path / "c.wav")


def test_manifest_roundtrip(tmp_path):
    ds = TimitDataset(make_timit_tree(tmp_path / "t"), "train")
    write_manifest(ds.manifest, tmp_path / "m.tsv")
    back = read_manifest(tmp_path / "m.tsv")
    assert [(e.id, e.path, e.speaker, e.phones) for e in back] == [
        (e.id, e.path, e.speaker, e.phones) for e in ds.manifest]
    assert back[0].duration == pytest.approx(ds.manifest[0].duration)


# ------------------------------------------------------------------------------ batching


def test_collate_pads_and_reports_lengths():
    from sparse.data.batching import collate

    batch = [
        {"id": "a", "waveform": torch.ones(5), "sample_rate": 16000,
         "phone_ids": torch.tensor([1, 2]), "label_index": 3},
        {"id": "b", "waveform": torch.ones(3), "sample_rate": 16000,
         "phone_ids": torch.tensor([4, 5, 6]), "label_index": 1},
    ]
    out = collate(batch)
    assert out["waveforms"].shape == (2, 5) and out["lengths"].tolist() == [5, 3]
    assert out["waveforms"][1, 3:].abs().sum() == 0
    assert out["targets"].tolist() == [[1, 2, 0], [4, 5, 6]]
    assert out["target_lengths"].tolist() == [2, 3] and out["labels"].tolist() == [3, 1]
    assert out["id"] == ["a", "b"] and out["sample_rate"] == 16000
    spikes = collate([{"spikes": torch.ones(4, 7)}, {"spikes": torch.ones(2, 7)}])
    assert spikes["spikes"].shape == (2, 4, 7) and spikes["lengths"].tolist() == [4, 2]
    with pytest.raises(ValueError, match="sample rates"):
        collate([{"sample_rate": 8000}, {"sample_rate": 16000}])


def test_length_bucket_sampler():
    from sparse.data.batching import LengthBucketSampler

    rng = np.random.default_rng(0)
    lengths = rng.integers(100, 10000, 103).tolist()
    s = LengthBucketSampler(lengths, batch_size=8, seed=1)
    batches = list(s)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(103)) and len(batches) == len(s) == 13
    # buckets are tight: each batch spans a small part of the length range
    spans = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert np.median(spans) < 0.15 * (max(lengths) - min(lengths))
    assert list(LengthBucketSampler(lengths, batch_size=8, seed=1)) == batches  # seeded
    s.set_epoch(1)
    assert list(s) != batches
    capped = list(LengthBucketSampler(lengths, batch_size=None, max_total=40000))
    assert all(len(b) * max(lengths[i] for i in b) <= 40000 for b in capped)
    assert sorted(i for b in capped for i in b) == list(range(103))
    ranks = [list(LengthBucketSampler(lengths, batch_size=8, num_replicas=2, rank=r))
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 7
    assert {i for b in ranks[0] + ranks[1] for i in b} == set(range(103))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = torch.utils.data.DataLoader(
            list(range(103)), batch_sampler=LengthBucketSampler(lengths, batch_size=4))
        assert sum(len(b) for b in loader) == 103
