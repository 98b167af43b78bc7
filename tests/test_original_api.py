"""Faithful to the original SPARSE code: its constructor signatures, defaults, keyword names
and configuration files work unchanged, and mean what they mean there.

The tables below are transcribed from the original code (idiap/sparse: ``sparse/snn.py``,
``sparse/encoder_asr.py``, ``sparse/encoder_kws.py``); its two SpeechBrain configuration files
are in ``tests/data_fixtures/original/`` (BSD 3-Clause, see the README there).
"""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import sparse.snn as snn_module
from sparse.encoder_asr import ASREncoder
from sparse.encoder_kws import KWSEncoder
from sparse.params import count_parameters
from sparse.snn import (
    MultilayeredSpiking,
    ReadoutLayer,
    SpikingFCLayer,
    SpikingNeurons,
    set_implementation,
)
from sparse.train.config import ModelConfig, config_from_dict
from sparse.train.demo import DEMO_KWS_CONFIG
from sparse.train.model import build_model

from .helpers import FAST_LOOPS, reference_library, use_loop

ORIGINAL = Path(__file__).parent / "data_fixtures" / "original"

# ----------------------------------------------------------------------------- the original's
# signatures, in their order, with their defaults (the first entries have none)

ORIGINAL_SIGNATURES = {
    MultilayeredSpiking: [
        ("input_size", None), ("layer_sizes", [144, 144]), ("sfa_portions", [0.3, 0.5]),
        ("rnn_portions", [0.2, 0.3]), ("ff_portions", [0.2, 0.3]), ("use_lateral_rnn", False),
        ("dropout", 0.0), ("use_normal_init", True), ("use_bias", True),
        ("normalization", "batchnorm"), ("tauu_lim", [3.0, 25.0]), ("tauw_lim", [30.0, 500.0]),
        ("a_lim", [0.0, 5.0]), ("b_lim", [0.0, 1.25]), ("threshold", 1.0), ("dt", 1.0),
        ("return_all_spikes", False),
    ],
    SpikingFCLayer: [
        ("input_size", None), ("output_size", None), ("sfa_portion", 0.5),
        ("rnn_portion", 0.3), ("ff_portion", 0.3), ("use_lateral_rnn", False),
        ("use_normal_init", True), ("use_bias", True), ("normalization", "batchnorm"),
        ("dropout", 0.0), ("tauu_lim", [3.0, 25.0]), ("tauw_lim", [30.0, 500.0]),
        ("a_lim", [0.0, 5.0]), ("b_lim", [0.0, 1.25]), ("threshold", 1.0), ("dt", 1.0),
    ],
    SpikingNeurons: [
        ("input_size", None), ("sfa_portion", 0.5), ("rnn_portion", 0.01),
        ("use_lateral_rnn", True), ("use_normal_init", False), ("dropout", 0.0),
        ("tauu_lim", [3, 25]), ("tauw_lim", [30, 350]), ("a_lim", [-0.5, 5.0]),
        ("b_lim", [0.0, 2.0]), ("threshold", 1.0), ("dt", 10.0),
    ],
    ReadoutLayer: [
        ("input_size", None), ("hidden_size", None), ("dropout", 0.0),
        ("normalization", "batchnorm"), ("use_bias", True),
    ],
}
_ENCODER_HEAD = [
    ("num_mel_bins", 80), ("auditory_channels", [16]), ("auditory_kernel_size", (7, 7)),
    ("auditory_frequency_stride", [1]), ("auditory_sfa_portion", 0.0),
    ("auditory_rnn_portion", 0.0), ("auditory_use_lateral_rnn", True),
    ("cortex_layer_sizes", [512, 512, 512]), ("cortex_feedforward_portions", [1.0, 1.0, 1.0]),
]
_ENCODER_TAIL = [
    ("activation", nn.LeakyReLU), ("dropout", 0.15), ("adlif_tauu_lim", [3.0, 25.0]),
    ("adlif_tauw_lim", [30.0, 350.0]), ("adlif_a_lim", [-0.5, 5.0]), ("adlif_b_lim", [0.0, 2.0]),
    ("adlif_use_normal_init", False), ("adlif_threshold", 1.0), ("dt", 1.0),
]
ORIGINAL_SIGNATURES[ASREncoder] = _ENCODER_HEAD + [
    ("cortex_sfa_portions", [0.5, 0.5, 0.5]), ("cortex_rnn_portions", [0.5, 0.5, 0.5]),
    ("cortex_use_lateral_rnn", False), ("phoneme_num_layers", 2), ("phoneme_features", 512),
    ("phoneme_ctc_rate_hz", 25),
] + _ENCODER_TAIL
ORIGINAL_SIGNATURES[KWSEncoder] = _ENCODER_HEAD + [
    ("cortex_rnn_portions", [0.5, 0.5, 0.5]), ("cortex_sfa_portions", [0.5, 0.5, 0.5]),
    ("cortex_use_lateral_rnn", False), ("readout_features", 512),
] + _ENCODER_TAIL


