"""What the layers share, once each: the input check of layers and encoders, the
normalisation of the spiking layers and the readout (one builder), and the parameter ranges
(one list per layer, used by the clamping and by the checkpoint check)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from sparse.snn import (
    A_CAP_MARGIN,
    ReadoutLayer,
    SpikingFCLayer,
    SpikingNeurons,
    _norm_spec,
    a_cap,
    check_sequence,
    constrain_parameters,
    parameter_ranges,
)
from sparse.train import checkpoints
from sparse.train.checkpoints import first_invalid_tensor


@pytest.mark.parametrize("make", [
    lambda: SpikingFCLayer(4, 3, normalization="batchnorm"),
    lambda: ReadoutLayer(4, 3, normalization="batchnorm"),
])
def test_batchnorm_counts_training_batches_in_every_layer(make):
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(2, 6, 4)
    for _ in range(3):
        layer(x)
    assert int(layer.norm.num_batches_tracked) == 3  # as nn.BatchNorm1d counts them
    layer.eval()
    with torch.no_grad():
        layer(x)
    assert int(layer.norm.num_batches_tracked) == 3


def test_the_norm_spec_of_each_normalisation():
    bn = nn.BatchNorm1d(3)
    bn.running_mean.fill_(2.0)
    spec = _norm_spec(bn, training=False, folded_bias=torch.full((3,), 0.5))
    assert spec.kind == "batchnorm" and not spec.training
    assert spec.running_mean.tolist() == [1.5] * 3  # the folded bias leaves the running mean
    assert spec.weight is bn.weight and spec.bias is bn.bias
    assert int(bn.num_batches_tracked) == 0
    spec = _norm_spec(bn, training=True)
    assert spec.training and int(bn.num_batches_tracked) == 1
    ln = nn.LayerNorm(3)
    spec = _norm_spec(ln, training=True)
    assert spec.kind == "layernorm" and spec.weight is ln.weight and spec.bias is ln.bias
    spec = _norm_spec(None, training=True)
    assert spec.kind == "none" and spec.weight is None and spec.bias is None


def test_constrain_keeps_every_listed_parameter_in_its_range():
    torch.manual_seed(0)
    model = nn.Sequential(SpikingFCLayer(4, 5), ReadoutLayer(5, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(100.0)
    constrain_parameters(model)
    state = model.state_dict()
    ranges = parameter_ranges(model)
    assert sorted(ranges) == ["0.neurons.a", "0.neurons.b", "0.neurons.tau_u",
                              "0.neurons.tau_w", "1.tau_u"]
    for key, (low, high, _) in ranges.items():
        assert bool((state[key] >= low).all() and (state[key] <= high).all()), key
        if not key.endswith(".a"):  # a is capped below its range's top here
            assert bool((state[key] == low).any() or (state[key] == high).any()), key
    neurons = model[0].neurons
    assert bool((neurons.a <= a_cap(neurons.tau_u, neurons.tau_w) - A_CAP_MARGIN).all())
    assert first_invalid_tensor(model, state) is None


def test_the_checkpoint_check_reads_the_layers_ranges():
    assert checkpoints.parameter_ranges is parameter_ranges
    neurons = SpikingNeurons(3, tau_u_range=(4.0, 9.0))
    assert neurons.ranges()["tau_u"] == (4.0, 9.0, " ms")
    state = {k: v.clone() for k, v in neurons.state_dict().items()}
    state["tau_u"][1] = 9.5
    assert "'tau_u' holds 1 of its 3 value(s) outside its range [4, 9] ms" in \
        first_invalid_tensor(neurons, state)
    state = {k: v.clone() for k, v in neurons.state_dict().items()}
    state["tau_u"][0], state["tau_w"][0] = 9.0, 50.0  # a cap of 0.93, inside a's range
    state["a"][0] = float(a_cap(state["tau_u"], state["tau_w"])[0]) + 0.01
    assert "above the cap" in first_invalid_tensor(neurons, state)


@pytest.mark.parametrize(("x", "error", "input_words", "feature_words"), [
    ([1.0], TypeError, "input must be a torch.Tensor", "features must be a torch.Tensor"),
    (torch.zeros(2, 4), ValueError, r"input must have shape \(batch, time, features\)",
     r"features must have shape \(batch, frames, mel bins\)"),
    (torch.zeros(2, 4, 5), ValueError, "input has 5 features but the layer expects 3",
     "features have 5 mel bins but the encoder was built for num_mel_bins=3"),
    (torch.zeros(2, 0, 3), ValueError, "input has no time steps", "features have no frames"),
    (torch.zeros(2, 4, 3, dtype=torch.int32), TypeError, "input must be a floating-point",
     "features must be a floating-point"),
    (torch.full((2, 4, 3), float("inf")), ValueError, "input contains NaN",
     "features contain NaN"),
])
def test_one_input_check_for_layers_and_encoders(x, error, input_words, feature_words):
    with pytest.raises(error, match="Layer: " + input_words):
        check_sequence(x, 3, "Layer")
    with pytest.raises(error, match="Encoder: " + feature_words):
        check_sequence(x, 3, "Encoder", kind="features")
    check_sequence(torch.zeros(2, 4, 3), 3, "Layer")
