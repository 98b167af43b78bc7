"""Tests of sparse.features: agreement with SpeechBrain's Fbank and torchaudio's Kaldi fbank,
exact lengths, batch consistency, streaming, normalisation and errors.

The reference tests need SpeechBrain and torchaudio (``bash scripts/setup_speechbrain.sh``).
Without them they are skipped, unless SPARSE_REQUIRE_REFERENCES=1, when they fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sparse.features import (
    FbankConfig,
    FilterbankStream,
    GlobalStandardization,
    LogMelFilterbank,
    UtteranceStandardization,
    frames_for,
    log_mel_filterbank,
    mel_filter_matrix,
    utterance_standardize,
)

from .helpers import reference_library

# Agreement with the references, float32 input, on speech-like test signals: the largest
# absolute difference of any feature value (log-mel in dB for SpeechBrain, in nats for Kaldi).
# Seen: <= 1.8e-4 dB for values within 50 dB of the utterance's peak and <= 2.3e-3 dB for all
# values (down to the 80 dB clip): float32 FFT rounding in bins far below the peak, where
# SpeechBrain itself is 1.9e-3 dB off a float64 computation and ours 4e-4 dB. Kaldi: <= 1.6e-4
# nats everywhere.
SPEECHBRAIN_ATOL_DB_NEAR_PEAK = 5e-4  # values within 50 dB of the utterance's peak
SPEECHBRAIN_ATOL_DB = 5e-3  # every value
KALDI_ATOL_NATS = 1e-3


def _reference(module: str):
    return reference_library(module, "bash scripts/setup_speechbrain.sh")


def _speechlike(n: int, seed: int = 0, sample_rate: int = 16000) -> torch.Tensor:
    """A harmonic tone with a gliding pitch, bursts of noise and silence: (n,) float32."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    f0 = 120.0 + 60.0 * torch.sin(2 * math.pi * 1.5 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 12))
    envelope = (torch.sin(2 * math.pi * 3.0 * t) > -0.3).double()
    noise = torch.randn(n, generator=g, dtype=torch.float64)
    x = 0.2 * voiced * envelope + 0.02 * noise * (1 - envelope) + 1e-3 * noise
    return x.float()


# --- references -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_mels", "hop_ms", "sample_rate", "n"),
    [(80, 2.0, 16000, 16000), (80, 10.0, 16000, 12345), (40, 10.0, 16000, 8000),
     (40, 5.0, 8000, 9001)],
)  # fmt: skip
def test_matches_speechbrain_fbank(n_mels: int, hop_ms: float, sample_rate: int, n: int) -> None:
    lobes = _reference("speechbrain.lobes.features")
    wav = torch.stack([_speechlike(n, seed=1, sample_rate=sample_rate), _speechlike(n, seed=2)])
    ref = lobes.Fbank(n_mels=n_mels, hop_length=hop_ms, win_length=25, sample_rate=sample_rate)(wav)
    cfg = FbankConfig.speechbrain(n_mels=n_mels, hop_ms=hop_ms, sample_rate=sample_rate)
    ours, frame_lengths = log_mel_filterbank(wav, config=cfg)
    assert ours.shape == ref.shape
    assert frame_lengths.tolist() == [ref.shape[1]] * 2 == [cfg.frames_for(n)] * 2
    diff = (ours - ref).abs()
    assert diff.max().item() < SPEECHBRAIN_ATOL_DB
    near_peak = ours > ours.amax(dim=(1, 2), keepdim=True) - 50.0
    assert diff[near_peak].max().item() < SPEECHBRAIN_ATOL_DB_NEAR_PEAK


def test_matches_speechbrain_paper_config_without_top_db() -> None:
    # The default config is SpeechBrain's Fbank(n_mels=80, hop_length=2) minus the 80 dB clip,
    # which the signal here (white noise) never reaches.
    lobes = _reference("speechbrain.lobes.features")
    wav = 0.1 * torch.randn(3, 4000, generator=torch.Generator().manual_seed(3))
    ref = lobes.Fbank(n_mels=80, hop_length=2, win_length=25)(wav)
    ours, _ = LogMelFilterbank()(wav)
    assert (ours - ref).abs().max().item() < SPEECHBRAIN_ATOL_DB


