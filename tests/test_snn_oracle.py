"""Every fast time loop against the plain-autograd oracle, and the oracle against the equations.

The fast loops (``helpers.FAST_LOOPS``): the fused torch loop, and the compiled loop with its
spike products forced on and forced off, so that both halves of its density switch are held
to the oracle whatever the inputs' density."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sparse.kernels.reference import NeuronState
from sparse.snn import MultilayeredSpiking, SpikingNeurons
from sparse.surrogate import SURROGATES

from .helpers import FAST_LOOPS, assert_grads_close, fast_and_reference, use_loop

TOL = {torch.float64: dict(rtol=1e-5, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def _run_and_grad(net, x, lengths, weights, state=None):
    """Forward, a loss touching spikes of every layer and the final states, backward."""
    x = x.detach().clone().requires_grad_()
    state_in = None
    if state is not None:
        state_in = [NeuronState(*(t.detach().clone().requires_grad_() for t in s)) for s in state]
    out, all_spikes, finals = net(x, lengths=lengths, state=state_in, return_state=True,
                                  return_all_spikes=True)
    loss = sum((s * w).sum() for s, w in zip(all_spikes, weights, strict=True))
    loss = loss + sum((f.u.square()).sum() + 0.5 * f.w.sum() + 0.25 * f.s.sum() for f in finals)
    loss.backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    grads["input"] = x.grad
    if state_in is not None:
        for i, s in enumerate(state_in):
            for key, t in zip("uws", s, strict=True):
                grads[f"state{i}.{key}"] = t.grad
    return [s.detach() for s in all_spikes], grads


@pytest.fixture(params=FAST_LOOPS)
def loop(request, monkeypatch) -> str:
    """The implementation name of the fast loop under test."""
    return use_loop(request.param, monkeypatch)


def _compare(net, x, lengths, dtype, loop, state=None, seed=0):
    fused, reference = fast_and_reference(net, loop)
    gen = torch.Generator().manual_seed(seed + 1)
    weights = [torch.randn(x.shape[0], x.shape[1], n, generator=gen, dtype=dtype)
               for n in net.layer_sizes]
    torch.manual_seed(seed)
    spikes_f, grads_f = _run_and_grad(fused, x, lengths, weights, state)
    torch.manual_seed(seed)
    spikes_r, grads_r = _run_and_grad(reference, x, lengths, weights, state)
    assert all(layer.neurons.last_implementation == loop for layer in fused.layers)
    for i, (sf, sr) in enumerate(zip(spikes_f, spikes_r, strict=True)):
        assert torch.equal(sf, sr), f"layer {i}: spikes differ in {(sf != sr).sum()} places"
    assert any(s.sum() > 0 for s in spikes_r), "degenerate test: no spikes at all"
    assert set(grads_f) == set(grads_r)
    for name in grads_r:
        assert_grads_close(grads_f[name], grads_r[name], name, **TOL[dtype])
    return spikes_r, grads_r


GRID = [
    (sfa, rnn, lateral, dtype)
    for sfa, rnn, lateral, dtype in itertools.product(
        (0.0, 0.5, 1.0), (0.0, 0.5, 1.0), (False, True), (torch.float32, torch.float64)
    )
    if not (lateral and rnn == 0.0)
]


@pytest.mark.parametrize("sfa,rnn,lateral,dtype", GRID)
def test_fast_loops_equal_oracle(sfa, rnn, lateral, dtype, loop):
    torch.manual_seed(11)
    net = MultilayeredSpiking(
        input_size=14, layer_sizes=[12, 10], sfa_portions=sfa, rnn_portions=rnn,
        ff_portions=[0.7, 1.0], lateral=lateral, dropout=0.0, dt=1.0,
    ).to(dtype)
    x = (torch.rand(3, 90, 14) > 0.6).to(dtype)
    lengths = torch.tensor([90, 61, 17])
    _, grads = _compare(net, x, lengths, dtype, loop)
    # the structural zeros are honoured by both paths
    w_grad = grads["layers.0.linear.weight"]
    assert torch.all(w_grad[~net.layers[0].feedforward_mask] == 0)
    if rnn > 0:
        v_grad = grads["layers.0.neurons.V"]
        assert torch.all(v_grad[~net.layers[0].neurons.recurrent_mask] == 0)
        assert v_grad.abs().sum() > 0


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_loops_equal_oracle_every_surrogate(surrogate, dtype, loop):
    torch.manual_seed(5)
    net = MultilayeredSpiking(
        input_size=10, layer_sizes=[9, 8], sfa_portions=0.5, rnn_portions=0.5,
        ff_portions=0.8, dropout=0.0, surrogate=surrogate,
    ).to(dtype)
    x = (torch.rand(2, 70, 10) > 0.6).to(dtype)
    _compare(net, x, torch.tensor([70, 45]), dtype, loop)


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm", "none"])
@pytest.mark.parametrize("train", [True, False])
def test_fast_loops_equal_oracle_norms_dropout_and_float_input(normalization, train, loop):
    dtype = torch.float64
    torch.manual_seed(3)
    net = MultilayeredSpiking(
        input_size=8, layer_sizes=[10, 7, 6], sfa_portions=[0.5, 1.0, 0.0],
        rnn_portions=[0.5, 0.0, 1.0], ff_portions=1.0, dropout=0.3,
        normalization=normalization,
    ).to(dtype)
    net.train(train)
    x = torch.randn(3, 50, 8, dtype=dtype)  # a real-valued (not binary) input
    _compare(net, x, torch.tensor([50, 33, 50]), dtype, loop)


def test_fast_loops_equal_oracle_with_initial_state(loop):
    dtype = torch.float64
    torch.manual_seed(8)
    net = MultilayeredSpiking(input_size=6, layer_sizes=[8, 5], sfa_portions=[0.5, 0.0],
                              rnn_portions=0.5).to(dtype)
    gen = torch.Generator().manual_seed(4)
    state = [NeuronState(torch.rand(2, n, generator=gen, dtype=dtype) * 1.2,
                         torch.randn(2, n, generator=gen, dtype=dtype) * 0.3,
                         (torch.rand(2, n, generator=gen) > 0.5).to(dtype))
             for n in (8, 5)]
    x = (torch.rand(2, 40, 6) > 0.5).to(dtype)
    _, grads = _compare(net, x, torch.tensor([40, 23]), dtype, loop, state=state)
    # the LIF-only second layer starts with w != 0: its decay and effect on u must be tracked
    assert grads["state1.w"].abs().sum() > 0


def test_long_sequence_crosses_checkpoints(loop):
    """More steps than the loops' checkpoint interval, ragged inside a chunk."""
    dtype = torch.float64
    torch.manual_seed(21)
    net = MultilayeredSpiking(input_size=5, layer_sizes=[6], sfa_portions=1.0,
                              rnn_portions=1.0, ff_portions=1.0).to(dtype)
    x = (torch.rand(2, 300, 5) > 0.5).to(dtype)
    _compare(net, x, torch.tensor([300, 131]), dtype, loop)