def _same(value, expected) -> bool:
    if isinstance(expected, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(expected)
                and all(_same(v, e) for v, e in zip(value, expected, strict=True)))
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    return value == expected


@pytest.mark.parametrize("cls", list(ORIGINAL_SIGNATURES), ids=lambda c: c.__name__)
def test_signatures_keep_the_originals_order_and_defaults(cls):
    names = cls.__init__.original_names
    params = [p for name, p in inspect.signature(cls.__init__).parameters.items()
              if name != "self"]
    original = ORIGINAL_SIGNATURES[cls]
    for position, (name, default) in enumerate(original):
        ours = params[position]
        # the same position (so positional calls mean the same), under the original's name or
        # the one the alias table maps it to
        assert ours.name == names.get(name, name), (cls.__name__, position, name, ours.name)
        assert ours.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        if default is None:
            assert ours.default is inspect.Parameter.empty, (cls.__name__, name)
        else:
            assert _same(ours.default, default), (cls.__name__, name, ours.default, default)


# ----------------------------------------------------------------------------- keyword names


CALLS = {
    "MultilayeredSpiking": lambda **kw: MultilayeredSpiking(6, [5, 4], **kw),
    "SpikingFCLayer": lambda **kw: SpikingFCLayer(6, 5, **kw),
    "SpikingNeurons": lambda **kw: SpikingNeurons(5, **kw),
    "ReadoutLayer": lambda **kw: ReadoutLayer(6, 3, **kw),
    "ASREncoder": lambda **kw: ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8],
                                          **_one_layer(), **kw),
    "KWSEncoder": lambda **kw: KWSEncoder(num_mel_bins=12, cortex_layer_sizes=[8], num_classes=3,
                                          **_one_layer(), **kw),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_unknown_keyword_is_a_type_error_at_the_called_class(name):
    CALLS[name]()  # the call itself is fine
    with pytest.raises(TypeError) as info:
        CALLS[name](tauu_limit=[3, 25])
    message = str(info.value)
    assert message.startswith(f"{name}() got an unexpected keyword argument 'tauu_limit'")
    assert "tau_u_range" in message and "dt" in message  # the accepted keywords are listed
    # raised before any constructor ran, so not by a sub-layer five levels down
    frames = [entry.name for entry in info.traceback]
    assert "__init__" not in frames, frames


def _one_layer() -> dict:
    return dict(cortex_feedforward_portions=[1.0], cortex_sfa_portions=[0.5],
                cortex_rnn_portions=[0.5], auditory_kernel_size=(3, 3), dt=10.0)


def test_unknown_keyword_names_the_class_called_and_hints():
    with pytest.raises(TypeError, match=r"^ASREncoder\(\) got an unexpected keyword argument "
                                        r"'adlif_tauu' \(did you mean 'adlif_tauu_lim'\?\)"):
        ASREncoder(adlif_tauu=[3, 25])
    with pytest.raises(TypeError, match=r"^KWSEncoder\(\) got an unexpected keyword argument "
                                        r"'phoneme_features'"):
        KWSEncoder(phoneme_features=128)
    with pytest.raises(TypeError, match="got both 'use_lateral_rnn'.*and 'lateral'"):
        MultilayeredSpiking(4, [3, 3], use_lateral_rnn=True, lateral=True)