@pytest.mark.parametrize(
    ("options", "kaldi_options"),
    [
        ({}, {}),
        ({"n_mels": 80, "hop_ms": 2.0}, {"num_mel_bins": 80, "frame_shift": 2.0}),
        (
            {"n_mels": 40, "window": "hamming", "preemphasis": 0.0, "remove_dc_offset": False,
             "f_min": 0.0, "n_fft": 400, "f_max": 7000.0},
            {"num_mel_bins": 40, "window_type": "hamming", "preemphasis_coefficient": 0.0,
             "remove_dc_offset": False, "low_freq": 0.0, "round_to_power_of_two": False,
             "high_freq": 7000.0},
        ),
        ({"window": "hann", "sample_rate": 8000}, {"window_type": "hanning",
                                                   "sample_frequency": 8000}),
    ],
)  # fmt: skip
def test_matches_torchaudio_kaldi_fbank(options: dict, kaldi_options: dict) -> None:
    kaldi = _reference("torchaudio.compliance.kaldi")
    cfg = FbankConfig.kaldi(**options)
    wav = _speechlike(11111, seed=4, sample_rate=cfg.sample_rate)
    ref = kaldi.fbank(wav[None], dither=0.0, **kaldi_options)
    ours, frame_lengths = log_mel_filterbank(wav[None], config=cfg)
    assert ours.shape[1:] == ref.shape
    assert int(frame_lengths) == ref.shape[0] == cfg.frames_for(11111)
    assert (ours[0] - ref).abs().max().item() < KALDI_ATOL_NATS


def test_htk_filters_match_torchaudio_melscale() -> None:
    functional = _reference("torchaudio.functional")
    cfg = FbankConfig(n_mels=64, n_fft=512, mel_filters="htk", f_min=50.0, f_max=7600.0)
    ref = functional.melscale_fbanks(
        cfg.n_freqs, 50.0, 7600.0, 64, 16000, norm=None, mel_scale="htk"
    )
    torch.testing.assert_close(mel_filter_matrix(cfg, torch.float32), ref, atol=1e-5, rtol=0)


# --- conventions and lengths -------------------------------------------------------------------


def test_paper_defaults_and_frame_counts() -> None:
    cfg = FbankConfig()
    assert (cfg.n_mels, cfg.win_length, cfg.hop_length, cfg.fft_size) == (80, 400, 32, 400)
    assert cfg.frame_rate_hz == 500.0
    for n in [1, 31, 32, 399, 400, 16000, 16001]:
        stft = torch.stft(
            torch.zeros(n), 400, 32, 400, torch.ones(400), pad_mode="constant", return_complex=True
        )
        assert cfg.frames_for(n) == 1 + n // 32 == stft.shape[-1]
    snip = FbankConfig(framing="snip_edges")
    assert [snip.frames_for(n) for n in (399, 400, 431, 432)] == [0, 1, 1, 2]
    lens = torch.tensor([1, 400, 16000])
    assert frames_for(lens, snip).tolist() == [0, 1, 1 + (16000 - 400) // 32]
    assert frames_for(16000, hop_ms=10.0) == 101


@pytest.mark.parametrize("framing", ["center", "snip_edges"])
def test_padded_batch_equals_items_alone(framing: str) -> None:
    cfg = FbankConfig(framing=framing, preemphasis=0.97, remove_dc_offset=True, top_db=60.0)
    lengths = [5000, 1234, 3333, 401]
    items = [_speechlike(n, seed=i) for i, n in enumerate(lengths)]
    batch = torch.full((4, 5000), 7.0)  # padding that is not zero must not leak in
    for i, item in enumerate(items):
        batch[i, : len(item)] = item
    feats, frame_lengths = LogMelFilterbank(cfg)(batch, torch.tensor(lengths))
    assert frame_lengths.tolist() == [cfg.frames_for(n) for n in lengths]
    assert feats.shape == (4, max(frame_lengths.tolist()), 80)
    for i, item in enumerate(items):
        alone, alone_len = log_mel_filterbank(item[None], config=cfg)
        t = int(frame_lengths[i])
        assert int(alone_len) == t
        torch.testing.assert_close(feats[i, :t], alone[0], atol=1e-4, rtol=1e-5)
        assert bool((feats[i, t:] == 0).all())


def test_float64_gradients_and_dtypes() -> None:
    wav = _speechlike(3200).double()[None].requires_grad_()
    feats, _ = log_mel_filterbank(wav, hop_ms=10.0)
    assert feats.dtype == torch.float64
    feats.sum().backward()
    assert wav.grad is not None and bool(torch.isfinite(wav.grad).all())
    half, _ = log_mel_filterbank(wav.detach().half(), hop_ms=10.0)
    assert half.dtype == torch.float32


def test_dither_only_in_training_mode() -> None:
    fbank = LogMelFilterbank(dither=1e-3, hop_ms=10.0)
    wav = torch.zeros(1, 1600)
    fbank.train()
    noisy, _ = fbank(wav, generator=torch.Generator().manual_seed(0))
    fbank.eval()
    clean, _ = fbank(wav)
    assert noisy.std() > 0
    assert bool((clean == clean[0, 0, 0]).all())  # silence -> the floor everywhere


@pytest.mark.parametrize("framing", ["center", "snip_edges"])
@pytest.mark.parametrize("chunk", [1, 77, 1600, 4000])
def test_streaming_equals_whole_utterance(framing: str, chunk: int) -> None:
    cfg = FbankConfig(framing=framing, preemphasis=0.97, remove_dc_offset=True)
    n = 4000 if chunk != 1 else 900
    wav = torch.stack([_speechlike(n, seed=5), _speechlike(n, seed=6)])
    whole, _ = log_mel_filterbank(wav, config=cfg)
    stream = FilterbankStream(cfg)
    parts, seen = [], 0
    for start in range(0, n, chunk):
        part = stream.push(wav[:, start : start + chunk])
        seen += wav[:, start : start + chunk].shape[1]
        assert stream.frames_emitted == cfg.frames_ready(seen)
        parts.append(part)
    parts.append(stream.flush())
    streamed = torch.cat(parts, dim=1)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, atol=1e-4, rtol=1e-5)
    with pytest.raises(RuntimeError, match="flushed"):
        stream.push(wav[:, :10])


