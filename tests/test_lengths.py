"""sparse.lengths: the one mask of valid entries and the one rule for lengths, at every
entry point that takes lengths (layers, features, firing rates)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse.features import log_mel_filterbank, utterance_standardize
from sparse.lengths import check_lengths, length_mask, length_mask_np, whole_lengths
from sparse.rates import firing_rates
from sparse.snn import MultilayeredSpiking


def _net() -> MultilayeredSpiking:
    return MultilayeredSpiking(3, [2], sfa_portions=0.5, rnn_portions=0.0, ff_portions=1.0)


def _loop_mask(lengths: list[int], max_len: int) -> list[list[bool]]:
    return [[t < n for t in range(max_len)] for n in lengths]


@pytest.mark.parametrize("lengths", [[5, 0, 3, 1], [7], [0, 0], [2, 7, 7]])
def test_mask_matches_a_loop_in_both_layouts_and_in_numpy(lengths):
    expected = _loop_mask(lengths, 7)
    lens = torch.tensor(lengths)
    assert length_mask(lens, 7).tolist() == expected
    transposed = [[row[t] for row in expected] for t in range(7)]
    assert length_mask(lens, 7, time_major=True).tolist() == transposed
    assert length_mask(lens, 7).dtype == torch.bool
    assert length_mask_np(np.array(lengths), 7).tolist() == expected


def test_check_lengths_returns_long_on_the_device_and_fills_none():
    out = check_lengths([3.0, 2.0], 2, 4, "cpu")
    assert out.dtype == torch.long and out.tolist() == [3, 2]
    assert check_lengths(None, 3, 9, "cpu").tolist() == [9, 9, 9]
    assert whole_lengths(np.array([1, 4], dtype=np.uint8), 2, 4).dtype == np.int64


# the rule: whole-number floats are accepted, everything else that is not an integer refused
ACCEPTED = [torch.tensor([4, 2]), torch.tensor([4.0, 2.0]), np.array([4.0, 2.0]), [4, 2],
            torch.tensor([4, 2], dtype=torch.int16)]
REFUSED = [
    (torch.tensor([4.0, 2.5]), ValueError, "whole numbers"),
    (torch.tensor([1.0, 0.5]), ValueError, "relative"),
    (torch.tensor([4.0, float("nan")]), ValueError, "NaN or inf"),
    (torch.tensor([4.0, float("inf")]), ValueError, "NaN or inf"),
    (torch.tensor([True, True]), TypeError, "integer"),
    (torch.tensor([4, 2], dtype=torch.complex64), TypeError, "integer"),
    (torch.tensor([4, 5]), ValueError, r"lengths\[1\] = 5 is out of range"),
    (torch.tensor([4, 0]), ValueError, r"must lie in \[1, 4\]"),
    (torch.tensor([4]), ValueError, r"shape \(2,\)"),
    (torch.tensor([[4, 2]]), ValueError, r"shape \(2,\)"),
]


@pytest.mark.parametrize("lengths", ACCEPTED)
def test_whole_lengths_are_accepted_by_every_entry_point(lengths):
    assert check_lengths(lengths, 2, 4, "cpu").tolist() == [4, 2]
    net = _net()
    x = torch.randn(2, 4, 3)
    spikes = net(x, lengths=lengths)
    reference = net(x, lengths=torch.tensor([4, 2]))
    assert torch.equal(spikes[0] if isinstance(spikes, tuple) else spikes,
                       reference[0] if isinstance(reference, tuple) else reference)
    rates = firing_rates(np.ones((2, 4, 1)), 1.0, lengths)
    np.testing.assert_array_equal(rates, 1000.0)
    feats = torch.randn(2, 4, 3)
    assert torch.equal(utterance_standardize(feats, lengths),
                       utterance_standardize(feats, torch.tensor([4, 2])))


@pytest.mark.parametrize(("lengths", "error", "match"), REFUSED)
def test_other_lengths_are_refused_alike_by_every_entry_point(lengths, error, match):
    with pytest.raises(error, match=match):
        check_lengths(lengths, 2, 4, "cpu")
    with pytest.raises(error, match=match):
        _net()(torch.randn(2, 4, 3), lengths=lengths)
    if lengths.dim() == 1:  # firing_rates flattens its lengths: a (1, 2) array is two lengths
        with pytest.raises(error, match=match):
            firing_rates(np.ones((2, 4, 1)), 1.0, lengths)


def test_the_features_refuse_fractional_lengths_and_take_whole_floats():
    wave = torch.randn(2, 800)
    feats, frames = log_mel_filterbank(wave, torch.tensor([800.0, 400.0]))
    same, same_frames = log_mel_filterbank(wave, [800, 400])
    assert torch.equal(feats, same) and torch.equal(frames, same_frames)
    with pytest.raises(ValueError, match="whole numbers of samples"):
        log_mel_filterbank(wave, torch.tensor([800.0, 400.5]))


def test_firing_rates_of_one_utterance_follow_the_rule_too():
    spikes = np.ones((10, 2))
    np.testing.assert_array_equal(firing_rates(spikes, 1.0, 4.0), 1000.0)
    with pytest.raises(ValueError, match="whole numbers"):
        firing_rates(spikes, 1.0, 4.5)  # truncated to 4 before
    with pytest.raises(ValueError, match=r"must lie in \[1, 10\]"):
        firing_rates(spikes, 1.0, 11)


def test_the_encoders_take_whole_float_lengths_as_integers():
    from .test_encoders import _asr, _kws

    torch.manual_seed(0)
    x = torch.randn(2, 20, 12)
    for make in (_asr, _kws):
        model = make().eval()
        with torch.no_grad():
            as_float = model(x, torch.tensor([20.0, 11.0]))
            as_int = model(x, torch.tensor([20, 11]))
        for a, b in zip(as_float, as_int, strict=True):
            if isinstance(a, torch.Tensor):
                assert a.dtype == b.dtype and torch.equal(a, b)
        with pytest.raises(ValueError, match="whole numbers"):
            model(x, torch.tensor([20.0, 10.5]))