def test_original_keywords_build_the_same_layers():
    original = dict(use_lateral_rnn=True, use_normal_init=False, use_bias=False,
                    tauu_lim=[4.0, 20.0], tauw_lim=[40.0, 300.0], a_lim=[-0.2, 3.0],
                    b_lim=[0.1, 1.5], threshold=1.2)
    ours = dict(lateral=True, normal_init=False, bias=False, tau_u_range=[4.0, 20.0],
                tau_w_range=[40.0, 300.0], a_range=[-0.2, 3.0], b_range=[0.1, 1.5],
                threshold=1.2)
    built = []
    for kwargs in (original, ours):
        torch.manual_seed(0)
        built.append(MultilayeredSpiking(7, [6, 5], 0.5, 0.5, 1.0, dt=2.0, **kwargs))
    a, b = built
    assert a.state_dict().keys() == b.state_dict().keys()
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    layer = a.layers[1]
    assert layer.linear.bias is None and layer.neurons.lateral
    assert layer.neurons.tau_w_range == (40.0, 300.0) and layer.neurons.threshold == 1.2

    built = []
    for kwargs in (dict(output_size=5, use_bias=False), dict(hidden_size=5, bias=False)):
        torch.manual_seed(1)
        built.append(SpikingFCLayer(input_size=4, **kwargs))
    assert built[0].hidden_size == built[1].hidden_size == 5
    assert torch.equal(built[0].linear.weight, built[1].linear.weight)
    assert SpikingNeurons(input_size=9).num_neurons == 9
    assert ReadoutLayer(4, hidden_size=3, use_bias=False).linear.bias is None
    kws = KWSEncoder(num_mel_bins=12, cortex_layer_sizes=[8], readout_features=7,
                     cortex_use_lateral_rnn=True, auditory_use_lateral_rnn=False,
                     auditory_rnn_portion=0.5, adlif_tauw_lim=[50.0, 200.0],
                     adlif_use_normal_init=True, adlif_threshold=0.9, **_one_layer())
    assert kws.num_classes == 7
    assert kws.front.cortex.layers[0].neurons.lateral and not kws.front.nerve.lateral
    assert kws.front.nerve.V is not None
    for pop in (kws.front.nerve, kws.front.cortex.layers[0].neurons):
        assert pop.tau_w_range == (50.0, 200.0) and pop.normal_init and pop.threshold == 0.9


# ----------------------------------------------------------------------------- their meaning


def _original_equations(current, tau_u, tau_w, a, b, recurrent, threshold, dt):
    """The original's neuron loop (``SpikingNeurons._radlif_cell``), written out in numpy:
    tau in ms, alpha = exp(-dt / tau_u), spike when u exceeds the threshold, reset by 1."""
    alpha, beta = np.exp(-dt / tau_u), np.exp(-dt / tau_w)
    batch, steps, n = current.shape
    u, w, s = (np.zeros((batch, n)) for _ in range(3))
    spikes = []
    for t in range(steps):
        u = alpha * (u - s) - (1 - alpha) * w + current[:, t] + s @ recurrent.T
        w = beta * (w + b * s) + (1 - beta) * a * u
        s = (u - threshold > 0).astype(np.float64)
        spikes.append(s)
    return np.stack(spikes, 1), u, w


@pytest.mark.parametrize("implementation", ["reference", *FAST_LOOPS])
@pytest.mark.parametrize("threshold", [0.7, 1.0, 1.6])
def test_threshold_and_time_constants_mean_what_they_mean_in_the_original(
        implementation, threshold, monkeypatch):
    implementation = use_loop(implementation, monkeypatch) if implementation != "reference" \
        else implementation
    torch.manual_seed(3)
    pop = SpikingNeurons(input_size=12, sfa_portion=0.5, rnn_portion=0.5,
                         use_lateral_rnn=False, tauu_lim=[3.0, 25.0], tauw_lim=[30.0, 350.0],
                         threshold=threshold, dt=2.0, implementation=implementation).double()
    current = torch.rand(3, 90, 12, dtype=torch.float64) * 1.6 * threshold
    spikes, state = pop(current, return_state=True)
    mask = pop.adaptation_mask.double()
    ref_s, ref_u, ref_w = _original_equations(
        current.numpy(), pop.tau_u.detach().numpy(), pop.tau_w.detach().numpy(),
        (pop.a * mask).detach().numpy(), (pop.b * mask).detach().numpy(),
        (pop.V * pop.recurrent_mask).detach().numpy(), threshold, 2.0)
    assert 0 < ref_s.mean() < 0.9
    np.testing.assert_array_equal(spikes.detach().numpy(), ref_s)
    np.testing.assert_allclose(state.u.detach().numpy(), ref_u, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(state.w.detach().numpy(), ref_w, rtol=1e-9, atol=1e-9)
    # a gradient reaches the parameters through the shifted threshold
    spikes.sum().backward()
    assert pop.tau_u.grad.abs().sum() > 0


def test_threshold_state_streams_in_and_out_unshifted():
    torch.manual_seed(4)
    pop = SpikingNeurons(8, sfa_portion=1.0, rnn_portion=0.5, threshold=1.4, dt=1.0).double()
    current = torch.rand(2, 70, 8, dtype=torch.float64) * 2
    whole, final = pop(current, return_state=True)
    first, state = pop(current[:, :31], return_state=True)
    second, final_chunks = pop(current[:, 31:], state=state, return_state=True)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=0)
    for x, y in zip(final, final_chunks, strict=True):
        torch.testing.assert_close(x, y)
    assert whole.sum() > 0


