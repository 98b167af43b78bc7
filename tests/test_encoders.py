"""ASREncoder and KWSEncoder: the original SPARSE code's example, exact lengths, batch
consistency, streaming."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sparse.encoder_asr import ASREncoder, pool_time
from sparse.encoder_kws import KWSEncoder
from sparse.params import count_parameters, format_parameter_table
from sparse.snn import set_implementation

from .helpers import FAST_LOOPS, use_loop


def test_seed_readme_asr_example_runs_verbatim():
    # the second code example of the original SPARSE code's README, unchanged
    import torch
    import torch.nn as nn  # noqa: F401

    from sparse.encoder_asr import ASREncoder

    # Define random input
    batch_size, num_frames, num_mels = 8, 1000, 80
    x = torch.rand(batch_size, num_frames, num_mels)

    # Instantiate module
    model = ASREncoder(
        num_mel_bins=num_mels,
        auditory_channels=[16],
        auditory_kernel_size=(7, 7),
        auditory_frequency_stride=[1],
        cortex_layer_sizes=[512]*3,
        cortex_sfa_portions=[0.5]*3,
        cortex_rnn_portions=[0.5]*3,
        cortex_feedforward_portions=[1.0]*3,
        phoneme_num_layers=2,
        phoneme_features=512,
        phoneme_ctc_rate_hz=25,
        dropout=0.15,
        dt=1.0,
    )

    # Pass input through module
    y = model(x)

    assert y.features.shape == (8, 25, 512)  # 1000 steps of 1 ms pooled to 25 Hz
    assert y.lengths.tolist() == [25] * 8
    assert y.spikes["nerve"].shape == (8, 1000, 16 * 74)
    for name in ("cortex1", "cortex2", "cortex3"):
        assert y.spikes[name].shape == (8, 1000, 512)
        assert y.spikes[name].sum() > 0


def _asr(**overrides):
    kwargs = dict(
        num_mel_bins=12, auditory_channels=[3], auditory_kernel_size=(3, 5),
        auditory_frequency_stride=[2], cortex_layer_sizes=[14, 10], cortex_sfa_portions=[0.5, 1.0],
        cortex_rnn_portions=[0.5, 0.5], cortex_feedforward_portions=[1.0, 0.8],
        phoneme_num_layers=1, phoneme_features=6, phoneme_ctc_rate_hz=25, dropout=0.1, dt=10.0,
    )
    kwargs.update(overrides)
    return ASREncoder(**kwargs)


def _kws(**overrides):
    kwargs = dict(
        num_mel_bins=12, num_classes=5, auditory_channels=[3, 4], auditory_kernel_size=(3, 3),
        auditory_frequency_stride=[1, 2], cortex_layer_sizes=[14, 10],
        cortex_sfa_portions=[0.5, 0.5], cortex_rnn_portions=[0.5, 1.0],
        cortex_feedforward_portions=[1.0, 1.0], dropout=0.1, dt=10.0,
    )
    kwargs.update(overrides)
    return KWSEncoder(**kwargs)


def _randomise_running_stats(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.3, 1.5)


def _ragged(lengths, mels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    items = [torch.randn(n, mels, generator=gen) * 2 for n in lengths]
    batch = torch.full((len(lengths), max(lengths), mels), 7.0)  # junk padding
    for i, item in enumerate(items):
        batch[i, : len(item)] = item
    return items, batch


def test_pool_time_exact_lengths_and_partial_windows():
    spikes = torch.arange(10.0).view(10, 1, 1).repeat(1, 2, 1)  # (time, batch, 1)
    pooled, lengths = pool_time(spikes, 4, torch.tensor([10, 5]))
    assert lengths.tolist() == [3, 2]
    assert pooled[:, 0, 0].tolist() == [1.5, 5.5, 8.5]  # last window: steps 8, 9 only
    assert pooled[:2, 1, 0].tolist() == [1.5, 4.0]      # steps 0-3, then step 4 alone


@pytest.mark.parametrize("lengths", [[37, 20, 9], [37.0, 20.0, 9.0]])
def test_asr_output_lengths_are_what_forward_returns(lengths):
    model = _asr().eval()  # 10 ms steps at a 25 Hz output rate: pooling over 4 steps
    _, batch = _ragged([37, 20, 9], 12)
    with torch.no_grad():
        out = model(batch, torch.tensor(lengths))
    predicted = model.output_lengths(torch.tensor(lengths))
    assert predicted.dtype == torch.long
    assert predicted.tolist() == out.lengths.tolist() == [10, 5, 3]
    assert model.output_lengths([0, 4, 5]).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="whole numbers of frames"):
        model.output_lengths(torch.tensor([36.5]))


@pytest.mark.parametrize("implementation", ["reference", *FAST_LOOPS])
def test_asr_padded_batch_equals_items(implementation, monkeypatch):
    implementation = use_loop(implementation, monkeypatch)
    torch.manual_seed(0)
    model = _asr().eval()
    set_implementation(model, implementation)
    _randomise_running_stats(model)
    lengths = [37, 20, 9]
    items, batch = _ragged(lengths, 12)
    with torch.no_grad():
        out = model(batch, torch.tensor(lengths))
        assert out.lengths.tolist() == [10, 5, 3]  # ceil(length / 4)
        for i, item in enumerate(items):
            alone = model(item[None])
            n = out.lengths[i]
            assert alone.lengths.tolist() == [n]
            torch.testing.assert_close(out.features[i, :n], alone.features[0], rtol=1e-5,
                                       atol=1e-6)
            assert torch.all(out.features[i, n:] == 0)
            for name, spikes in out.spikes.items():
                torch.testing.assert_close(spikes[i, : lengths[i]], alone.spikes[name][0],
                                           rtol=0, atol=0)


def test_kws_padded_batch_equals_items():
    torch.manual_seed(1)
    model = _kws().eval()
    _randomise_running_stats(model)
    lengths = [30, 11, 23]
    items, batch = _ragged(lengths, 12, seed=2)
    with torch.no_grad():
        out = model(batch, torch.tensor(lengths))
        assert out.log_probs.shape == (3, 5)
        torch.testing.assert_close(out.log_probs.exp().sum(1), torch.ones(3))
        for i, item in enumerate(items):
            alone = model(item[None])
            torch.testing.assert_close(out.log_probs[i], alone.log_probs[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk", [4, 3, 7, 50])
@pytest.mark.parametrize("two_blocks", [False, True])
def test_asr_streaming_equals_whole_utterance(chunk, two_blocks):
    torch.manual_seed(2)
    overrides = dict(auditory_channels=[3, 2], auditory_frequency_stride=[1, 2]) if two_blocks \
        else {}
    model = _asr(**overrides).eval()  # pooling kernel = 1000 / 10 / 25 = 4 steps
    _randomise_running_stats(model)
    x = torch.randn(2, 50, 12) * 2
    with torch.no_grad():
        whole = model(x).features
        state = model.initial_state(2)
        pieces = []
        for start in range(0, 50, chunk):
            out, state = model.step(x[:, start:start + chunk], state)
            pieces.append(out)
        pieces.append(model.finish(state))
    streamed = torch.cat(pieces, dim=1)
    assert streamed.shape == whole.shape == (2, 13, 6)
    torch.testing.assert_close(streamed, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 6, 13])
def test_kws_streaming_equals_whole_utterance(chunk):
    torch.manual_seed(3)
    model = _kws().eval()
    _randomise_running_stats(model)
    x = torch.randn(2, 41, 12) * 2
    with torch.no_grad():
        whole = model(x).log_probs
        state = model.initial_state(2)
        for start in range(0, 41, chunk):
            log_probs, state = model.step(x[:, start:start + chunk], state)
    torch.testing.assert_close(log_probs, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", ["asr", "kws", "front"])
def test_init_state_is_a_deprecated_alias_of_initial_state(make):
    model = _asr() if make != "kws" else _kws()
    if make == "front":
        model = model.front
    with pytest.warns(DeprecationWarning, match=r"\.init_state is deprecated; use .*"
                      r"\.initial_state"):
        old = model.init_state(2)
    new = model.initial_state(2)
    assert type(old) is type(new)
    assert torch.equal(old.nerve.u if make == "front" else old.front.nerve.u,
                       new.nerve.u if make == "front" else new.front.nerve.u)


def test_kws_output_trains_with_cross_entropy():
    torch.manual_seed(4)
    model = _kws()
    x = torch.randn(4, 25, 12)
    labels = torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).log_probs, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_parameter_accounting_counts_masked_weights_separately():
    torch.manual_seed(5)
    model = _asr(cortex_feedforward_portions=[0.5, 1.0], cortex_sfa_portions=[0.5, 0.0])
    rows = {r.module: r for r in count_parameters(model)}
    total = rows["total"]
    assert total.stored == sum(p.numel() for p in model.parameters())
    layer0, layer1 = model.front.cortex.layers
    pop0, pop1 = layer0.neurons, layer1.neurons
    missing = (
        (~layer0.feedforward_mask).sum() + (~pop0.recurrent_mask).sum()
        + (~pop1.recurrent_mask).sum()
        + 3 * (~pop0.adaptation_mask).sum() + 3 * (~pop1.adaptation_mask).sum()
        + 3 * model.front.nerve.num_neurons  # the nerve is LIF only
    )
    assert total.stored - total.effective == int(missing)
    assert "front.cortex" in format_parameter_table(count_parameters(model))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: _asr(phoneme_ctc_rate_hz=30), "does not divide the frame rate"),
        (lambda: _asr(auditory_kernel_size=(3, 13)), "13 frequency taps but the input"),
        (lambda: _asr(auditory_channels=[2, 2], auditory_frequency_stride=[1]),
         "auditory_frequency_stride has 1 entries"),
        (lambda: _kws(num_classes=1), "num_classes must be an integer >= 2"),
    ],
)
def test_bad_configuration_names_the_problem(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_mel_count_names_the_problem():
    model = _asr()
    with pytest.raises(ValueError, match="have 40 mel bins but the encoder was built for "
                                         "num_mel_bins=12"):
        model(torch.zeros(1, 20, 40))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, 20, 12), float("nan")))
