"""The synthesised corpus: built with the --tiny preset, read back through the loaders."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sparse.data.phonemes import TIMIT_61
from sparse.data.speech_commands import SpeechCommandsDataset
from sparse.data.synth import (
    CORE_TEST_SPEAKERS,
    DEV_SPEAKERS,
    SynthConfig,
    synthesize_corpus,
)
from sparse.data.timit import TimitDataset, read_phn, read_wrd
from sparse.data.words import KEYWORDS

TINY = SynthConfig.tiny(seed=3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "tiny"
    return synthesize_corpus(TINY, root=root)


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "corpus.json"
    }


def test_counts_per_split(corpus):
    (tr, va, te), (ntr, nva, nte) = TINY.timit_speakers, TINY.sentences_per_speaker
    timit = {s: TimitDataset(corpus.timit_root, s) for s in ("train", "valid", "test")}
    assert [len(timit[s]) for s in ("train", "valid", "test")] == [tr * ntr, va * nva, te * nte]
    kw_tr, kw_va, kw_te = TINY.keyword_speakers
    per = len(KEYWORDS) * TINY.keyword_repeats
    kws = {s: SpeechCommandsDataset(corpus.speech_commands_root, s) for s in timit}
    assert [len(kws[s]) for s in ("train", "valid", "test")] == [kw_tr * per, kw_va * per,
                                                                   kw_te * per]
    info = json.loads((corpus.root / "corpus.json").read_text())
    assert info["utterances"]["timit"] == {"train": 12, "valid": 4, "test": 4}
    assert info["utterances"]["keywords"] == {"train": 105, "valid": 35, "test": 35}
    assert info["size_bytes"] > 0 and info["generation_seconds"] > 0


def test_speakers_disjoint_and_standard(corpus):
    timit = {s: set(TimitDataset(corpus.timit_root, s).speakers) for s in ("train", "valid",
                                                                             "test")}
    assert len(timit["train"]) == TINY.timit_speakers[0]
    assert not timit["train"] & timit["valid"] and not timit["train"] & timit["test"]
    assert not timit["valid"] & timit["test"]
    assert timit["valid"] <= set(DEV_SPEAKERS)
    assert timit["test"] <= {n for v in CORE_TEST_SPEAKERS.values() for n in v}
    kws = {s: set(SpeechCommandsDataset(corpus.speech_commands_root, s).speakers)
           for s in ("train", "valid", "test")}
    assert [len(kws[s]) for s in ("train", "valid", "test")] == list(TINY.keyword_speakers)
    assert not kws["train"] & kws["valid"] and not kws["train"] & kws["test"]
    assert not kws["valid"] & kws["test"]
    # speakers.tsv: no (accent, variant) pair in two splits of the same part
    rows = [line.split("\t") for line in (corpus.root / "speakers.tsv").read_text().splitlines()]
    head, rows = rows[0], rows[1:]
    col = {c: i for i, c in enumerate(head)}
    for part in ("timit", "keywords"):
        voices: dict[str, set] = {}
        for r in rows:
            if r[col["part"]] == part:
                voices.setdefault(r[col["split"]], set()).add((r[col["accent"]],
                                                               r[col["variant"]]))
        splits = list(voices.values())
        for i in range(len(splits)):
            for j in range(i + 1, len(splits)):
                assert not splits[i] & splits[j], part


def test_timit_labels_are_valid_and_inside_the_audio(corpus):
    wavs = sorted(corpus.timit_root.rglob("*.wav"))
    assert len(wavs) == 20
    for wav in wavs:
        info = sf.info(str(wav))
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        segs = read_phn(wav.with_suffix(".phn"))
        assert {p for _, _, p in segs} <= set(TIMIT_61)
        assert segs[0][0] == 0 and segs[0][2] == "h#" and segs[-1][2] == "h#"
        assert segs[-1][1] == info.frames  # boundaries cover exactly the audio
        for (a, b, _), (c, _, _) in zip(segs, segs[1:], strict=False):
            assert a < b == c  # contiguous, non-empty
        for stop, closure in (("p", "pcl"), ("t", "tcl"), ("k", "kcl"), ("b", "bcl"),
                              ("d", "dcl"), ("g", "gcl")):
            for i, (_, _, ph) in enumerate(segs):
                if ph == stop:
                    assert segs[i - 1][2] in (closure, "pau", "h#") or i == 0, (wav, i)
        words = read_wrd(wav.with_suffix(".wrd"))
        text = wav.with_suffix(".txt").read_text().split(maxsplit=2)
        assert int(text[1]) == info.frames
        assert [w for _, _, w in words] == text[2].strip().rstrip(".").lower().split()
        assert 4 <= len(words) <= 12
        for a, b, _ in words:
            assert 0 <= a < b <= info.frames
        x, _ = sf.read(str(wav))
        assert 0.01 < np.max(np.abs(x)) < 1.0  # not silent, not clipped everywhere


def test_timit_loader_items(corpus):
    ds = TimitDataset(corpus.timit_root, "train", phone_set=39)
    item = ds[0]
    assert item["waveform"].dtype.__str__() == "torch.float32"
    assert item["waveform"].ndim == 1 and item["sample_rate"] == 16000
    assert len(item["phones"]) == len(item["phone_ids"]) == item["phone_segments"].shape[0]
    assert item["phone_segments"].max() <= item["waveform"].shape[0]
    assert set(item["phones"]) <= set(ds.phones.symbols)
    assert item["phones"][0] == "sil" and item["words"] and item["text"].endswith(".")
    ds8 = TimitDataset(corpus.timit_root, "train", phone_set=61, sample_rate=8000)
    assert abs(ds8[0]["waveform"].shape[0] * 2 - item["waveform"].shape[0]) <= 2


def test_speech_commands_layout(corpus):
    root = corpus.speech_commands_root
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert words == sorted(KEYWORDS) and len(words) == 35
    valid = (root / "validation_list.txt").read_text().splitlines()
    test = (root / "testing_list.txt").read_text().splitlines()
    assert valid == sorted(valid) and test == sorted(test)
    assert len(valid) == len(test) == 35 and not set(valid) & set(test)
    for rel in valid + test:
        word, name = rel.split("/")
        assert word in KEYWORDS and "_nohash_" in name and (root / rel).is_file()
    every = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.wav")
                   if not p.parent.name.startswith("_"))
    assert len(every) == 175
    for rel in every[::7]:
        info = sf.info(str(root / rel))
        assert (info.frames, info.samplerate, info.channels) == (16000, 16000, 1)
    noise = sorted(p.name for p in (root / "_background_noise_").glob("*.wav"))
    assert len(noise) >= 5
    assert sf.info(str(root / "_background_noise_" / noise[0])).duration == pytest.approx(
        TINY.background_seconds
    )
    ds12 = SpeechCommandsDataset(root, "valid", task="12")
    labels = {ds12.manifest[i].label for i in range(len(ds12))}
    assert labels == {*("yes no up down left right on off stop go".split()), "_unknown_",
                      "_silence_"}


def test_cached_second_call_is_instant(corpus):
    t0 = time.perf_counter()
    again = synthesize_corpus(TINY, root=corpus.root)
    assert time.perf_counter() - t0 < 0.5
    assert again.info == corpus.info
    leftovers = [p.name for p in corpus.root.parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_deterministic_whatever_the_number_of_processes(corpus, tmp_path):
    other = synthesize_corpus(TINY, root=tmp_path / "again", workers=1)
    assert _digest(other.root) == _digest(corpus.root)


def test_stale_build_folders_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".c.tmp-{dead}-deadbeef"
    (stale / "timit").mkdir(parents=True)
    cfg = SynthConfig(timit_speakers=(1, 0, 0), sentences_per_speaker=(1, 0, 0),
                      keyword_speakers=(0, 0, 0), background_seconds=0.5)
    built = synthesize_corpus(cfg, root=tmp_path / "c", workers=1)
    assert not stale.exists()
    assert built.info["utterances"]["timit"] == {"train": 1, "valid": 0, "test": 0}
    assert (built.speech_commands_root / "validation_list.txt").read_text() == ""


def test_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="x"):
        synthesize_corpus(TINY, root=tmp_path / "x")
    assert (tmp_path / "x" / "mine.txt").read_text() == "keep me"


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="validation speakers"):
        SynthConfig(timit_speakers=(1, 51, 1)).validate()
    with pytest.raises(ValueError, match="snr_db"):
        SynthConfig(snr_db=(20.0, 5.0)).validate()


def test_cli_reports_the_cached_corpus(corpus, capsys):
    from sparse.cli import main

    rc = main(["synth", "--tiny", "--seed", "3", "--out", str(corpus.root), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "12/4/4" in out and "105/35/35" in out and str(corpus.root) in out