# ----------------------------------------------------------------------------- defaults


def test_multilayered_defaults_are_the_originals():
    torch.manual_seed(0)
    net = MultilayeredSpiking(input_size=30)
    assert net.layer_sizes == [144, 144] and net.output_size == 144 and net.num_layers == 2
    for layer, sfa, rnn, ff in zip(net.layers, (0.3, 0.5), (0.2, 0.3), (0.2, 0.3), strict=True):
        pop = layer.neurons
        assert int(pop.adaptation_mask.sum()) == int(sfa * 144)
        assert pop.rnn_portion == rnn and not pop.lateral and layer.ff_portion == ff
        assert pop.tau_u_range == (3.0, 25.0) and pop.tau_w_range == (30.0, 500.0)
        assert pop.a_range == (0.0, 5.0) and pop.b_range == (0.0, 1.25)
        assert pop.normal_init and pop.threshold == 1.0 and pop.dt == 1.0
        assert layer.linear.bias is not None  # use_bias=True
        assert isinstance(layer.norm, nn.BatchNorm1d) and layer.norm.momentum == 0.05
    y = net((torch.rand(2, 40, 30) > 0.7).float())
    assert y.shape == (2, 40, 144)


def test_normal_initialisation_is_the_originals():
    # mean at the middle of each range, a third of its half-width as standard deviation
    torch.manual_seed(0)
    pop = SpikingFCLayer(4, 40000, sfa_portion=1.0, rnn_portion=0.0).neurons
    for param, (low, high) in ((pop.tau_u, (3.0, 25.0)), (pop.tau_w, (30.0, 500.0)),
                               (pop.b, (0.0, 1.25))):
        values = param.detach().double()
        mean, std = (low + high) / 2, (high - low) / 6
        assert abs(values.mean().item() - mean) < 0.01 * (high - low)
        assert abs(values.std().item() - std) < 0.03 * std  # uniform would be 1.73 std
        assert values.min() >= low and values.max() <= high
    cap = (pop.tau_w - pop.tau_u) ** 2 / (4 * pop.tau_u * pop.tau_w) - 1e-5
    assert torch.all(pop.a >= 0) and torch.all(pop.a <= torch.clamp(cap, max=5.0) + 1e-7)
    uniform = SpikingNeurons(40000, rnn_portion=0.0).tau_u.detach().double()
    assert abs(uniform.std().item() - 22 / math.sqrt(12)) < 0.1  # the encoders' default


def test_recurrent_weights_start_as_the_originals_linear_layer():
    torch.manual_seed(0)
    n = 300
    pop = SpikingNeurons(n, rnn_portion=1.0, lateral=False)
    kept = pop.V[pop.recurrent_mask].detach()
    # torch.nn.Linear(n, n, bias=False).weight: uniform in +-1/sqrt(n)
    assert kept.abs().max() <= 1 / math.sqrt(n)
    assert abs(kept.std().item() - 1 / math.sqrt(3 * n)) < 0.02 / math.sqrt(n)
    torch.manual_seed(0)
    orth = SpikingNeurons(n, rnn_portion=1.0, lateral=False, recurrent_init="orthogonal")
    assert orth.V.detach().abs().max() > 1 / math.sqrt(n)
    with pytest.raises(ValueError, match="recurrent_init must be one of"):
        SpikingNeurons(4, recurrent_init="xavier")


def test_default_portions_fit_two_layers_and_say_so_otherwise():
    with pytest.raises(ValueError, match=r"rnn_portions was not given, and its default "
                                         r"\[0.2, 0.3\] \(the original SPARSE code's\)"):
        MultilayeredSpiking(10, [8, 8, 8], sfa_portions=0.5)
    net = MultilayeredSpiking(10, [8, 8, 8], 0.5, 0.5, 1.0)  # one value for all: fine
    assert [layer.ff_portion for layer in net.layers] == [1.0, 1.0, 1.0]