# --- normalisation -----------------------------------------------------------------------------


def _padded_features(seed: int, lengths: list[int], channels: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 3.0 + 2.0 * torch.randn(len(lengths), max(lengths), channels, generator=g)
    for i, n in enumerate(lengths):
        x[i, n:] = float("nan") if i % 2 else 1e6  # padding that would ruin any statistic
    return x


def test_utterance_normalize_ignores_padding() -> None:
    lengths = [30, 7, 19]
    x = _padded_features(0, lengths)
    out = UtteranceStandardization()(x, torch.tensor(lengths))
    for i, n in enumerate(lengths):
        valid = x[i, :n].double().numpy()
        expected = (valid - valid.mean(0)) / valid.std(0)
        np.testing.assert_allclose(out[i, :n].numpy(), expected, rtol=1e-4, atol=1e-5)
        assert bool((out[i, n:] == 0).all())
    means_only = utterance_standardize(x, lengths, normalize_variance=False)
    np.testing.assert_allclose(
        means_only[1, :7].numpy(), (x[1, :7] - x[1, :7].mean(0)).numpy(), atol=1e-5
    )


def test_global_normalization_running_statistics() -> None:
    norm = GlobalStandardization(5)
    batches = [(_padded_features(s, lens), lens) for s, lens in
               enumerate([[12, 3, 9], [20, 20], [1, 15, 4, 8]])]  # fmt: skip
    for x, lens in batches:
        out = norm(x, torch.tensor(lens))
        for i, n in enumerate(lens):
            assert bool((out[i, n:] == 0).all())
    valid = np.concatenate([x[i, :n].double().numpy() for x, lens in batches
                            for i, n in enumerate(lens)])  # fmt: skip
    assert int(norm.count) == valid.shape[0]
    np.testing.assert_allclose(norm.mean.numpy(), valid.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), valid.var(0), rtol=1e-10)

    # eval: frozen statistics, output = (x - mean) / std on valid frames
    norm.eval()
    x, lens = batches[0]
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    out = norm(x, lens)
    for k, v in norm.state_dict().items():
        assert torch.equal(v, before[k])
    expected = (x[0, :12].double().numpy() - valid.mean(0)) / valid.std(0)
    np.testing.assert_allclose(out[0, :12].numpy(), expected, rtol=1e-5, atol=1e-5)

    # statistics travel in the state_dict
    fresh = GlobalStandardization(5)
    fresh.load_state_dict(norm.state_dict())
    fresh.eval()
    torch.testing.assert_close(fresh(x, lens), out)

    # frozen in training mode too
    norm.train()
    norm.frozen = True
    norm(x, lens)
    assert int(norm.count) == valid.shape[0]


def _distributed_worker(rank: int, init_file: str, result_file: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=2
    )
    norm = GlobalStandardization(5)
    lens = [[10, 4], [3, 8, 6]][rank]
    norm(_padded_features(rank, lens), lens)
    if rank == 0:
        torch.save({"mean": norm.mean, "var": norm.var, "count": norm.count}, result_file)
    torch.distributed.destroy_process_group()