# ----------------------------------------------------------------------------- the equations


def _numpy_adlif(current, alpha, beta, a, b, recurrent):
    """The neuron equations of the README's spiking core, in numpy, one neuron at a time."""
    steps, neurons = current.shape
    u = np.zeros(neurons)
    w = np.zeros(neurons)
    s = np.zeros(neurons)
    out_u, out_s = [], []
    for t in range(steps):
        u_new = np.empty(neurons)
        for i in range(neurons):
            rec = sum(recurrent[i, j] * s[j] for j in range(neurons))
            u_new[i] = alpha[i] * (u[i] - s[i]) - (1 - alpha[i]) * w[i] + current[t, i] + rec
        w = beta * (w + b * s) + (1 - beta) * a * u_new
        u = u_new
        s = (u - 1.0 > 0).astype(float)
        out_u.append(u.copy())
        out_s.append(s.copy())
    return np.array(out_u), np.array(out_s)


@pytest.mark.parametrize("implementation", ["reference", *FAST_LOOPS])
def test_population_matches_written_out_equations(implementation, monkeypatch):
    if implementation != "reference":
        implementation = use_loop(implementation, monkeypatch)
    torch.manual_seed(2)
    pop = SpikingNeurons(7, sfa_portion=0.5, rnn_portion=0.5, dt=2.0,
                         implementation=implementation).double()
    current = torch.rand(1, 120, 7, dtype=torch.float64) * 0.9
    spikes, state = pop(current, return_state=True)
    alpha, beta, a, b, recurrent = (t.detach().numpy() for t in pop.coefficients())
    np.testing.assert_allclose(alpha, np.exp(-2.0 / pop.tau_u.detach().numpy()))
    u_ref, s_ref = _numpy_adlif(current[0].numpy(), alpha, beta, a, b, recurrent)
    np.testing.assert_array_equal(spikes[0].detach().numpy(), s_ref)
    np.testing.assert_allclose(state.u[0].detach().numpy(), u_ref[-1], rtol=1e-12, atol=1e-12)
    assert s_ref.sum() > 5
    # LIF neurons carry no adaptation
    lif = ~pop.adaptation_mask
    assert torch.all(state.w[0][lif] == 0)