def test_batchnorm_momentum_and_the_bias_it_cancels():
    torch.manual_seed(0)
    layer = SpikingFCLayer(5, 6, ff_portion=1.0, rnn_portion=0.0).double().train()
    with torch.no_grad():
        layer.linear.bias.uniform_(-2.0, 2.0)
    x = torch.rand(3, 20, 5, dtype=torch.float64)
    layer(x)
    z = x.reshape(-1, 5) @ layer.linear.weight.detach().T + layer.linear.bias.detach()
    # the original: BatchNorm1d(momentum=0.05) over (batch * time) rows of W x + bias
    torch.testing.assert_close(layer.norm.running_mean, 0.05 * z.mean(0))
    torch.testing.assert_close(layer.norm.running_var, 0.95 + 0.05 * z.var(0, unbiased=True))
    # eval: (W x + bias - running mean) / sqrt(running var + eps), then the neurons
    layer.eval()
    bn = layer.norm
    current = ((z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight
               + bn.bias).detach().reshape(3, 20, 6)
    torch.testing.assert_close(layer(x), layer.neurons(current), rtol=0, atol=0)
    # under batch normalisation the bias gets no gradient (it is zero in exact arithmetic)
    layer.train()
    layer(x).sum().backward()
    assert layer.linear.bias.grad is None and layer.linear.weight.grad is not None
    readout = ReadoutLayer(5, 3)
    assert isinstance(readout.norm, nn.BatchNorm1d) and readout.norm.momentum == 0.05


# ----------------------------------------------------------------------------- the readout


@pytest.mark.parametrize("dt", [1.0, 2.0, 10.0])
def test_readout_decay_range_is_the_originals_at_every_step(dt):
    low, high = np.exp(-1 / 5), np.exp(-1 / 25)  # the original's alpha_lim
    torch.manual_seed(0)
    readout = ReadoutLayer(8, 20000, dt=dt).double()
    decay = torch.exp(-dt / readout.tau_u.detach())
    assert decay.min() >= low - 1e-6 and decay.max() <= high + 1e-6
    # initialised uniformly over the decays, as the original
    assert abs(decay.mean().item() - (low + high) / 2) < 0.003
    assert abs(decay.std().item() - (high - low) / math.sqrt(12)) < 0.003
    with torch.no_grad():
        readout.tau_u[:2] = torch.tensor([1e-3, 1e6], dtype=torch.float64)
    readout.constrain_()
    bounds = torch.exp(-dt / readout.tau_u[:2].detach())
    np.testing.assert_allclose(bounds.numpy(), [low, high], rtol=1e-12)
    assert readout.tau_steps == pytest.approx((5.0, 25.0))
    # the encoder's readout: the same per-step range at its step
    kws = KWSEncoder(num_mel_bins=12, cortex_layer_sizes=[8], num_classes=3,
                     **{**_one_layer(), "dt": dt})
    assert kws.readout.tau_u_range == pytest.approx((5 * dt, 25 * dt))


def test_readout_time_constants_are_an_option():
    # the project's former readout: the cortex's 3-25 ms, i.e. 0.3-2.5 steps at 10 ms
    kws = KWSEncoder(num_mel_bins=12, cortex_layer_sizes=[8], num_classes=3,
                     readout_tau_steps=(0.3, 2.5), **_one_layer())
    assert kws.readout.tau_u_range == pytest.approx((3.0, 25.0))
    assert ReadoutLayer(4, 3, dt=2.0, tau_u_range=(3.0, 25.0)).tau_u_range == (3.0, 25.0)
    with pytest.raises(ValueError, match="either as tau_steps"):
        ReadoutLayer(4, 3, tau_steps=(5, 25), tau_u_range=(3.0, 25.0))
    cfg = config_from_dict(DEMO_KWS_CONFIG)
    assert cfg.model.readout_tau_steps == [5.0, 25.0] and ModelConfig().readout_tau_steps == [
        5.0, 25.0]
    small = config_from_dict({
        **DEMO_KWS_CONFIG,
        "model": {**DEMO_KWS_CONFIG["model"], "cortex_layer_sizes": [8],
                  "cortex_sfa_portions": [0.5], "cortex_rnn_portions": [0.5],
                  "cortex_feedforward_portions": [1.0], "readout_tau_steps": [0.3, 2.5]},
    })
    model = build_model(small, num_classes=4)
    assert model.encoder.readout.tau_u_range == pytest.approx((3.0, 25.0))
    assert model.encoder.readout.dropout == small.model.readout_dropout


# ----------------------------------------------------------------------------- the encoders


def _readme_asr_example() -> ASREncoder:
    # the original README's ASREncoder example, as it builds the model
    return ASREncoder(
        num_mel_bins=80, auditory_channels=[16], auditory_kernel_size=(7, 7),
        auditory_frequency_stride=[1], cortex_layer_sizes=[512] * 3,
        cortex_sfa_portions=[0.5] * 3, cortex_rnn_portions=[0.5] * 3,
        cortex_feedforward_portions=[1.0] * 3, phoneme_num_layers=2, phoneme_features=512,
        phoneme_ctc_rate_hz=25, dropout=0.15, dt=1.0,
    )


def test_readme_asr_example_has_the_originals_parameter_count():
    torch.manual_seed(0)
    model = _readme_asr_example()
    # the original counts sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 2_460_896
    rows = {r.module: r.stored for r in count_parameters(model, depth=2)}
    assert rows["total"] == 2_460_896
    # its modules: conv + LayerNorm 800 + 2368; the nerve's tau_u, tau_w, a, b (1184 fibres);
    # 3 cortex layers (W, bias, BatchNorm, neuron parameters, V); the head (2 Linear)
    assert rows["front.conv"] == 800 + 2 * 1184
    assert rows["front.nerve"] == 4 * 1184
    cortex = (1184 * 512 + 512) + 2 * (512 * 512 + 512) + 3 * (2 * 512 + 4 * 512 + 512 * 512)
    assert rows["front.cortex"] == cortex
    assert sum(n for name, n in rows.items() if name.startswith("head.")) == 2 * (512 * 512 + 512)


def test_encoder_front_end_and_head_are_the_originals():
    torch.manual_seed(0)
    model = ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8], auditory_channels=2,
                       auditory_frequency_stride=1, phoneme_features=6, **_one_layer())
    kinds = [type(m) for m in model.head]
    assert kinds == [nn.Linear, nn.LeakyReLU, nn.Dropout] * 2  # no LayerNorm by default
    with_norm = ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8], phoneme_layernorm=True,
                           activation=nn.ELU, **_one_layer())
    assert [type(m) for m in with_norm.head][:4] == [nn.Linear, nn.LayerNorm, nn.ELU,
                                                     nn.Dropout]
    assert isinstance(with_norm.front.conv[0].activation, nn.ELU)
    nerve = model.front.nerve
    assert nerve.sfa_portion == 0.0 and nerve.V is None and nerve.dropout == 0.15
    assert model.front.auditory_dropout == 0.15
    assert ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8], auditory_dropout=0.0,
                      **_one_layer()).front.nerve.dropout == 0.0


