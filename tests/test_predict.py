"""`sparse predict` and `sparse.load`: a tiny trained KWS and ASR model called on the tiny
corpus's files give what `sparse evaluate` (ASR hypotheses) and the trainer's own batched
forward pass (KWS probabilities) give; streaming in chunks ends with the whole-file result;
bad input gets one clear paragraph and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import sparse
from sparse.cli import main
from sparse.data.audio import resample
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.predict import PredictError
from sparse.train.checkpoints import CheckpointError
from sparse.train.config import load_config
from sparse.train.data import collate_features, load_split
from sparse.train.restore import open_dataset, restore_run
from sparse.train.run import train_run

from .test_train_run import tiny


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """SPARSE_DATA_DIR holding the tiny corpus (the path test_train_run.py uses too)."""
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    return d


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory) -> dict[str, Path]:
    """One tiny trained run per task (best checkpoint evaluated on the test split)."""
    out = tmp_path_factory.mktemp("predict-runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("SPARSE_DATA_DIR", str(data_dir))
    try:
        return {task: Path(train_run(load_config(None, tiny(data_dir, task, "train.epochs=2")),
                                     out / task, verbose=False)["run_dir"])
                for task in ("kws", "asr")}
    finally:
        mp.undo()


def _predict(*args: str, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["predict", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _test_files(run: Path) -> dict[str, str]:
    """id -> audio file of the test split of the run's corpus."""
    r = restore_run(run)
    return {e.id: e.path for e in open_dataset(r.config, r.corpus_root(), "test").manifest}


def test_asr_phones_equal_evaluate_and_stream_equals_whole(runs, env, capsys):
    run = runs["asr"]
    files = _test_files(run)
    evaluated = json.loads((run / "evaluation" / "test.json").read_text())
    hyps = {d["id"]: d["hyp"] for d in evaluated["utterance_details"]}
    assert set(hyps) == set(files)
    ids = sorted(files)
    code, out, err = _predict(str(run), *(files[i] for i in ids), "--json", capsys=capsys)
    assert code == 0, err
    whole = json.loads(out)
    assert [w["file"] for w in whole] == [files[i] for i in ids]
    frame_s = restore_run(run).model.encoder.pool_kernel * 0.010
    for i, w in zip(ids, whole, strict=True):
        assert [p["label"] for p in w["phones"]] == hyps[i], i
        assert w["duration"] == pytest.approx(sf.info(files[i]).duration)
        ends = [0.0] + [p["end"] for p in w["phones"]]
        for p, prev_end in zip(w["phones"], ends[:-1], strict=True):
            assert prev_end <= p["start"] < p["end"] <= w["duration"] + 1e-9
            assert p["start"] / frame_s == pytest.approx(round(p["start"] / frame_s))
    assert sum(len(w["phones"]) for w in whole) > 0  # something to compare

    code, out, err = _predict(str(run), *(files[i] for i in ids), "--json", "--stream",
                              capsys=capsys)
    assert code == 0, err
    streamed = json.loads(out)
    for s, w in zip(streamed, whole, strict=True):
        assert s["real_time_factor"] > 0
        s.pop("real_time_factor")
        assert s == w

    # the human-readable form: phones as they complete, then the whole file's string
    code, out, err = _predict(str(run), files[ids[0]], "--stream", capsys=capsys)
    assert code == 0, err
    assert f"phones: {' '.join(hyps[ids[0]])}" in out and "real-time factor:" in out
    assert sum(" s  " in line for line in out.splitlines()) == len(hyps[ids[0]])