# ----------------------------------------------------------------------------- readout


@pytest.mark.parametrize("steps", [1, 63, 64, 65, 200])
@pytest.mark.parametrize("masked", [False, True])
def test_blocked_readout_equals_step_by_step(steps, masked):
    """Blocks of matrix products give the loop's trajectory, final state and gradients
    (drive, alpha, initial state), for lengths across block edges and empty columns."""
    from sparse.kernels.readout import leaky_integrate_blocked, leaky_integrate_reference

    gen = torch.Generator().manual_seed(steps)
    drive = torch.randn(steps, 4, 6, generator=gen, dtype=torch.float64)
    tau = 3.0 + 22.0 * torch.rand(6, generator=gen, dtype=torch.float64)
    state = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    valid = None
    if masked:
        lengths = torch.tensor([steps, max(steps - 1, 0), steps // 2, 0])
        valid = torch.arange(steps).unsqueeze(1) < lengths.unsqueeze(0)
    weights = torch.randn(steps, 4, 6, generator=gen, dtype=torch.float64)
    results = []
    for integrate in (leaky_integrate_reference, leaky_integrate_blocked):
        d, t, s = (v.clone().requires_grad_() for v in (drive, tau, state))
        u_all, final = integrate(d, torch.exp(-2.0 / t), valid, s)
        if valid is not None:  # what the layer uses: valid steps only, and the final state
            u_all = u_all * valid.unsqueeze(-1)
        loss = (u_all * weights).sum() + final.square().sum()
        grads = torch.autograd.grad(loss, (d, t, s))
        results.append((u_all.detach(), final.detach(), grads))
    (u_ref, f_ref, g_ref), (u_blk, f_blk, g_blk) = results
    torch.testing.assert_close(u_blk, u_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(f_blk, f_ref, rtol=1e-10, atol=1e-12)
    if masked:  # an empty column keeps its initial state
        torch.testing.assert_close(f_blk[3], state[3])
    for a, b in zip(g_blk, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_blocked_readout_takes_any_mask():
    """A mask that is not a prefix (a gap inside) holds u over the gap, as the loop does."""
    from sparse.kernels.readout import leaky_integrate_blocked, leaky_integrate_reference

    drive = torch.randn(10, 2, 3, dtype=torch.float64)
    alpha = torch.tensor([0.5, 0.8, 0.95], dtype=torch.float64)
    valid = torch.ones(10, 2, dtype=torch.bool)
    valid[3:5, 1] = False
    for a, b in zip(leaky_integrate_blocked(drive, alpha, valid),
                    leaky_integrate_reference(drive, alpha, valid), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("normalization", ["batchnorm", "none"])
def test_readout_layer_fused_equals_oracle(normalization):
    from sparse.snn import ReadoutLayer, set_implementation

    torch.manual_seed(1)
    layer = ReadoutLayer(12, 5, dt=10.0, normalization=normalization, dropout=0.0).double()
    x = torch.rand(3, 150, 12, dtype=torch.float64)
    lengths = torch.tensor([150, 97, 40])
    outs = {}
    for impl in ("reference", "auto"):
        set_implementation(layer, impl)
        assert layer.implementation == impl
        layer.zero_grad()
        out, final = layer(x, lengths=lengths, return_state=True)
        (out.log().sum() + final.sum()).backward()
        outs[impl] = (out.detach(), final.detach(),
                      {n: p.grad.clone() for n, p in layer.named_parameters()})
    torch.testing.assert_close(outs["auto"][0], outs["reference"][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(outs["auto"][1], outs["reference"][1], rtol=1e-10, atol=1e-12)
    for name, grad in outs["reference"][2].items():
        torch.testing.assert_close(outs["auto"][2][name], grad, rtol=1e-8, atol=1e-11)