def _capture_nerve_current(model, monkeypatch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    nerve = model.front.nerve
    original = nerve.run_time_major

    def spy(current, *args):
        seen.append(current.detach().clone())
        return original(current, *args)

    monkeypatch.setattr(nerve, "run_time_major", spy)
    return seen


def test_nerve_fibres_are_numbered_frequency_major(monkeypatch):
    torch.manual_seed(0)
    model = ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8], auditory_channels=[3],
                       **_one_layer()).eval()
    seen = _capture_nerve_current(model, monkeypatch)
    x = torch.randn(2, 15, 12)
    with torch.no_grad():
        model(x)
        h = model.front.conv[0](x.unsqueeze(1))  # (batch, channels, time, freq)
    current = seen[0]  # (time, batch, fibres)
    channels, freq = h.shape[1], h.shape[3]
    for f in range(freq):
        for c in range(channels):
            torch.testing.assert_close(current[:, :, f * channels + c], h[:, c, :, f].T)


def test_front_end_drops_whole_frequency_bins_then_nerve_inputs(monkeypatch):
    torch.manual_seed(0)
    model = ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8], auditory_channels=[3],
                       dropout=0.0, auditory_dropout=0.5, **_one_layer())
    seen = _capture_nerve_current(model, monkeypatch)
    x = torch.randn(4, 15, 12)
    model.eval()
    with torch.no_grad():
        model(x)
    model.train()
    model.front.nerve.dropout = 0.0  # the frequency-bin dropout alone
    with torch.no_grad():
        model(x)
    clean, dropped = (c.reshape(15, 4, -1, 3) for c in seen)  # (time, batch, freq, channels)
    ratio = dropped / clean
    kept = (ratio - 2.0).abs() < 1e-4
    assert torch.all(kept | (dropped == 0))
    per_bin = kept.float().mean(dim=(0, 3))  # (batch, freq): all or nothing
    assert set(per_bin.unique().tolist()) == {0.0, 1.0}
    assert 0.2 < per_bin.mean() < 0.8
    # the nerve's own dropout, on its input current entry by entry
    seen.clear()
    pop = SpikingNeurons(50, rnn_portion=0.0, dropout=0.5, implementation="reference")
    captured = []
    real = snn_module.adlif_reference
    monkeypatch.setattr(snn_module, "adlif_reference",
                        lambda current, *a: captured.append(current) or real(current, *a))
    current = torch.rand(2, 40, 50) + 0.5
    pop(current)
    got = captured[0].transpose(0, 1)
    zero = got == 0
    assert 0.4 < zero.float().mean() < 0.6
    torch.testing.assert_close(got[~zero], 2 * current[~zero])
    pop.eval()
    pop(current)
    torch.testing.assert_close(captured[1].transpose(0, 1), current)