def test_kws_probabilities_equal_the_batched_forward_pass(runs, env, capsys):
    run = runs["kws"]
    files = _test_files(run)
    ids = sorted(files)[::5]
    code, out, err = _predict(str(run), *(files[i] for i in ids), "--json", "--top", "35",
                              capsys=capsys)
    assert code == 0, err
    got = {i: {k["label"]: k["probability"] for k in w["keywords"]}
           for i, w in zip(ids, json.loads(out), strict=True)}

    # the reference: the trainer's cached features, padded into one batch, TaskModel.forward
    r = restore_run(run)
    split = load_split(r.config, r.corpus_root(), "test", None)
    index = [split.ids.index(i) for i in ids]
    batch = collate_features(split, index, "kws")
    with torch.no_grad():
        probs = r.model(batch["features"], batch["lengths"]).scores.exp()
    for k, i in enumerate(ids):
        assert list(got[i]) == sorted(got[i], key=got[i].get, reverse=True)
        assert set(got[i]) == set(r.classes)
        want = dict(zip(r.classes, probs[k].tolist(), strict=True))
        for label, p in got[i].items():
            assert p == pytest.approx(want[label], abs=2e-6), (i, label)
    spread = [max(g.values()) for g in got.values()]
    assert max(spread) - min(spread) > 1e-6  # the files are told apart

    code, out, err = _predict(str(run), files[ids[0]], "--top", "3", capsys=capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 4 and lines[0].startswith(files[ids[0]])
    best = sorted(got[ids[0]].items(), key=lambda kv: -kv[1])[:3]
    assert [ln.split() for ln in lines[1:]] == [[k, f"{p:.3f}"] for k, p in best]


def test_kws_stream_equals_whole_in_any_chunking(runs):
    model = sparse.load(runs["kws"], task="kws")
    path = next(iter(_test_files(runs["kws"]).values()))
    x, sr = sf.read(path, dtype="float32")
    short = x[: int(0.55 * sr)]  # shorter than a training clip: zero-padded both ways
    for audio in (x, short):
        whole = model.predict(audio, sr, top=35)
        for chunk in (1600, 777):
            with model.stream(top=35) as stream:
                updates = [stream.push(audio[s:s + chunk]) for s in range(0, len(audio), chunk)]
                assert stream.push(audio[:0]).duration == len(audio) / sr  # nothing new
                final = stream.result()
            assert [k.label for k in final.keywords] == [k.label for k in whole.keywords]
            assert np.allclose([k.probability for k in final.keywords],
                               [k.probability for k in whole.keywords], atol=1e-6)
            assert final.duration == whole.duration == len(audio) / sr
            assert updates[-1].duration == final.duration
            if chunk == 1600:  # 100 ms: every push completes frames, so each has an answer
                assert all(u.keywords for u in updates)
    assert model.predict(short, sr).keywords != model.predict(x, sr).keywords


def test_load_round_trip_resampling_and_light_import(runs):
    model = sparse.load(runs["asr"] / "checkpoints" / "best.pt")
    assert model.task == "asr" and model.sample_rate == 16000 and len(model.classes) == 39
    path = next(iter(_test_files(runs["asr"]).values()))
    from_file = model.predict_file(path)
    x, sr = sf.read(path, dtype="float32")
    assert model.predict(torch.from_numpy(x)[None], sr) == from_file
    assert from_file.text == " ".join(p.label for p in from_file.phones)
    # other rates go through the corpus loaders' resampler
    x8 = resample(x, sr, 8000)
    assert model.predict(x8, 8000) == model.predict(resample(x8, 8000, 16000), 16000)
    # ASR streaming in the Python API: the phones pushed are the final phones
    with model.stream() as stream:
        pushed = [p for s in range(0, len(x), 1600) for p in stream.push(x[s:s + 1600]).phones]
        final = stream.result()
    assert final == from_file
    assert pushed and pushed == final.phones[: len(pushed)]

    code = ("import sys, sparse; assert callable(sparse.load); "
            "print(sorted(m for m in ('torch', 'sparse.predict', 'sparse.train') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_bad_input_is_one_paragraph(runs, tmp_path, capsys):
    kws = str(runs["kws"])
    path = next(iter(_test_files(runs["kws"]).values()))
    x, sr = sf.read(path, dtype="float32")
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([x, -x], axis=1), sr)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), sr)
    notaudio = tmp_path / "notes.wav"
    notaudio.write_text("not audio")
    cases = [
        ((kws, str(tmp_path / "missing.wav")), ["missing.wav", "not found"]),
        ((kws, str(stereo)), ["stereo.wav", "2 channels", "--mono"]),
        ((kws, str(empty)), ["empty.wav", "no audio samples"]),
        ((kws, str(notaudio)), ["notes.wav", "unreadable"]),
        ((path, path), ["not a torch file"]),
        ((str(tmp_path / "nothing.pt"), path), ["nothing.pt", "not found"]),
        ((kws, path, "--task", "asr"), ["keyword spotting", "'asr'", "best.pt"]),
        ((kws, path, "--top", "0"), ["--top"]),
    ]
    for args, words in cases:
        code, out, err = _predict(*args, capsys=capsys)
        assert code == 2, (args, out, err)
        assert "Traceback" not in err and err.count("\n") == 1, err
        for w in words:
            assert w in err, (w, err)
    code, out, err = _predict(kws, str(stereo), "--mono", "--top", "1", capsys=capsys)
    assert code == 0, err

    model = sparse.load(kws)
    with pytest.raises(CheckpointError):
        sparse.load(path)
    with pytest.raises(PredictError, match="2 channels"):
        model.predict(np.stack([x, x]), sr)
    with pytest.raises(PredictError, match="empty"):
        model.predict(np.zeros(0, np.float32), sr)
    with pytest.raises(PredictError, match="positive whole number"):
        model.predict(x, 0)
    with pytest.raises(PredictError, match="16000 Hz"):
        model.stream(sample_rate=8000)
    with pytest.raises(PredictError, match="empty"), model.stream() as stream:
        stream.result()
