"""Training augmentation and test conditions: each operation against a direct computation
(the SNR of the added noise, the length a speed change gives, the energy left in dropped bands,
the zeros of dropped chunks), the doubled batch against features computed by hand,
reproducibility, the telephone condition's band and SNR, and real ``sparse train`` runs with
augmentation (killed mid-epoch and resumed: equal weights) and ``sparse evaluate --condition``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sparse.data.conditions import apply_condition, band_limit, telephone
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.features import LogMelFilterbank
from sparse.train.augment import (
    AugmentConfig,
    add_noise,
    augment_waveform,
    batch_generator,
    concat_augmented,
    drop_bands,
    drop_chunks,
    make_augmenter,
    noise_folder,
    speed_perturb,
)
from sparse.train.checkpoints import load_checkpoint
from sparse.train.config import load_config
from sparse.train.data import collate_features, load_split, resolve_corpus
from tests.helpers import TINY_KWS_RUN, kill_mid_epoch

SR = 16000
#: every operation off: a test turns on the one it checks
NONE = dict(snr_db=None, speeds=[100], drop_freq_count=[0, 0], drop_chunk_count=[0, 0])


def _power_db(x: np.ndarray | torch.Tensor) -> float:
    x = np.asarray(x, dtype=np.float64)
    return 10 * np.log10(np.mean(x * x))


def _speechlike(n: int, seed: int = 0) -> torch.Tensor:
    """Tones and noise under an envelope (not white, not stationary), ``(n,)`` float32."""
    g = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = sum(g.uniform(0.1, 1) * np.sin(2 * np.pi * f * t) for f in (180, 440, 1250, 3100))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.05 * g.standard_normal(n)
    return torch.from_numpy((0.1 * x).astype(np.float32))


def _spectrum(x: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    return np.fft.rfftfreq(len(x), 1 / SR), np.abs(np.fft.rfft(x)) ** 2


# ------------------------------------------------------------------------- the operations


def test_added_noise_has_the_drawn_snr():
    wave = _speechlike(20000)
    noises = [torch.from_numpy(np.random.default_rng(1).standard_normal(7000).astype("f4"))]
    cfg = AugmentConfig(**{**NONE, "snr_db": [0.0, 15.0]})
    seen = []
    for step in range(6):
        out, drawn = augment_waveform(wave, cfg, SR, noises, batch_generator(3, 0, step))
        assert 0.0 <= drawn["snr_db"] <= 15.0
        measured = _power_db(wave) - _power_db(out - wave)
        assert abs(measured - drawn["snr_db"]) < 0.1, (measured, drawn["snr_db"])
        seen.append(drawn["snr_db"])
    assert len(set(seen)) == 6  # drawn per utterance, not fixed
    # the function on its own, a noise far louder than the speech
    loud = 100 * torch.randn(20000, generator=torch.Generator().manual_seed(0))
    assert abs(_power_db(wave) - _power_db(add_noise(wave, loud, 7.5) - wave) - 7.5) < 0.1


def test_noise_comes_from_the_noise_files_and_wraps_around():
    wave = _speechlike(5000)
    noise = torch.arange(1, 1001, dtype=torch.float32)  # shorter than the utterance
    cfg = AugmentConfig(**{**NONE, "snr_db": [20.0, 20.0]})
    out, _ = augment_waveform(wave, cfg, SR, [noise], batch_generator(0, 0, 0))
    added = (out - wave).double()
    # the file repeats every 1,000 samples, one scale times its values 1 to 1,000
    assert torch.allclose(added[1000:], added[:-1000], rtol=1e-4)
    values = added[:1000] / added.min()
    assert torch.allclose(values, values.round(), atol=0.05)  # (float32 samples)
    assert sorted(values.round().long().tolist()) == list(range(1, 1001))


@pytest.mark.parametrize("speed", [95, 105, 90])
def test_speed_changes_the_length_by_the_factor_and_the_pitch_with_it(speed):
    n = 16000
    tone = torch.sin(2 * np.pi * 1000 * torch.arange(n, dtype=torch.float64) / SR).float()
    out = speed_perturb(tone, speed)
    assert out.shape[0] == math.ceil(n * 100 / speed)
    freqs, power = _spectrum(out)
    assert abs(freqs[power.argmax()] - 1000 * speed / 100) <= 2 * SR / out.shape[0]
    assert torch.equal(speed_perturb(tone, 100), tone)


def test_speed_is_drawn_from_the_listed_speeds():
    wave = _speechlike(8000)
    cfg = AugmentConfig(**{**NONE, "speeds": [95, 100, 105]})
    speeds = set()
    for step in range(30):
        out, drawn = augment_waveform(wave, cfg, SR, [], batch_generator(0, 1, step))
        assert out.shape[0] == math.ceil(8000 * 100 / drawn["speed"])
        speeds.add(drawn["speed"])
    assert speeds == {95, 100, 105}


@pytest.mark.parametrize("n, left", [(16000, 1e-9), (16843, 1e-3)], ids=["fast", "prime"])
def test_dropped_bands_hold_no_energy_and_the_rest_is_kept(n, left):
    """A fast FFT length: the band is empty; a prime length (computed zero-padded): at least
    30 dB down (and the rest of the spectrum kept)."""
    wave = torch.randn(n, generator=torch.Generator().manual_seed(2))
    bands = [(1000.0, 1800.0), (5000.0, 5400.0)]
    out = drop_bands(wave, bands, SR)
    assert out.shape == wave.shape and out.dtype == torch.float32
    freqs, before = _spectrum(wave)
    _, after = _spectrum(out)
    inside = np.zeros_like(freqs, dtype=bool)
    for lo, hi in bands:
        inside |= (freqs >= lo) & (freqs <= hi)
    assert after[inside].sum() < left * before[inside].sum()
    near = np.zeros_like(inside)
    for lo, hi in bands:
        near |= (freqs >= lo - 50) & (freqs <= hi + 50)
    kept = ~near
    assert after[kept].sum() == pytest.approx(before[kept].sum(), rel=1e-3)
    assert np.median(np.abs(after[kept] / before[kept] - 1)) < 0.02


def test_drawn_bands_are_removed():
    wave = _speechlike(12000) + 0.05 * torch.randn(12000, generator=torch.Generator())
    cfg = AugmentConfig(**{**NONE, "drop_freq_count": [1, 3], "drop_freq_width": 0.05})
    counts = set()
    for step in range(12):
        out, drawn = augment_waveform(wave, cfg, SR, [], batch_generator(5, 0, step))
        counts.add(len(drawn["bands"]))
        freqs, before = _spectrum(wave)
        _, after = _spectrum(out)
        for lo, hi in drawn["bands"]:
            assert hi - lo <= 800.0 + 1e-6 and 0 <= lo < hi <= SR / 2
            band = (freqs >= lo) & (freqs <= hi)
            assert after[band].sum() < 1e-9 * before[band].sum()
    assert counts == {1, 2, 3}


def test_dropped_chunks_are_zeros_of_the_drawn_lengths():
    wave = _speechlike(24000) + 0.3  # no sample is zero before
    cfg = AugmentConfig(**{**NONE, "drop_chunk_count": [1, 5], "drop_chunk_ms": [62.5, 125.0]})
    counts = set()
    for step in range(20):
        out, drawn = augment_waveform(wave, cfg, SR, [], batch_generator(0, 2, step))
        counts.add(len(drawn["chunks"]))
        expected = wave.clone()
        for start, length in drawn["chunks"]:
            assert 1000 <= length <= 2000 and 0 <= start <= 24000 - length
            assert torch.all(out[start:start + length] == 0)
            expected[start:start + length] = 0
        assert torch.equal(out, expected)  # zeros there and nowhere else
    assert counts == {1, 2, 3, 4, 5}
    assert torch.equal(drop_chunks(wave, [(3, 2)])[:6], torch.cat([wave[:3], torch.zeros(2),
                                                                   wave[5:6]]))


def test_the_chain_is_reproducible_and_differs_between_steps():
    wave = _speechlike(16000)
    noises = [torch.randn(30000, generator=torch.Generator().manual_seed(4))]
    cfg = AugmentConfig()
    a, da = augment_waveform(wave, cfg, SR, noises, batch_generator(7, 1, 3, 0))
    b, db = augment_waveform(wave, cfg, SR, noises, batch_generator(7, 1, 3, 0))
    assert torch.equal(a, b) and da == db
    for other in (batch_generator(7, 1, 4, 0), batch_generator(7, 2, 3, 0),
                  batch_generator(8, 1, 3, 0), batch_generator(7, 1, 3, 1)):
        c, dc = augment_waveform(wave, cfg, SR, noises, other)
        assert dc != da
    # the global generator is neither read nor advanced
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    augment_waveform(wave, cfg, SR, noises, batch_generator(0, 0, 0))
    assert torch.equal(torch.random.get_rng_state(), before)


# ------------------------------------------------------------------------- test conditions


def test_telephone_keeps_300_to_3400_hz_at_10_db_snr():
    wave = np.asarray(_speechlike(32000)) + 0.02 * np.random.default_rng(0).standard_normal(32000)
    out = telephone(wave, SR, "dr1/utt1")
    assert out.shape == wave.shape and out.dtype == np.float32
    freqs, power = _spectrum(out)
    outside = (freqs < 300) | (freqs > 3400)
    assert power[outside].sum() < 1e-4 * power.sum()
    _, before = _spectrum(wave)
    assert before[outside].sum() > 0.1 * before.sum()  # there was energy to remove
    clean = band_limit(wave, SR)
    snr = _power_db(clean) - _power_db(out - clean)
    assert abs(snr - 10.0) < 0.1, snr


def test_telephone_is_deterministic_per_utterance():
    wave = np.asarray(_speechlike(8000))
    a = telephone(wave, SR, "spk/a")
    assert np.array_equal(a, telephone(wave, SR, "spk/a"))
    assert not np.allclose(a, telephone(wave, SR, "spk/b"))
    assert apply_condition("clean", wave, SR, "x") is wave
    assert np.array_equal(apply_condition("telephone", wave, SR, "spk/a"), a)
    with pytest.raises(ValueError, match="'clean', 'telephone'"):
        apply_condition("radio", wave, SR, "x")


# ------------------------------------------------------------------------- on the corpus


TINY = [
    *TINY_KWS_RUN,
    "train.batch_size=16", "train.epochs=2", "train.checkpoint_every=2",
    "train.evaluate_test=false", "schedule.kind=cosine", "schedule.warmup_steps=2",
    "augment.enabled=true",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """SPARSE_DATA_DIR holding the tiny corpus (shared by the test files)."""
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    return d


def _tiny(data_dir: Path, *extra: str) -> list[str]:
    return [*TINY, f"data.synth_dir={data_dir / 'tiny'}", *extra]


@pytest.mark.parametrize("task", ["kws", "asr"])
def test_the_batch_doubles_with_features_of_the_augmented_audio(task, data_dir, monkeypatch):
    monkeypatch.setenv("SPARSE_DATA_DIR", str(data_dir))
    cfg = load_config(None, _tiny(data_dir, f"task={task}", "features.hop_ms=10.0"))
    root = resolve_corpus(cfg)
    assert noise_folder(cfg, root).name == "_background_noise_"
    train = load_split(cfg, root, "train", None)
    augment = make_augmenter(cfg, root, train.ids)
    idx = [5, 1, 7, 2]
    clean = collate_features(train, idx, task)
    batch = augment(dict(clean), idx, 1, 3)
    assert batch["features"].shape[0] == 8 and batch["lengths"].shape == (8,)
    t = clean["features"].shape[1]
    assert torch.equal(batch["features"][:4, :t], clean["features"])
    assert torch.equal(batch["lengths"][:4], clean["lengths"])
    for key in ("labels",) if task == "kws" else ("targets", "target_lengths"):
        assert torch.equal(batch[key], torch.cat([clean[key], clean[key]]))
    # the second half: the log-mel features of the augmented audio, computed here by hand
    from sparse.data.audio import load_audio
    from sparse.train.augment import load_noises

    noises = load_noises(noise_folder(cfg, root), SR)
    g = batch_generator(cfg.seed, 1, 3, 0)
    fbank = LogMelFilterbank(n_mels=20, hop_ms=10.0, win_ms=25.0, sample_rate=SR)
    for k, i in enumerate(idx):
        if task == "kws":  # word/clip
            path = Path(root) / f"{train.ids[i]}.wav"
        else:  # speaker_sentence, in <region>/<speaker>/<sentence>.wav
            speaker, sentence = train.ids[i].split("_", 1)
            (path,) = Path(root).rglob(f"{speaker}/{sentence}.wav")
        wave = torch.from_numpy(load_audio(path, SR)[0])
        if task == "kws":  # the clips are read padded to 1 s
            wave = torch.nn.functional.pad(wave, (0, max(0, SR - wave.shape[0])))[:SR]
        aug, _ = augment_waveform(wave, cfg.augment, SR, noises, g)
        f, fl = fbank(aug[None], torch.tensor([aug.shape[0]]))
        assert int(batch["lengths"][4 + k]) == int(fl[0])
        assert torch.allclose(batch["features"][4 + k, :int(fl[0])], f[0, :int(fl[0])],
                              atol=1e-4)
        assert torch.all(batch["features"][4 + k, int(fl[0]):] == 0)
    # the same batch of the same step: the same augmentation; another step: another
    assert torch.equal(augment(dict(clean), idx, 1, 3)["features"], batch["features"])
    assert not torch.equal(augment(dict(clean), idx, 1, 4)["features"][4:].sum(),
                           batch["features"][4:].sum())
    replaced = concat_augmented(clean, batch["features"][4:], batch["lengths"][4:], False)
    assert replaced["features"].shape[0] == 4 and torch.equal(replaced["labels"]
                                                              if task == "kws" else
                                                              replaced["targets"],
                                                              clean["labels"] if task == "kws"
                                                              else clean["targets"])


def test_a_missing_noise_folder_is_named(data_dir, tmp_path, monkeypatch, capsys):
    from sparse.cli import main

    monkeypatch.setenv("SPARSE_DATA_DIR", str(data_dir))
    args = ["train", "--out", str(tmp_path / "run")]
    for s in _tiny(data_dir, f"augment.noise_dir={tmp_path / 'nowhere'}"):
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "augment.noise_dir" in err and str(tmp_path / "nowhere") in err
    assert "Traceback" not in err


def _env(data_dir: Path) -> dict[str, str]:
    e = dict(os.environ, SPARSE_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    e["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this very sparse
    return e


def _sparse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparse.cli", *args], env=env,
                          capture_output=True, text=True, timeout=240)


def _train_args(data_dir: Path, out: Path) -> list[str]:
    return ["train", "--out", str(out), *[x for s in _tiny(data_dir) for x in ("--set", s)]]


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory) -> Path:
    """An uninterrupted tiny run with augmentation."""
    out = tmp_path_factory.mktemp("augmented") / "run"
    r = _sparse(_env(data_dir), *_train_args(data_dir, out))
    assert r.returncode == 0, r.stderr
    return out


def test_an_augmented_run_killed_mid_epoch_resumes_exactly(data_dir, reference, tmp_path):
    env = _env(data_dir)
    weights = load_checkpoint(reference / "checkpoints" / "last.pt")["model"]
    out = tmp_path / "killed"
    kill_mid_epoch(_train_args(data_dir, out), env, out, signal.SIGKILL)
    last = out / "checkpoints" / "last.pt"
    p = load_checkpoint(last)["progress"]
    assert p["epoch"] == 1 and p["step_in_epoch"] > 0, p
    r = _sparse(env, "train", "--resume", "--out", str(out))
    assert r.returncode == 0, r.stderr
    for k, v in load_checkpoint(last)["model"].items():
        assert torch.equal(v, weights[k]), f"{k} differs after the resume"
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]


def test_evaluate_under_the_telephone_condition(data_dir, reference):
    env = _env(data_dir)
    r = _sparse(env, "evaluate", str(reference))
    assert r.returncode == 0, r.stderr
    r = _sparse(env, "evaluate", str(reference), "--condition", "telephone")
    assert r.returncode == 0, r.stderr
    assert "condition: telephone" in r.stdout
    clean = json.loads((reference / "evaluation" / "test.json").read_text())
    tel = json.loads((reference / "evaluation" / "test-telephone.json").read_text())
    assert clean["condition"] == "clean" and tel["condition"] == "telephone"
    assert tel["utterances"] == clean["utterances"]
    # other audio: other outputs (the loss of the same model on the same clips changes)
    assert tel["loss"] != clean["loss"]
    assert "condition: telephone" in (reference / "evaluation" / "test-telephone.txt"
                                      ).read_text().splitlines()[0]
    r = _sparse(env, "evaluate", str(reference), "--condition", "radio")
    assert r.returncode == 2 and "--condition" in r.stderr and "Traceback" not in r.stderr