def test_global_normalization_syncs_across_processes(tmp_path) -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    result = tmp_path / "stats.pt"
    # fork: the children need not re-import torch (spawn costs ~10 s on 2 cores)
    torch.multiprocessing.start_processes(
        _distributed_worker, args=(str(tmp_path / "init"), str(result)), nprocs=2,
        start_method="fork",
    )  # fmt: skip
    stats = torch.load(result)
    valid = np.concatenate(
        [_padded_features(r, lens)[i, :n].double().numpy()
         for r, lens in enumerate([[10, 4], [3, 8, 6]]) for i, n in enumerate(lens)]
    )  # fmt: skip
    assert int(stats["count"]) == valid.shape[0]
    np.testing.assert_allclose(stats["mean"].numpy(), valid.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats["var"].numpy(), valid.var(0), rtol=1e-10)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("waveform", "lengths", "options", "error", "match"),
    [
        (torch.zeros(16000), None, {}, ValueError, r"shape \(batch, samples\)"),
        (torch.zeros(1, 2, 16000), None, {}, ValueError, r"shape \(batch, samples\)"),
        (torch.zeros(1, 100, dtype=torch.int16), None, {}, TypeError, "floating point"),
        (torch.zeros(1, 0), None, {}, ValueError, "empty audio"),
        (torch.zeros(0, 100), None, {}, ValueError, "empty audio"),
        (torch.tensor([[0.0, float("nan")] * 100]), None, {}, ValueError, "NaN"),
        (torch.zeros(2, 100), [100, 0], {}, ValueError, r"lengths\[1\] = 0 is out of range"),
        (torch.zeros(2, 100), [100, 101], {}, ValueError, "out of range"),
        (torch.zeros(2, 100), [100], {}, ValueError, r"shape \(2,\)"),
        (torch.zeros(2, 100), torch.tensor([1.0, 0.5]), {}, ValueError, "relative"),
        (torch.zeros(1, 300), None, {"framing": "snip_edges"}, ValueError, "shorter than one"),
        (torch.zeros(1, 800), None, {"sample_rate": 22050, "win_ms": 20.0}, ValueError,
         r"hop_ms=2 ms is 44.1 samples at sample_rate=22050"),
        (torch.zeros(1, 800), None, {"win_ms": 25.01}, ValueError, "win_ms=25.01"),
        (torch.zeros(1, 800), None, {"n_fft": 256}, ValueError, "n_fft=256 is shorter"),
        (torch.zeros(1, 800), None, {"f_max": 9000.0}, ValueError, "Nyquist"),
        (torch.zeros(1, 800), None, {"framing": "centre"}, ValueError, "framing must be"),
        (torch.zeros(1, 800), None, {"log": "ln", "top_db": 80.0}, ValueError, "top_db"),
    ],
)  # fmt: skip
def test_bad_input_errors(waveform, lengths, options, error, match) -> None:
    with pytest.raises(error, match=match):
        log_mel_filterbank(waveform, lengths, **options)


@pytest.mark.parametrize("old,new", [("GlobalNormalization", "GlobalStandardization"),
                                     ("UtteranceNormalization", "UtteranceStandardization"),
                                     ("utterance_normalize", "utterance_standardize")])
def test_former_standardization_names_warn_and_are_the_new_ones(old, new) -> None:
    import sparse.features as features

    with pytest.warns(DeprecationWarning, match=rf"sparse\.features\.{old} is deprecated; use "
                                                rf"sparse\.features\.{new}"):
        assert getattr(features, old) is getattr(features, new)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        features.nothing  # noqa: B018


def test_standardization_checks_features_as_the_encoders_do() -> None:
    """The same bad feature batch gets the same message from a standardisation as from an
    encoder's check (:func:`sparse.snn.check_sequence`)."""
    from sparse.snn import check_sequence

    for bad in ([1.0], torch.zeros(10, 80), torch.zeros(1, 10, 80, dtype=torch.long)):
        with pytest.raises((TypeError, ValueError)) as encoder:
            check_sequence(bad, 80, "utterance_standardize", kind="features")
        with pytest.raises(type(encoder.value)) as ours:
            utterance_standardize(bad)
        assert str(ours.value) == str(encoder.value)
    empty = torch.zeros(2, 0, 3)  # no frames is no error here: nothing to standardise
    assert utterance_standardize(empty).shape == empty.shape


def test_normalization_errors() -> None:
    norm = GlobalStandardization(80)
    with pytest.raises(ValueError, match="expected 80 channels, got 40"):
        norm(torch.zeros(1, 10, 40))
    with pytest.raises(ValueError, match=r"shape \(batch, frames, mel bins\)"):
        norm(torch.zeros(10, 80))
    with pytest.raises(ValueError, match="NaN or inf in valid frames"):
        norm(torch.full((1, 10, 80), float("nan")), [3])
    norm.eval()
    with pytest.raises(RuntimeError, match="no statistics yet"):
        norm(torch.zeros(1, 10, 80))
    with pytest.raises(ValueError, match="out of range"):
        utterance_standardize(torch.zeros(2, 10, 3), [11, 2])
    with pytest.raises(ValueError, match="top_db=None"):
        FilterbankStream(top_db=80.0)