# ----------------------------------------------------------------------------- config files


def _entries(text: str) -> dict[str, str]:
    """Top-level entries of a YAML file: key -> its text (the key's line and the indented
    lines that follow)."""
    entries: dict[str, str] = {}
    key = None
    for line in text.splitlines(keepends=True):
        if line.strip() and not line[0].isspace() and not line.startswith("#"):
            key = line.split(":", 1)[0]
            entries[key] = line
        elif key is not None:
            entries[key] += line
    return entries


def _model_block(path: Path) -> str:
    """The file's ``model:`` entry and every entry it refers to (``!ref <name>``)."""
    entries = _entries(path.read_text(encoding="utf-8"))
    keep, todo = [], ["model"]
    while todo:
        key = todo.pop()
        if key in keep:
            continue
        keep.append(key)
        todo += re.findall(r"<(\w+)>", entries[key])
    return "".join(entries[k] for k in entries if k in keep)


@pytest.mark.parametrize("name,dropout", [("timit_train.yaml", 0.15), ("timit_analysis.yaml", 0.0)])
def test_original_config_model_block_builds_and_runs(name, dropout):
    hyperpyyaml = reference_library("hyperpyyaml", "pip install 'sparse-snn[speechbrain]'")
    torch.manual_seed(0)
    model = hyperpyyaml.load_hyperpyyaml(_model_block(ORIGINAL / name))["model"]
    assert isinstance(model, ASREncoder)
    assert model.dt == 2.0 and model.pool_kernel == 20 and model.num_mel_bins == 80
    assert model.front.cortex.layer_sizes == [512, 512, 512]
    assert model.front.auditory_dropout == dropout and model.front.nerve.lateral
    assert isinstance(model.front.conv[0].activation, nn.LeakyReLU)
    for pop in (model.front.nerve, *(layer.neurons for layer in model.front.cortex.layers)):
        assert pop.tau_u_range == (3.0, 25.0) and pop.tau_w_range == (30.0, 350.0)
        assert pop.a_range == (-0.5, 5.0) and pop.b_range == (0.0, 2.0)
        assert not pop.normal_init and pop.threshold == 1.0 and pop.dt == 2.0
    assert sum(p.numel() for p in model.parameters()) == 2_460_896
    set_implementation(model, "auto")
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 50, 80), torch.tensor([50, 33]))
    assert out.features.shape == (2, 3, 512) and out.lengths.tolist() == [3, 2]
    assert all(s.shape[1] == 50 for s in out.spikes.values())


def test_original_training_config_loads_whole_with_speechbrain(tmp_path, monkeypatch):
    reference_library("speechbrain", "bash scripts/setup_speechbrain.sh")
    from hyperpyyaml import load_hyperpyyaml

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    with open(ORIGINAL / "timit_train.yaml", encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f, {"data_folder": str(tmp_path / "TIMIT"),
                                       "output_folder": str(tmp_path / "results")})
    model, classifier = hparams["model"], hparams["classifier"]
    assert isinstance(model, ASREncoder)
    wav = torch.randn(2, 3200) * 0.1  # 0.2 s at 16 kHz
    feats = hparams["compute_features"](wav)  # (2, 101, 80) at the 2 ms hop
    with torch.no_grad():
        out = model.eval()(feats)
        logits = classifier(out.features)
    assert logits.shape == (2, math.ceil(feats.shape[1] / 20), 40)


# ----------------------------------------------------------------------------- docs/original.md


def test_original_time_padding_is_ours_on_a_padded_input():
    """The recipe of docs/original.md: the original pads kernel_time frames on both sides of
    the conv input; ours, causal, on the features with one zero frame in front and
    kernel_time behind, gives the same frames."""
    from sparse.frontend import ConvBlock

    torch.manual_seed(0)
    k = 5
    block = ConvBlock(1, 3, (k, 4), 2, 16)
    x = torch.randn(2, 1, 30, 16)
    with torch.no_grad():
        conv = nn.functional.conv2d(x, block.conv.weight, block.conv.bias, stride=(1, 2),
                                    padding=(k, 0))  # the original's padding
        original = block.activation(block.norm(conv.permute(0, 2, 1, 3)).permute(0, 2, 1, 3))
        padded = nn.functional.pad(x, (0, 0, 1, k))
        ours = block(padded)
    assert original.shape[2] == 30 + k + 1 == ours.shape[2]
    torch.testing.assert_close(ours, original)


