"""Nothing lost, nothing silently wrong, on the data side: the feature cache cannot go stale or
hand one run's choices to another, non-finite features are never kept, held-out list files
cannot leak clips into training, odd entries of a folder corpus are reported, and float64
features reach a float32 encoder."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sparse.cli import main
from sparse.data.audio import AudioError
from sparse.data.batching import collate
from sparse.data.folder import FolderDataset
from sparse.data.lists import ListFileError
from sparse.data.speech_commands import SpeechCommandsDataset
from sparse.train.config import load_config
from sparse.train.data import DataError, load_split

from .data_fixtures import SR, make_speech_commands_tree, tone, write_audio

WORDS = ("yes", "no", "up", "down")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """The feature cache of these tests, in their own folder."""
    monkeypatch.setenv("SPARSE_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "features"


def age(root: Path, seconds: float = 100.0) -> None:
    """Date every file of ``root`` ``seconds`` back: a corpus written long before the run."""
    then = time.time() - seconds
    for f in root.rglob("*"):
        os.utime(f, (then, then))


def small_corpus(root: Path, per_word: int = 33) -> Path:
    """A Speech Commands tree of short clips: ``per_word`` training clips per word (132 in all
    by default, enough that a sample of the files is not all of them) and one validation and
    one test clip per word."""
    valid, test = [], []
    for w, word in enumerate(WORDS):
        for k in range(per_word + 2):
            rel = f"{word}/spk{k:03d}_nohash_0.wav"
            write_audio(root / rel, tone(0.12, 200.0 + 150 * w + 7 * k))
            (valid if k == per_word else test if k == per_word + 1 else []).append(rel)
    (root / "validation_list.txt").write_text("\n".join(valid) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    age(root)
    return root


def kws_config(root: Path, *extra: str):
    return load_config(None, ["task=kws", f"data.corpus={root}", "features.n_mels=20",
                              "features.hop_ms=20.0", *extra])


def features_of(fs, clip_id: str) -> torch.Tensor:
    return fs.features[fs.ids.index(clip_id)]


def rewrite_same_duration(path: Path, freq: float) -> None:
    """Overwrite a clip with other audio of the same length (so the same size and header)."""
    before = path.stat().st_size
    x, _ = sf.read(str(path), dtype="float32")
    write_audio(path, tone(len(x) / SR, freq))
    assert path.stat().st_size == before


# ------------------------------------------------------------------------ A. stale caches


def test_an_edited_clip_of_the_same_duration_is_read_again(tmp_path, cache_dir):
    root = small_corpus(tmp_path / "sc")
    cfg = kws_config(root)
    first = load_split(cfg, root, "train", None)
    assert len(first) == 4 * 33 and len(list(cache_dir.glob("features-*.pt"))) == 1
    # the last clip of the split: not among the files whose time the old key sampled
    clip = first.ids[-1]
    path = root / f"{clip}.wav"
    old_mtime = path.stat().st_mtime_ns
    rewrite_same_duration(path, 3000.0)
    # a real edit leaves a later modification time (here 50 s after the corpus was written)
    os.utime(path, ns=(old_mtime + 50 * 10**9, old_mtime + 50 * 10**9))
    second = load_split(cfg, root, "train", None)
    fresh = load_split(kws_config(root, "data.feature_cache=false"), root, "train", None)
    assert not torch.equal(features_of(second, clip), features_of(first, clip))
    assert torch.equal(features_of(second, clip), features_of(fresh, clip))
    for other in first.ids[:-1]:  # the other clips are as they were
        assert torch.equal(features_of(second, other), features_of(first, other))


def test_the_hash_check_sees_an_edit_that_kept_size_and_time(tmp_path):
    root = small_corpus(tmp_path / "sc", per_word=3)
    cfg = kws_config(root, "data.cache_check=hash")
    first = load_split(cfg, root, "train", None)
    clip = first.ids[0]
    path = root / f"{clip}.wav"
    st = path.stat()
    rewrite_same_duration(path, 2500.0)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # as `touch -r` or a copy tool would
    assert path.stat().st_mtime_ns == st.st_mtime_ns
    second = load_split(cfg, root, "train", None)
    fresh = load_split(kws_config(root, "data.feature_cache=false"), root, "train", None)
    assert torch.equal(features_of(second, clip), features_of(fresh, clip))
    assert not torch.equal(features_of(second, clip), features_of(first, clip))


def test_a_file_dated_in_the_future_is_checked_by_its_contents(tmp_path):
    """A clock ahead of this one (a network file system) gives times that cannot vouch for
    the contents: such files are hashed even in the 'stat' mode."""
    root = small_corpus(tmp_path / "sc", per_word=3)
    future = time.time() + 3600
    clip = "yes/spk000_nohash_0"
    path = root / f"{clip}.wav"
    os.utime(path, (future, future))
    cfg = kws_config(root)
    first = load_split(cfg, root, "train", None)
    st = path.stat()
    rewrite_same_duration(path, 2800.0)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = load_split(cfg, root, "train", None)
    assert not torch.equal(features_of(second, clip), features_of(first, clip))


def test_a_freshly_written_corpus_is_read_once_its_times_can_vouch(tmp_path, monkeypatch):
    """Files changed less than the time resolution of a file system ago could change again
    without a new time: reading waits that long first (at most 2 s)."""
    from sparse.train import data

    root = small_corpus(tmp_path / "sc", per_word=2)
    write_audio(root / "yes" / "spk000_nohash_0.wav", tone(0.12, 900.0))  # written just now
    waits: list[float] = []
    monkeypatch.setattr(data.time, "sleep", waits.append)
    load_split(kws_config(root), root, "train", None)
    assert len(waits) == 1 and 0 < waits[0] <= data._MTIME_RESOLUTION_S
    waits.clear()
    age(root)
    load_split(kws_config(root), root, "train", None)
    assert waits == []


# ------------------------------------------------- B. on_error and non-finite features


def write_float_clip(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, SR, subtype="FLOAT")


def test_a_raise_run_does_not_take_a_skip_runs_cache(tmp_path):
    root = small_corpus(tmp_path / "sc", per_word=3)
    bad = root / "no" / "spk001_nohash_0.wav"
    x = tone(0.12, 500.0)
    x[100] = np.nan
    write_float_clip(bad, x)
    age(root)
    with pytest.warns(UserWarning, match="spk001_nohash_0"):
        skipped = load_split(kws_config(root, "data.on_error=skip"), root, "train", None)
    assert "no/spk001_nohash_0" not in skipped.ids and len(skipped) == 11
    with pytest.raises(DataError, match="spk001_nohash_0.wav.*NaN"):
        load_split(kws_config(root), root, "train", None)


@pytest.mark.parametrize("cached", [False, True])
def test_huge_finite_samples_never_become_cached_infinities(tmp_path, cached):
    root = small_corpus(tmp_path / "sc", per_word=3)
    bad = root / "up" / "spk002_nohash_0.wav"
    x = tone(0.12, 500.0)
    x[200] = 1e30  # finite as a sample, infinite once squared in float32
    write_float_clip(bad, x)
    age(root)
    with pytest.raises(DataError, match=r"spk002_nohash_0\.wav.*not finite.*1e\+30"):
        load_split(kws_config(root), root, "train", None)
    cfg = kws_config(root, "data.on_error=skip")
    for _ in range(2 if cached else 1):  # the second load comes from the cache
        with pytest.warns(UserWarning, match=r"skipped 1 .*spk002_nohash_0\.wav"):
            fs = load_split(cfg, root, "train", None)
    assert "up/spk002_nohash_0" not in fs.ids and len(fs) == 11
    assert all(bool(torch.isfinite(f).all()) for f in fs.features)
    assert fs.skipped and "spk002_nohash_0.wav" in fs.skipped[0]


def test_nan_audio_is_skipped_by_the_library_under_skip(tmp_path):
    root = make_speech_commands_tree(tmp_path / "sc")
    bad = root / "cat" / "aaaa1111_nohash_0.wav"
    x = tone(0.6, 300.0)
    x[10] = np.nan
    write_float_clip(bad, x)
    ds = SpeechCommandsDataset(root, "train", on_error="skip")
    index = [e.path for e in ds.manifest].index(str(bad))
    with pytest.warns(UserWarning, match="aaaa1111_nohash_0.wav"):
        assert ds[index] is None
    assert ds.skipped == [(str(bad), "audio holds NaN or infinite samples")]
    batch = collate([ds[i] for i in range(len(ds))])
    assert len(batch["labels"]) == len(ds) - 1 and bool(torch.isfinite(batch["waveforms"]).all())
    with pytest.raises(ValueError, match="every item of this batch"):
        collate([ds[index]])
    with pytest.raises(AudioError, match="aaaa1111_nohash_0.wav"):
        SpeechCommandsDataset(root, "train")[index]


# ----------------------------------------------------------------- C. held-out list files


def in_split(root: Path, ds_cls, clip: str) -> str:
    where = [s for s in ("train", "valid", "test")
             if clip in {e.id for e in ds_cls(root, s).manifest}]
    assert len(where) == 1, where
    return where[0]


@pytest.mark.parametrize("ds_cls", [SpeechCommandsDataset, FolderDataset])
@pytest.mark.parametrize("line", ["./yes/{f}", "yes\\{f}", "  yes/{f}\t", "yes//./{f}",
                                  "no/../yes/{f}", "{root}/yes/{f}", "\ufeffyes/{f}"])
def test_list_lines_written_another_way_still_hold_their_clip_out(tmp_path, ds_cls, line):
    root = make_speech_commands_tree(tmp_path / "sc")
    name = "aaaa1111_nohash_0.wav"  # a training clip
    text = (root / "testing_list.txt").read_text()
    line = line.format(f=name, root=root.resolve())
    (root / "testing_list.txt").write_text(line + "\n" + text)
    assert in_split(root, ds_cls, f"yes/{name[:-4]}") == "test"


@pytest.mark.parametrize("ds_cls", [SpeechCommandsDataset, FolderDataset])
def test_a_list_line_that_names_no_clip_is_an_error(tmp_path, ds_cls):
    root = make_speech_commands_tree(tmp_path / "sc")
    lines = (root / "testing_list.txt").read_text().splitlines()
    lines.insert(2, "yes/aaaa1111_nohash_7.wav")  # a typo: take 7 does not exist
    lines.append("../outside.wav")
    (root / "testing_list.txt").write_text("\n".join(lines) + "\n")
    for split in ("train", "valid", "test"):
        with pytest.raises(ListFileError) as err:
            ds_cls(root, split)
        msg = str(err.value)
        assert "testing_list.txt, line 3: 'yes/aaaa1111_nohash_7.wav'" in msg
        assert "1 more line" in msg and "\n" not in msg


def test_case_is_ignored_only_where_the_file_system_ignores_it(tmp_path, monkeypatch):
    from sparse.data import lists

    root = make_speech_commands_tree(tmp_path / "sc")
    text = (root / "testing_list.txt").read_text()
    (root / "testing_list.txt").write_text("YES/AAAA1111_nohash_0.WAV\n" + text)
    monkeypatch.setattr(lists, "ignores_case", lambda path: False)
    with pytest.raises(ListFileError, match="line 1"):
        SpeechCommandsDataset(root, "train")
    monkeypatch.setattr(lists, "ignores_case", lambda path: True)
    assert in_split(root, SpeechCommandsDataset, "yes/aaaa1111_nohash_0") == "test"


def test_a_clip_in_both_lists_is_an_error(tmp_path):
    root = make_speech_commands_tree(tmp_path / "sc")
    valid = (root / "validation_list.txt").read_text().splitlines()
    with open(root / "testing_list.txt", "a") as f:
        f.write(valid[1] + "\n")
    with pytest.raises(ListFileError, match=r"testing_list.txt:\d+: .* also listed in "
                                            r".*validation_list.txt:2"):
        SpeechCommandsDataset(root, "test")


def test_sparse_train_stops_on_a_bad_list_line_before_training(tmp_path, capsys):
    root = make_speech_commands_tree(tmp_path / "sc")
    with open(root / "validation_list.txt", "a") as f:
        f.write("yes/missing_nohash_0.wav\n")
    run = tmp_path / "run"
    code = main(["train", "--set", "task=kws", "--set", f"data.corpus={root}",
                 "--set", "features.n_mels=20", "--set", "train.progress=false",
                 "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 2
    assert "validation_list.txt, line 9: 'yes/missing_nohash_0.wav'" in err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    assert not (run / "checkpoints").exists()


# ------------------------------------------------------------------------- D. odd entries


def test_folder_reports_broken_links_and_folders_named_like_audio(tmp_path):
    root = make_speech_commands_tree(tmp_path / "sc")
    (root / "yes" / "gone.wav").symlink_to(root / "nowhere.wav")
    (root / "no" / "folder.wav").mkdir()
    with pytest.raises(AudioError, match=r"folder\.wav: a folder, not an audio file"):
        FolderDataset(root, "all")
    (root / "no" / "folder.wav").rmdir()
    with pytest.raises(AudioError, match=r"gone\.wav: broken symbolic link .*nowhere\.wav"):
        FolderDataset(root, "all")
    (root / "no" / "folder.wav").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FolderDataset(root, "all", on_error="skip")
    assert len(ds) == 24
    assert {Path(p).name for p, _ in ds.skipped} == {"gone.wav", "folder.wav"}
    text = " ".join(str(w.message) for w in caught)
    assert "skipped 2" in text and "gone.wav" in text and "folder.wav" in text


def test_float64_features_reach_a_float32_encoder(tmp_path):
    from sparse.encoder_asr import ASREncoder
    from sparse.encoder_kws import KWSEncoder

    torch.manual_seed(0)
    kw = dict(num_mel_bins=20, auditory_channels=[4], cortex_layer_sizes=[16],
              cortex_sfa_portions=[0.5], cortex_rnn_portions=[0.5],
              cortex_feedforward_portions=[1.0])
    x = 3 * torch.randn(2, 30, 20, dtype=torch.float64)
    kws = KWSEncoder(num_classes=3, implementation="torch", **kw).eval()
    out = kws(x).log_probs
    assert out.dtype == torch.float32 and torch.equal(out, kws(x.float()).log_probs)
    asr = ASREncoder(phoneme_ctc_rate_hz=25.0, dt=10.0, implementation="torch", **kw).eval()
    assert torch.equal(asr(x).features, asr(x.float()).features)
    state = asr.initial_state(2)
    chunk, _ = asr.step(x[:, :10], state)
    assert chunk.dtype == torch.float32
    grad_in = x.clone().requires_grad_(True)
    KWSEncoder(num_classes=3, implementation="torch", **kw)(grad_in).log_probs.sum().backward()
    assert grad_in.grad is not None and grad_in.grad.dtype == torch.float64
    with pytest.raises(ValueError, match="beyond the range of torch.float32"):
        kws(torch.full((1, 5, 20), 1e40, dtype=torch.float64))
