"""Masks, parameter ranges, batch consistency, streaming, readout and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sparse.masks import adaptation_mask, feedforward_mask, lateral_radius, recurrent_mask
from sparse.snn import (
    MultilayeredSpiking,
    ReadoutLayer,
    SpikingFCLayer,
    SpikingNeurons,
    attach_constraints,
    set_implementation,
)
from sparse.surrogate import SURROGATES, Surrogate, spike

from .helpers import FAST_LOOPS, use_loop

# ----------------------------------------------------------------------------- seed example


def test_seed_readme_multilayered_example_runs_verbatim():
    # the first code example of the original SPARSE code's README, unchanged
    import torch
    import torch.nn as nn  # noqa: F401

    from sparse.snn import MultilayeredSpiking

    # Generate random input
    batch_size, num_steps, input_size = 8, 500, 144
    x = (torch.rand(batch_size, num_steps, input_size) > 0.9).float()

    # Instantiate module
    net = MultilayeredSpiking(
        input_size=input_size,
        layer_sizes=[144, 144, 10],
        sfa_portions=[0.5, 0.5, 0.5],
        rnn_portions=[0.5, 0.5, 0.5],
        ff_portions=[1.0, 1.0, 1.0],
        dropout=0.1,
        dt=1.0,
    )

    # Pass input through module
    y = net(x)

    assert y.shape == (8, 500, 10)
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
    assert y.sum() > 0


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("n,p", [(10, 0.5), (7, 0.3), (64, 1.0), (5, 0.0)])
def test_adaptation_mask_exact_count(n, p):
    mask = adaptation_mask(n, p)
    assert mask.dtype == torch.bool and mask.shape == (n,)
    assert int(mask.sum()) == int(p * n)


@pytest.mark.parametrize("n,p", [(10, 0.5), (9, 0.33), (16, 1.0), (8, 0.05)])
def test_recurrent_mask_random_exact_count_zero_diagonal(n, p):
    mask = recurrent_mask(n, p)
    assert int(mask.sum()) == min(int(p * n * n), n * (n - 1))
    assert not mask.diagonal().any()


@pytest.mark.parametrize("n,p", [(10, 0.5), (12, 0.2), (9, 1.0)])
def test_recurrent_mask_lateral_band(n, p):
    mask = recurrent_mask(n, p, lateral=True)
    radius = lateral_radius(n, p)
    assert radius == int(p * n / 2)
    for i in range(n):
        for j in range(n):
            assert bool(mask[i, j]) == (0 < abs(i - j) <= radius)


def test_feedforward_mask_probability():
    mask = feedforward_mask(200, 300, 0.3, generator=torch.Generator().manual_seed(0))
    share = mask.float().mean().item()
    # binomial standard error over 60000 draws is ~0.002
    assert abs(share - 0.3) < 0.01
    assert feedforward_mask(3, 4, 1.0).all()


def test_masks_are_buffers_and_reload_exactly():
    torch.manual_seed(0)
    layer = SpikingFCLayer(6, 9, sfa_portion=0.5, rnn_portion=0.4, ff_portion=0.5)
    state = layer.state_dict()
    for key in ("feedforward_mask", "neurons.adaptation_mask", "neurons.recurrent_mask"):
        assert key in state
    torch.manual_seed(1)
    other = SpikingFCLayer(6, 9, sfa_portion=0.5, rnn_portion=0.4, ff_portion=0.5)
    assert not torch.equal(other.neurons.recurrent_mask, layer.neurons.recurrent_mask)
    other.load_state_dict(state)
    assert torch.equal(other.neurons.recurrent_mask, layer.neurons.recurrent_mask)
    assert torch.equal(other.feedforward_mask, layer.feedforward_mask)


def test_one_seed_fixes_masks_and_initialisation():
    nets = []
    for _ in range(2):
        torch.manual_seed(123)
        nets.append(MultilayeredSpiking(5, [6, 4], sfa_portions=0.5, rnn_portions=0.5,
                                        ff_portions=0.5))
    for (k, a), (_, b) in zip(nets[0].state_dict().items(), nets[1].state_dict().items(),
                              strict=True):
        assert torch.equal(a, b), k


def test_rnn_portion_zero_means_no_recurrent_matrix():
    pop = SpikingNeurons(5, rnn_portion=0.0)
    assert pop.V is None and "V" not in dict(pop.named_parameters())


# ----------------------------------------------------------------------------- training rules


@pytest.mark.parametrize("implementation", ["reference", *FAST_LOOPS])
def test_masked_weights_stay_zero_and_parameters_stay_in_range(implementation, monkeypatch):
    implementation = use_loop(implementation, monkeypatch)
    torch.manual_seed(0)
    net = MultilayeredSpiking(6, [8, 5], sfa_portions=0.5, rnn_portions=0.5, ff_portions=0.6)
    set_implementation(net, implementation)
    optimizer = torch.optim.AdamW(net.parameters(), lr=100.0, weight_decay=1e-4)
    attach_constraints(optimizer, net)
    x = (torch.rand(2, 30, 6) > 0.5).float()
    for _ in range(5):
        optimizer.zero_grad()
        out = net(x)
        # a loss that pushes the neuron parameters hard out of their ranges (up for tau_u,
        # tau_w, a, b of the first layer, down for the second)
        push = [(n.tau_u.sum() + n.tau_w.sum() + n.a.sum() + n.b.sum()) * sign
                for n, sign in zip((lay.neurons for lay in net.layers), (-1, 1), strict=True)]
        loss = -out.sum() + sum(push)
        loss.backward()
        for layer in net.layers:
            assert torch.all(layer.linear.weight.grad[~layer.feedforward_mask] == 0)
            assert torch.all(layer.neurons.V.grad[~layer.neurons.recurrent_mask] == 0)
        optimizer.step()
        for layer in net.layers:
            n = layer.neurons
            assert torch.all(layer.linear.weight[~layer.feedforward_mask] == 0)
            assert torch.all(n.V[~n.recurrent_mask] == 0)
            # MultilayeredSpiking's default ranges (the original SPARSE code's)
            assert torch.all((n.tau_u >= 3) & (n.tau_u <= 25))
            assert torch.all((n.tau_w >= 30) & (n.tau_w <= 500))
            assert torch.all((n.b >= 0) & (n.b <= 1.25))
            cap = (n.tau_w - n.tau_u) ** 2 / (4 * n.tau_u * n.tau_w) - 1e-5
            assert torch.all(n.a >= 0) and torch.all(n.a <= torch.clamp(cap, max=5.0) + 1e-7)
    # the push really reached the bounds, so the range checks above were exercised
    first, second = net.layers[0].neurons, net.layers[1].neurons
    assert first.tau_u.max() == 25 and first.tau_w.max() == 500 and first.b.max() == 1.25
    assert second.tau_u.min() == 3 and second.tau_w.min() == 30 and second.a.min() == 0


def test_lif_neurons_have_no_adaptation_gradient():
    torch.manual_seed(0)
    pop = SpikingNeurons(10, sfa_portion=0.3, rnn_portion=0.5)
    current = torch.rand(2, 40, 10) * 1.5
    pop(current).sum().backward()
    lif = ~pop.adaptation_mask
    assert torch.all(pop.a.grad[lif] == 0) and torch.all(pop.b.grad[lif] == 0)
    assert torch.all(pop.tau_w.grad[lif] == 0)
    assert pop.a.grad[pop.adaptation_mask].abs().sum() > 0


# ----------------------------------------------------------------------------- surrogates


def _antiderivative(name: str, x: torch.Tensor, scale: float) -> torch.Tensor:
    """A smooth function whose derivative is the surrogate, written independently."""
    if name == "fast_sigmoid":
        return x / (1 + scale * x.abs())
    if name == "arctan":
        return torch.atan(math.pi * scale * x / 2) * 2 / (math.pi * scale)
    if name == "gaussian":
        return torch.erf(x / (math.sqrt(2) * scale)) * scale * math.sqrt(math.pi / 2)
    if name == "triangle":
        y = x.clamp(-scale, scale)
        return y - y * y.abs() / (2 * scale)
    raise KeyError(name)


@pytest.mark.parametrize("name", ["fast_sigmoid", "arctan", "gaussian", "triangle"])
@pytest.mark.parametrize("scale", [None, 0.7])
def test_surrogate_derivative_matches_autograd_of_its_antiderivative(name, scale):
    surrogate = Surrogate(name, scale)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    x = x[(x.abs() - surrogate.resolved_scale).abs() > 1e-9]  # skip the triangle's kinks
    xr = x.clone().requires_grad_()
    _antiderivative(name, xr, surrogate.resolved_scale).sum().backward()
    torch.testing.assert_close(surrogate.derivative(x), xr.grad, rtol=1e-10, atol=1e-12)


def test_boxcar_is_the_seeds_window():
    x = torch.tensor([-0.5, -0.49, 0.0, 0.5, 0.51, 2.0])
    torch.testing.assert_close(Surrogate("boxcar").derivative(x),
                               torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0, 0.0]))


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_spike_function_forward_is_heaviside_backward_is_surrogate(name):
    x = torch.tensor([-1.0, -0.1, 0.0, 0.2, 1.5], requires_grad=True)
    s = spike(x, name)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    s.sum().backward()
    torch.testing.assert_close(x.grad, Surrogate(name).derivative(x.detach()))
    assert Surrogate(name).derivative(torch.zeros(1)).item() == pytest.approx(1.0)


def test_unknown_surrogate_is_rejected_by_name():
    with pytest.raises(ValueError, match="unknown surrogate 'sigmoidal'"):
        SpikingNeurons(4, surrogate="sigmoidal")


# ----------------------------------------------------------------------------- batch consistency


def _ragged_batch(lengths, features, seed=0, pad_value=0.0):
    gen = torch.Generator().manual_seed(seed)
    items = [(torch.rand(n, features, generator=gen) > 0.6).float() for n in lengths]
    batch = torch.full((len(lengths), max(lengths), features), pad_value)
    for i, item in enumerate(items):
        batch[i, : len(item)] = item
    return items, batch


@pytest.mark.parametrize("implementation", ["reference", *FAST_LOOPS])
@pytest.mark.parametrize("normalization,train", [("batchnorm", False), ("layernorm", True),
                                                 ("none", True)])
def test_padded_batch_equals_items_one_by_one(implementation, normalization, train, monkeypatch):
    implementation = use_loop(implementation, monkeypatch)
    torch.manual_seed(4)
    net = MultilayeredSpiking(7, [9, 6], sfa_portions=0.5, rnn_portions=0.5,
                              normalization=normalization, implementation=implementation)
    if normalization == "batchnorm":
        for layer in net.layers:  # non-trivial running statistics
            layer.norm.running_mean.uniform_(-0.2, 0.2)
            layer.norm.running_var.uniform_(0.5, 2.0)
    net.train(train)
    lengths = [60, 23, 41]
    items, batch = _ragged_batch(lengths, 7, pad_value=1.0)
    out_batch, states = net(batch, lengths=torch.tensor(lengths), return_state=True)
    for i, item in enumerate(items):
        out_item, state_item = net(item[None], return_state=True)
        torch.testing.assert_close(out_batch[i, : lengths[i]], out_item[0], rtol=0, atol=0)
        assert torch.all(out_batch[i, lengths[i]:] == 0), "spikes on padded steps"
        for layer_state, layer_item in zip(states, state_item, strict=True):
            for a, b in zip(layer_state, layer_item, strict=True):
                torch.testing.assert_close(a[i], b[0])


@pytest.mark.parametrize("implementation", ["reference", *FAST_LOOPS])
def test_padding_never_enters_batchnorm_statistics(implementation, monkeypatch):
    implementation = use_loop(implementation, monkeypatch)
    torch.manual_seed(6)
    net = MultilayeredSpiking(5, [8, 6], sfa_portions=0.5, rnn_portions=0.5,
                              implementation=implementation)
    lengths = torch.tensor([50, 20])
    _, batch_zero = _ragged_batch([50, 20], 5, pad_value=0.0)
    _, batch_junk = _ragged_batch([50, 20], 5, pad_value=1.0)
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    out_zero = net(batch_zero, lengths=lengths)
    running_zero = net.layers[0].norm.running_mean.clone()
    net.load_state_dict(snapshot)
    out_junk = net(batch_junk, lengths=lengths)
    torch.testing.assert_close(out_zero, out_junk, rtol=0, atol=0)
    torch.testing.assert_close(net.layers[0].norm.running_mean, running_zero)
    # and the statistics are those of the valid rows alone
    net.load_state_dict(snapshot)
    layer = net.layers[0]
    layer.norm.momentum = 1.0
    net(batch_junk, lengths=lengths)
    with torch.no_grad():
        z = layer.linear(torch.cat([batch_junk[0, :50], batch_junk[1, :20]]))
    torch.testing.assert_close(layer.norm.running_mean, z.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.norm.running_var, z.var(0, unbiased=True), rtol=1e-4,
                               atol=1e-6)


# ----------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("implementation", ["reference", *FAST_LOOPS])
@pytest.mark.parametrize("normalization,train", [("batchnorm", False), ("layernorm", True)])
def test_streaming_chunks_equal_one_pass(implementation, normalization, train, monkeypatch):
    implementation = use_loop(implementation, monkeypatch)
    torch.manual_seed(9)
    net = MultilayeredSpiking(6, [10, 7], sfa_portions=0.5, rnn_portions=[0.5, 1.0],
                              ff_portions=1.0, normalization=normalization,
                              implementation=implementation)
    net.train(train)
    x = (torch.rand(2, 131, 6) > 0.5).float()
    with torch.no_grad():
        full = net(x)
        state = None
        pieces = []
        for start, stop in [(0, 17), (17, 64), (64, 65), (65, 131)]:
            out, state = net(x[:, start:stop], state=state, return_state=True)
            pieces.append(out)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=0)
    assert full.sum() > 0


def test_streaming_population_keeps_gradients_through_state():
    torch.manual_seed(1)
    pop = SpikingNeurons(6, sfa_portion=1.0, rnn_portion=0.5).double()
    current = torch.rand(1, 80, 6, dtype=torch.float64) * 1.3
    whole = pop(current)
    first, state = pop(current[:, :30], return_state=True)
    second = pop(current[:, 30:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=0)
    weights = torch.randn_like(whole)
    g_whole = torch.autograd.grad((whole * weights).sum(), pop.tau_u)[0]
    g_chunks = torch.autograd.grad((torch.cat([first, second], 1) * weights).sum(), pop.tau_u)[0]
    torch.testing.assert_close(g_chunks, g_whole, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- readout


def test_readout_layer_matches_equation_and_sums_softmax_over_valid_steps():
    torch.manual_seed(3)
    readout = ReadoutLayer(5, 4, normalization="none", dt=2.0).double()
    x = torch.rand(2, 30, 5, dtype=torch.float64)
    lengths = torch.tensor([30, 12])
    out = readout(x, lengths=lengths)
    assert out.shape == (2, 4)
    torch.testing.assert_close(out.sum(1), lengths.double())
    alpha = np.exp(-2.0 / readout.tau_u.detach().numpy())
    w = readout.linear.weight.detach().numpy()
    bias = readout.linear.bias.detach().numpy()
    for i, n in enumerate(lengths.tolist()):
        u = np.zeros(4)
        total = np.zeros(4)
        for t in range(n):
            u = alpha * u + (1 - alpha) * (w @ x[i, t].numpy() + bias)
            e = np.exp(u - u.max())
            total += e / e.sum()
        np.testing.assert_allclose(out[i].detach().numpy(), total, rtol=1e-10)
    out.sum().backward()
    assert readout.tau_u.grad is not None


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.zeros(5, 4), r"shape \(batch, time, features\)"),
        (torch.zeros(2, 5, 3), "has 3 features but the layer expects 4"),
        (torch.full((2, 5, 4), float("nan")), "NaN"),
        (torch.zeros(2, 0, 4), "no time steps"),
        (torch.zeros(2, 5, 4, dtype=torch.long), "floating-point"),
    ],
)
def test_bad_inputs_name_the_problem(x, match):
    net = MultilayeredSpiking(4, [3], sfa_portions=0.5, rnn_portions=0.0, ff_portions=1.0)
    with pytest.raises((ValueError, TypeError), match=match):
        net(x)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sfa_portions=[0.5, 1.5]), r"sfa_portion must be in \[0, 1\], got 1.5"),
        (dict(rnn_portions=[-0.1, 0.5]), r"rnn_portion must be in \[0, 1\]"),
        (dict(ff_portions=[1.0, 2.0]), r"ff_portion must be in \[0, 1\]"),
        (dict(sfa_portions=[0.5, 0.5, 0.5]), "sfa_portions has 3 entries but there are 2 layers"),
        (dict(rnn_portions=[0.5]), "rnn_portions has 1 entries but there are 2 layers"),
        (dict(dropout=1.0), "dropout must be below 1"),
        (dict(normalization="groupnorm"), "normalization must be one of"),
        (dict(dt=0.0), "dt must be a positive number"),
    ],
)
def test_bad_configuration_names_the_problem(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MultilayeredSpiking(4, [3, 2], **kwargs)


def test_bad_lengths_and_state_name_the_problem():
    net = MultilayeredSpiking(4, [3], sfa_portions=0.5, rnn_portions=0.0, ff_portions=1.0)
    x = torch.zeros(2, 5, 4)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        net(x, lengths=torch.tensor([5, 6]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
        net(x, lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match=r"state.u must have shape \(2, 3\)"):
        net.layers[0](x, state=(torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 3)))