def test_original_pooling_is_ours_with_lengths_cut_to_the_kernel():
    from sparse.encoder_asr import pool_time

    spikes = (torch.rand(47, 3, 5) > 0.5).float()  # (time, batch, neurons)
    kernel = 10
    original = nn.AvgPool1d(kernel)(spikes.permute(1, 2, 0)).permute(2, 0, 1)
    cut = torch.full((3,), kernel * (47 // kernel))
    pooled, lengths = pool_time(spikes, kernel, cut)
    assert lengths.tolist() == [4, 4, 4] and original.shape[0] == 4
    torch.testing.assert_close(pooled[:4], original)


def test_state_without_the_bias_before_batchnorm_still_loads():
    torch.manual_seed(0)
    old = MultilayeredSpiking(6, [5, 4], 0.5, 0.5, 1.0, bias=None)  # no bias before batchnorm
    for layer in old.layers:
        layer.norm.running_mean.uniform_(-0.5, 0.5)
    new = MultilayeredSpiking(6, [5, 4], 0.5, 0.5, 1.0)
    new.load_state_dict(old.state_dict())
    assert all(torch.all(layer.linear.bias == 0) for layer in new.layers)
    x = (torch.rand(2, 30, 6) > 0.5).float()
    old.eval(), new.eval()
    torch.testing.assert_close(new(x), old(x), rtol=0, atol=0)
    assert old(x).sum() > 0


def test_state_saved_with_channel_major_fibres_keeps_its_numbering(monkeypatch):
    torch.manual_seed(0)
    model = ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8], auditory_channels=[3],
                       **_one_layer()).eval()
    state = model.state_dict()
    assert bool(state["front.frequency_major"])
    del state["front.frequency_major"]  # as saved before the fibres were frequency-major
    old = ASREncoder(num_mel_bins=12, cortex_layer_sizes=[8], auditory_channels=[3],
                     **_one_layer()).eval()
    old.load_state_dict(state)
    assert not bool(old.front.frequency_major)
    seen = _capture_nerve_current(old, monkeypatch)
    x = torch.randn(2, 15, 12)
    with torch.no_grad():
        old(x)
        h = old.front.conv[0](x.unsqueeze(1))
    freq = h.shape[3]
    for c in range(h.shape[1]):
        for f in range(freq):
            torch.testing.assert_close(seen[0][:, :, c * freq + f], h[:, c, :, f].T)


# ------------------------------------------- checkpoints written before these defaults

FORMER = Path(__file__).parent / "data_fixtures" / "former"


@pytest.mark.parametrize("task", ["kws", "asr"])
def test_a_checkpoint_from_before_the_original_defaults_computes_what_it_did(task):
    """Its config lacks the keys added with the original's defaults; it must be rebuilt with
    the values it was trained with (head LayerNorm, orthogonal recurrence, no front-end
    dropout, 3-25 ms readout, BatchNorm momentum 0.1) and give the outputs it gave then."""
    from sparse.train.restore import restore_run

    run = restore_run(FORMER / f"{task}.pt")
    model = run.config.model
    assert model.recurrent_init == "orthogonal" and model.batchnorm_momentum == 0.1
    assert model.auditory_dropout == 0.0
    assert run.config.features.standardization == "global"  # stored as features.normalization
    if task == "kws":
        hop = run.config.features.hop_ms
        assert model.readout_tau_steps == pytest.approx([3.0 / hop, 25.0 / hop])
        assert model.readout_dropout == model.dropout
    else:
        assert model.phoneme_layernorm
    expected = torch.load(FORMER / f"{task}_outputs.pt", weights_only=True)
    with torch.no_grad():
        out = run.model(expected["features"], expected["lengths"])
    torch.testing.assert_close(out[0], expected["output"], rtol=1e-5, atol=1e-5)
    assert torch.equal(out[1], expected["out_lengths"])
    assert expected["spikes"].keys() == out.spikes.keys()
    for name, spikes in expected["spikes"].items():
        assert torch.equal(out.spikes[name].to(torch.uint8), spikes), name
